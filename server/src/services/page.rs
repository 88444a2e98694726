//! Offset pagination shared by every list endpoint.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{AppError, AppResult};

pub const DEFAULT_PER_PAGE: u32 = 20;
pub const MAX_PER_PAGE: u32 = 100;
/// Far past any real list; bounds the offset so it stays a sane SQL value.
pub const MAX_PAGE: u32 = 1_000_000;

/// `?page=1&perPage=20` (both optional).
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page number, 1..=1000000 (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

impl PageRequest {
    pub fn new(page: Option<u32>, per_page: Option<u32>) -> AppResult<Self> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
        if page == 0 || page > MAX_PAGE {
            return Err(AppError::validation(format!(
                "page must be between 1 and {MAX_PAGE}"
            )));
        }
        if per_page == 0 || per_page > MAX_PER_PAGE {
            return Err(AppError::validation(format!(
                "perPage must be between 1 and {MAX_PER_PAGE}"
            )));
        }
        Ok(PageRequest { page, per_page })
    }

    pub fn limit(self) -> i64 {
        i64::from(self.per_page)
    }

    pub fn offset(self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }
}

impl PageQuery {
    pub fn resolve(&self) -> AppResult<PageRequest> {
        PageRequest::new(self.page, self.per_page)
    }
}

/// One page of a list plus the total count across all pages.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, request: PageRequest, total: i64) -> Self {
        Page {
            items,
            page: request.page,
            per_page: request.per_page,
            total,
        }
    }
}

/// A list row carrying its query's total (`count(*) over () as total_count`), so a page
/// and its total come from one statement (one round trip instead of count + page).
#[derive(Debug, sqlx::FromRow)]
pub struct Counted<T> {
    #[sqlx(flatten)]
    pub item: T,
    pub total_count: i64,
}

impl<T> Page<T> {
    /// The page from counted rows. An empty page past the end carries no total, so
    /// `count` is asked only then (and not at all for an empty first page).
    pub async fn from_counted<F>(
        rows: Vec<Counted<T>>,
        request: PageRequest,
        count: F,
    ) -> AppResult<Self>
    where
        F: std::future::Future<Output = AppResult<i64>>,
    {
        let total = match rows.first() {
            Some(row) => row.total_count,
            None if request.offset() == 0 => 0,
            None => count.await?,
        };
        Ok(Page::new(
            rows.into_iter().map(|r| r.item).collect(),
            request,
            total,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_PAGE, PageRequest};

    #[test]
    fn bounds_and_offsets() {
        let p = PageRequest::new(Some(3), Some(10)).unwrap();
        assert_eq!((p.limit(), p.offset()), (10, 20));
        let d = PageRequest::new(None, None).unwrap();
        assert_eq!((d.page, d.per_page), (1, 20));
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(None, Some(0)).is_err());
        assert!(PageRequest::new(None, Some(101)).is_err());
        // The documented maximum is enforced, not just stated.
        assert!(PageRequest::new(Some(MAX_PAGE), None).is_ok());
        assert!(PageRequest::new(Some(MAX_PAGE + 1), None).is_err());
    }
}

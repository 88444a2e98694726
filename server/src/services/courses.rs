//! Courses: public catalogue, written by admins. The slug is the unique code.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::db::{Violation, violation};
use super::page::{Page, PageRequest};
use crate::error::{AppError, AppResult};
use crate::validation::{optional_text, required_text};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Course {
    pub id: Uuid,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub is_published: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Body of create and update (update replaces every field).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CourseInput {
    /// Unique code: 2..=64 of `a-z`, `0-9` and inner `-` (surrounding whitespace is trimmed).
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[a-z0-9][a-z0-9-]{0,62}[a-z0-9][\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub slug: String,
    /// 1..=200 characters.
    #[schema(
        pattern = r"^[^\u0000]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^\u0000]*$",
        max_length = 200
    )]
    pub title: String,
    /// Up to 5000 characters (default empty).
    #[schema(max_length = 5000)]
    #[serde(default)]
    pub description: String,
    /// Default `true`.
    #[serde(default = "default_published")]
    pub is_published: bool,
}

fn default_published() -> bool {
    true
}

fn valid_slug(slug: &str) -> bool {
    (2..=64).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

fn validate(input: CourseInput) -> AppResult<CourseInput> {
    let slug = input.slug.trim().to_string();
    if !valid_slug(&slug) {
        return Err(AppError::validation(
            "slug must be 2-64 characters of a-z, 0-9 and inner '-'",
        ));
    }
    Ok(CourseInput {
        slug,
        title: required_text("title", &input.title, 200)?,
        description: optional_text("description", &input.description, 5000)?,
        is_published: input.is_published,
    })
}

fn map_write_error(err: sqlx::Error, slug: &str) -> AppError {
    match violation(&err) {
        Some((Violation::Unique, _)) => {
            AppError::conflict(format!("a course with slug {slug:?} already exists"))
        }
        _ => err.into(),
    }
}

pub async fn list(db: &PgPool, page: PageRequest) -> AppResult<Page<Course>> {
    let total: i64 = sqlx::query_scalar("select count(*) from courses")
        .fetch_one(db)
        .await?;
    let items = sqlx::query_as::<_, Course>(
        "select id, slug, title, description, is_published, created_at, updated_at \
         from courses order by title, id limit $1 offset $2",
    )
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(Page::new(items, page, total))
}

pub async fn get(db: &PgPool, id: Uuid) -> AppResult<Course> {
    sqlx::query_as::<_, Course>(
        "select id, slug, title, description, is_published, created_at, updated_at \
         from courses where id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| AppError::not_found(format!("course {id} not found")))
}

pub async fn create(db: &PgPool, input: CourseInput) -> AppResult<Course> {
    let v = validate(input)?;
    sqlx::query_as::<_, Course>(
        "insert into courses (id, slug, title, description, is_published) \
         values ($1, $2, $3, $4, $5) \
         returning id, slug, title, description, is_published, created_at, updated_at",
    )
    .bind(Uuid::new_v4())
    .bind(&v.slug)
    .bind(&v.title)
    .bind(&v.description)
    .bind(v.is_published)
    .fetch_one(db)
    .await
    .map_err(|e| map_write_error(e, &v.slug))
}

pub async fn update(db: &PgPool, id: Uuid, input: CourseInput) -> AppResult<Course> {
    let v = validate(input)?;
    sqlx::query_as::<_, Course>(
        "update courses set slug = $2, title = $3, description = $4, is_published = $5 \
         where id = $1 \
         returning id, slug, title, description, is_published, created_at, updated_at",
    )
    .bind(id)
    .bind(&v.slug)
    .bind(&v.title)
    .bind(&v.description)
    .bind(v.is_published)
    .fetch_optional(db)
    .await
    .map_err(|e| map_write_error(e, &v.slug))?
    .ok_or_else(|| AppError::not_found(format!("course {id} not found")))
}

/// Batches of a deleted course keep existing with no course.
pub async fn delete(db: &PgPool, id: Uuid) -> AppResult<()> {
    let done = sqlx::query("delete from courses where id = $1")
        .bind(id)
        .execute(db)
        .await
        .map_err(|e| match violation(&e) {
            // Payments keep their item: money records are never deleted with the catalogue.
            Some((Violation::ForeignKey, _)) => {
                AppError::conflict(format!("course {id} has payments and cannot be deleted"))
            }
            _ => e.into(),
        })?;
    if done.rows_affected() == 0 {
        return Err(AppError::not_found(format!("course {id} not found")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_slug;

    #[test]
    fn slugs() {
        assert!(valid_slug("data-science"));
        assert!(valid_slug("ds2"));
        assert!(!valid_slug("Data"));
        assert!(!valid_slug("-ds"));
        assert!(!valid_slug("d"));
        assert!(!valid_slug("a b"));
    }
}

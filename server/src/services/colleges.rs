//! Colleges: public catalogue, written by admins. Names are unique case-insensitively.

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
pub struct College {
    pub id: Uuid,
    pub name: String,
    pub city: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Body of create and update (update replaces both fields).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollegeInput {
    /// 1..=200 characters, unique (case-insensitive).
    #[schema(
        pattern = r"^[^\u0000]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^\u0000]*$",
        max_length = 200
    )]
    pub name: String,
    /// Up to 100 characters.
    #[schema(max_length = 100)]
    pub city: Option<String>,
}

struct Valid {
    name: String,
    city: Option<String>,
}

fn validate(input: CollegeInput) -> AppResult<Valid> {
    let name = required_text("name", &input.name, 200)?;
    let city = match input.city {
        Some(city) => Some(optional_text("city", &city, 100)?).filter(|c| !c.is_empty()),
        None => None,
    };
    Ok(Valid { name, city })
}

fn map_write_error(err: sqlx::Error, name: &str) -> AppError {
    match violation(&err) {
        Some((Violation::Unique, _)) => {
            AppError::conflict(format!("a college named {name:?} already exists"))
        }
        _ => err.into(),
    }
}

pub async fn list(db: &PgPool, page: PageRequest) -> AppResult<Page<College>> {
    let total: i64 = sqlx::query_scalar("select count(*) from colleges")
        .fetch_one(db)
        .await?;
    let items = sqlx::query_as::<_, College>(
        "select id, name, city, created_at, updated_at from colleges \
         order by lower(name), id limit $1 offset $2",
    )
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(Page::new(items, page, total))
}

pub async fn get(db: &PgPool, id: Uuid) -> AppResult<College> {
    sqlx::query_as::<_, College>(
        "select id, name, city, created_at, updated_at from colleges where id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| AppError::not_found(format!("college {id} not found")))
}

pub async fn create(db: &PgPool, input: CollegeInput) -> AppResult<College> {
    let v = validate(input)?;
    sqlx::query_as::<_, College>(
        "insert into colleges (id, name, city) values ($1, $2, $3) \
         returning id, name, city, created_at, updated_at",
    )
    .bind(Uuid::new_v4())
    .bind(&v.name)
    .bind(&v.city)
    .fetch_one(db)
    .await
    .map_err(|e| map_write_error(e, &v.name))
}

pub async fn update(db: &PgPool, id: Uuid, input: CollegeInput) -> AppResult<College> {
    let v = validate(input)?;
    sqlx::query_as::<_, College>(
        "update colleges set name = $2, city = $3 where id = $1 \
         returning id, name, city, created_at, updated_at",
    )
    .bind(id)
    .bind(&v.name)
    .bind(&v.city)
    .fetch_optional(db)
    .await
    .map_err(|e| map_write_error(e, &v.name))?
    .ok_or_else(|| AppError::not_found(format!("college {id} not found")))
}

/// Users and batches of a deleted college keep existing with no college.
pub async fn delete(db: &PgPool, id: Uuid) -> AppResult<()> {
    let done = sqlx::query("delete from colleges where id = $1")
        .bind(id)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::not_found(format!("college {id} not found")));
    }
    Ok(())
}

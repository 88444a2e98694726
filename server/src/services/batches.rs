//! Batches: a cohort of a course at a college. Names are unique case-insensitively.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::db::{Violation, violation};
use super::page::{Page, PageRequest};
use crate::error::{AppError, AppResult};
use crate::validation::required_text;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    pub id: Uuid,
    pub name: String,
    pub course_id: Option<Uuid>,
    pub college_id: Option<Uuid>,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Body of create and update (update replaces every field).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchInput {
    /// 1..=100 characters, unique (case-insensitive).
    #[schema(
        pattern = r"^[^\u0000]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^\u0000]*$",
        max_length = 100
    )]
    pub name: String,
    pub course_id: Option<Uuid>,
    pub college_id: Option<Uuid>,
    pub starts_on: Option<NaiveDate>,
    /// Not before `startsOn`.
    pub ends_on: Option<NaiveDate>,
}

fn validate(input: BatchInput) -> AppResult<BatchInput> {
    if let (Some(start), Some(end)) = (input.starts_on, input.ends_on)
        && end < start
    {
        return Err(AppError::validation("endsOn must not be before startsOn"));
    }
    Ok(BatchInput {
        name: required_text("name", &input.name, 100)?,
        ..input
    })
}

fn map_write_error(err: sqlx::Error, name: &str) -> AppError {
    match violation(&err) {
        Some((Violation::Unique, _)) => {
            AppError::conflict(format!("a batch named {name:?} already exists"))
        }
        Some((Violation::ForeignKey, constraint)) if constraint.contains("course") => {
            AppError::validation("courseId does not reference an existing course")
        }
        Some((Violation::ForeignKey, constraint)) if constraint.contains("college") => {
            AppError::validation("collegeId does not reference an existing college")
        }
        Some((Violation::Check, _)) => AppError::validation("endsOn must not be before startsOn"),
        _ => err.into(),
    }
}

pub async fn list(db: &PgPool, page: PageRequest) -> AppResult<Page<Batch>> {
    let total: i64 = sqlx::query_scalar("select count(*) from batches")
        .fetch_one(db)
        .await?;
    let items = sqlx::query_as::<_, Batch>(
        "select id, name, course_id, college_id, starts_on, ends_on, created_at, updated_at \
         from batches order by lower(name), id limit $1 offset $2",
    )
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(Page::new(items, page, total))
}

pub async fn get(db: &PgPool, id: Uuid) -> AppResult<Batch> {
    sqlx::query_as::<_, Batch>(
        "select id, name, course_id, college_id, starts_on, ends_on, created_at, updated_at \
         from batches where id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| AppError::not_found(format!("batch {id} not found")))
}

pub async fn create(db: &PgPool, input: BatchInput) -> AppResult<Batch> {
    let v = validate(input)?;
    sqlx::query_as::<_, Batch>(
        "insert into batches (id, name, course_id, college_id, starts_on, ends_on) \
         values ($1, $2, $3, $4, $5, $6) \
         returning id, name, course_id, college_id, starts_on, ends_on, created_at, updated_at",
    )
    .bind(Uuid::new_v4())
    .bind(&v.name)
    .bind(v.course_id)
    .bind(v.college_id)
    .bind(v.starts_on)
    .bind(v.ends_on)
    .fetch_one(db)
    .await
    .map_err(|e| map_write_error(e, &v.name))
}

pub async fn update(db: &PgPool, id: Uuid, input: BatchInput) -> AppResult<Batch> {
    let v = validate(input)?;
    sqlx::query_as::<_, Batch>(
        "update batches set name = $2, course_id = $3, college_id = $4, starts_on = $5, \
         ends_on = $6 where id = $1 \
         returning id, name, course_id, college_id, starts_on, ends_on, created_at, updated_at",
    )
    .bind(id)
    .bind(&v.name)
    .bind(v.course_id)
    .bind(v.college_id)
    .bind(v.starts_on)
    .bind(v.ends_on)
    .fetch_optional(db)
    .await
    .map_err(|e| map_write_error(e, &v.name))?
    .ok_or_else(|| AppError::not_found(format!("batch {id} not found")))
}

/// Users of a deleted batch keep existing with no batch.
pub async fn delete(db: &PgPool, id: Uuid) -> AppResult<()> {
    let done = sqlx::query("delete from batches where id = $1")
        .bind(id)
        .execute(db)
        .await
        .map_err(|e| match violation(&e) {
            // Payments keep their item: money records are never deleted with the catalogue.
            Some((Violation::ForeignKey, _)) => {
                AppError::conflict(format!("batch {id} has payments and cannot be deleted"))
            }
            _ => e.into(),
        })?;
    if done.rows_affected() == 0 {
        return Err(AppError::not_found(format!("batch {id} not found")));
    }
    Ok(())
}

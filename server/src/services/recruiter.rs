//! What recruiters (and mr-hire-backend on their behalf) may read: the profiles and
//! completed resume analyses of students who consented (`recruiter_consent`), and
//! nothing of anyone else. No contact details beyond the email the student signed up
//! with, no payments, no bookings.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::crm::is_phone;
use super::page::{Page, PageRequest};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisSummary {
    pub id: Uuid,
    pub completed_at: Option<DateTime<Utc>>,
    /// The analysis result as the resume worker stored it.
    pub result: Option<Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct StudentProfile {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub college: Option<String>,
    pub batch: Option<String>,
    pub consented_at: Option<DateTime<Utc>>,
    /// Completed resume analyses, newest first (at most 10).
    #[sqlx(skip)]
    pub analyses: Vec<AnalysisSummary>,
}

const SELECT: &str = "select u.id, u.name, u.email, c.name as college, b.name as batch, \
    u.recruiter_consent_at as consented_at from users u \
    left join colleges c on c.id = u.college_id left join batches b on b.id = u.batch_id \
    where u.role = 'student' and u.is_active and u.recruiter_consent";

async fn analyses(db: &PgPool, student: Uuid) -> AppResult<Vec<AnalysisSummary>> {
    Ok(sqlx::query_as::<_, AnalysisSummary>(
        "select id, completed_at, result from resume_analyses \
         where student_id = $1 and status = 'completed' order by completed_at desc limit 10",
    )
    .bind(student)
    .fetch_all(db)
    .await?)
}

pub async fn list(db: &PgPool, page: PageRequest) -> AppResult<Page<StudentProfile>> {
    let total: i64 = sqlx::query_scalar(
        "select count(*) from users where role = 'student' and is_active and recruiter_consent",
    )
    .fetch_one(db)
    .await?;
    let mut items = sqlx::query_as::<_, StudentProfile>(sqlx::AssertSqlSafe(format!(
        "{SELECT} order by u.recruiter_consent_at desc, u.id limit $1 offset $2"
    )))
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    for item in &mut items {
        item.analyses = analyses(db, item.id).await?;
    }
    Ok(Page::new(items, page, total))
}

/// A consenting student's profile; any other id is a 404.
pub async fn get(db: &PgPool, id: Uuid) -> AppResult<StudentProfile> {
    let mut profile =
        sqlx::query_as::<_, StudentProfile>(sqlx::AssertSqlSafe(format!("{SELECT} and u.id = $1")))
            .bind(id)
            .fetch_optional(db)
            .await?
            .ok_or_else(|| AppError::not_found(format!("student {id} not found")))?;
    profile.analyses = analyses(db, id).await?;
    Ok(profile)
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub phone: Option<String>,
    pub recruiter_consent: bool,
    pub recruiter_consent_at: Option<DateTime<Utc>>,
}

pub async fn set_consent(db: &PgPool, user: Uuid, consent: bool) -> AppResult<Contact> {
    Ok(sqlx::query_as::<_, Contact>(
        "update users set recruiter_consent = $2, \
           recruiter_consent_at = case when $2 then coalesce(recruiter_consent_at, now()) else null end \
         where id = $1 returning phone, recruiter_consent, recruiter_consent_at",
    )
    .bind(user)
    .bind(consent)
    .fetch_one(db)
    .await?)
}

pub async fn set_phone(db: &PgPool, user: Uuid, phone: Option<&str>) -> AppResult<Contact> {
    // Exactly as documented: E.164, or empty to remove (no trimming of other input).
    let phone = phone.filter(|p| !p.is_empty());
    if let Some(p) = phone
        && !is_phone(p)
    {
        return Err(AppError::validation(
            "phone must be in E.164 form, like +919900000001",
        ));
    }
    Ok(sqlx::query_as::<_, Contact>(
        "update users set phone = $2 where id = $1 returning phone, recruiter_consent, recruiter_consent_at",
    )
    .bind(user)
    .bind(phone)
    .fetch_one(db)
    .await?)
}

//! Bulk import of students into a batch from CSV, run as a databaseQueue job.
//! Every row either creates a student or yields a per-row error in the report.
//!
//! CSV: a header row with `name` and `email` columns (any order, case-insensitive;
//! extra columns are ignored). Imported students have no usable password until
//! they complete the password-reset flow.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::queues::{JobError, QueueName};
use crate::state::AppState;

pub const JOB_NAME: &str = "importStudents";
const MAX_CSV_BYTES: usize = 5 * 1024 * 1024;
/// Not a PHC string, so password verification always fails for it.
const NO_PASSWORD: &str = "!imported";

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line number in the CSV (the header is line 1).
    pub line: usize,
    pub email: Option<String>,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub id: Uuid,
    pub batch_id: Uuid,
    /// `queued`, `processing`, `completed` or `failed`.
    pub status: String,
    pub total_rows: i32,
    pub imported_rows: i32,
    pub failed_rows: i32,
    #[schema(value_type = Vec<RowError>)]
    pub errors: Value,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, batch_id, status, total_rows, imported_rows, failed_rows, errors, \
                       error, created_at, finished_at";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportSummary {
    pub total_rows: usize,
    pub imported_rows: usize,
    pub failed_rows: usize,
}

pub async fn request(
    state: &AppState,
    batch_id: Uuid,
    requested_by: Uuid,
    csv: String,
) -> AppResult<ImportReport> {
    if csv.trim().is_empty() {
        return Err(AppError::validation("the CSV body is empty"));
    }
    if csv.len() > MAX_CSV_BYTES {
        return Err(AppError::validation("the CSV is larger than 5 MB"));
    }
    // Fail fast on a header without the required columns.
    parse_csv(&csv).map_err(AppError::validation)?;
    let exists: Option<(Uuid,)> = sqlx::query_as("select id from batches where id = $1")
        .bind(batch_id)
        .fetch_optional(&state.db)
        .await?;
    if exists.is_none() {
        return Err(AppError::not_found("batch not found"));
    }
    let id = Uuid::new_v4();
    let report: ImportReport = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into batch_imports (id, batch_id, requested_by, csv) values ($1, $2, $3, $4) \
         returning {COLUMNS}"
    )))
    .bind(id)
    .bind(batch_id)
    .bind(requested_by)
    .bind(&csv)
    .fetch_one(&state.db)
    .await?;
    if let Err(err) = state
        .queues
        .add(
            QueueName::Database,
            JOB_NAME,
            json!({"importId": id}),
            Some(format!("import-{id}")),
        )
        .await
    {
        sqlx::query("delete from batch_imports where id = $1")
            .bind(id)
            .execute(&state.db)
            .await?;
        return Err(err.into());
    }
    Ok(report)
}

pub async fn get(db: &PgPool, batch_id: Uuid, import_id: Uuid) -> AppResult<ImportReport> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from batch_imports where id = $1 and batch_id = $2"
    )))
    .bind(import_id)
    .bind(batch_id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| AppError::not_found("import not found"))
}

pub async fn run(db: &PgPool, import_id: Uuid) -> Result<ImportSummary, JobError> {
    let row: Option<(Uuid, String, String)> =
        sqlx::query_as("select batch_id, csv, status from batch_imports where id = $1")
            .bind(import_id)
            .fetch_optional(db)
            .await?;
    let Some((batch_id, csv, status)) = row else {
        return Err(JobError::permanent(format!(
            "import {import_id} does not exist"
        )));
    };
    if status == "completed" {
        return Err(JobError::permanent(format!(
            "import {import_id} already completed"
        )));
    }
    sqlx::query("update batch_imports set status = 'processing' where id = $1")
        .bind(import_id)
        .execute(db)
        .await?;
    let rows = parse_csv(&csv).map_err(JobError::permanent)?;
    let mut errors: Vec<RowError> = Vec::new();
    let mut imported = 0usize;
    // One transaction: a retry after a crash starts from a clean slate.
    let mut tx = db.begin().await?;
    for row in &rows {
        match validate(row) {
            Err(e) => errors.push(e),
            Ok((name, email)) => {
                let inserted = sqlx::query(
                    "insert into users (id, email, password_hash, name, role, batch_id) \
                     values ($1, $2, $3, $4, 'student', $5) on conflict ((lower(email))) do nothing",
                )
                .bind(Uuid::new_v4())
                .bind(&email)
                .bind(NO_PASSWORD)
                .bind(&name)
                .bind(batch_id)
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 1 {
                    imported += 1;
                } else {
                    errors.push(RowError {
                        line: row.line,
                        email: Some(email),
                        error: "a user with this email already exists".into(),
                    });
                }
            }
        }
    }
    let summary = ImportSummary {
        total_rows: rows.len(),
        imported_rows: imported,
        failed_rows: errors.len(),
    };
    sqlx::query(
        "update batch_imports set status = 'completed', total_rows = $2, imported_rows = $3, \
         failed_rows = $4, errors = $5, error = null, finished_at = now() where id = $1",
    )
    .bind(import_id)
    .bind(summary.total_rows as i32)
    .bind(summary.imported_rows as i32)
    .bind(summary.failed_rows as i32)
    .bind(serde_json::to_value(&errors).map_err(|e| JobError::permanent(e.to_string()))?)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(summary)
}

pub async fn record_failure(db: &PgPool, import_id: Uuid, reason: &str) -> sqlx::Result<()> {
    sqlx::query(
        "update batch_imports set status = 'failed', error = $2, finished_at = now() \
         where id = $1 and status <> 'completed'",
    )
    .bind(import_id)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub struct CsvRow {
    pub line: usize,
    pub name: String,
    pub email: String,
}

fn validate(row: &CsvRow) -> Result<(String, String), RowError> {
    let email = row.email.trim().to_ascii_lowercase();
    let name = row.name.trim().to_string();
    let fail = |error: &str| RowError {
        line: row.line,
        email: (!email.is_empty()).then(|| email.clone()),
        error: error.to_string(),
    };
    if email.is_empty() {
        return Err(fail("email is required"));
    }
    if !crate::validation::is_email(&email) {
        return Err(fail("email is not a valid address"));
    }
    if name.is_empty() {
        return Err(fail("name is required"));
    }
    if name.chars().count() > 200 {
        return Err(fail("name is longer than 200 characters"));
    }
    Ok((name, email))
}

/// Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF) into name/email rows.
pub fn parse_csv(input: &str) -> Result<Vec<CsvRow>, String> {
    let records = split_records(input)?;
    let mut iter = records
        .into_iter()
        .filter(|(_, fields)| !(fields.len() == 1 && fields[0].trim().is_empty()));
    let (_, header) = iter.next().ok_or("the CSV has no header row")?;
    let find = |name: &str| {
        header.iter().position(|h| {
            h.trim()
                .trim_start_matches('\u{feff}')
                .eq_ignore_ascii_case(name)
        })
    };
    let email_col = find("email").ok_or("the CSV header has no \"email\" column")?;
    let name_col = find("name").ok_or("the CSV header has no \"name\" column")?;
    Ok(iter
        .map(|(line, fields)| CsvRow {
            line,
            name: fields.get(name_col).cloned().unwrap_or_default(),
            email: fields.get(email_col).cloned().unwrap_or_default(),
        })
        .collect())
}

/// (starting line number, fields) per record.
fn split_records(input: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut record_line = 1;
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            ',' => fields.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                records.push((record_line, std::mem::take(&mut fields)));
                line += 1;
                record_line = line;
            }
            c => field.push(c),
        }
    }
    if in_quotes {
        return Err(format!(
            "unterminated quoted field starting on line {record_line}"
        ));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((record_line, fields));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_crlf_and_column_order() {
        let rows = parse_csv("Email,Name\r\na@x.io,\"Doe, Ann\"\r\n\r\nb@x.io,\"B \"\"Bee\"\"\"\n")
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            CsvRow {
                line: 2,
                name: "Doe, Ann".into(),
                email: "a@x.io".into()
            }
        );
        assert_eq!(rows[1].name, "B \"Bee\"");
        assert_eq!(rows[1].line, 4);
    }

    #[test]
    fn header_must_have_columns() {
        assert!(parse_csv("foo,bar\n1,2").unwrap_err().contains("email"));
        assert!(parse_csv("name,email\n\"oops,x@y.z\n").is_err());
    }
}

//! Meeting chat: messages are stored before they are broadcast, so history and
//! live delivery never disagree.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::AppError;

pub const MAX_BODY_CHARS: usize = 4000;
pub const MAX_PAGE: i64 = 100;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: Uuid,
    /// Position in the meeting's history; pass as `after` to page forward.
    #[sqlx(rename = "seq")]
    pub cursor: i64,
    pub meeting_id: Uuid,
    pub sender_id: Uuid,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatPage {
    pub items: Vec<ChatMessage>,
    /// Cursor for the next page, absent on the last page.
    pub next_cursor: Option<i64>,
}

/// Validates and trims a message body.
pub fn clean_body(body: &str) -> Result<String, AppError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(AppError::validation("message body must not be empty"));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(AppError::validation(format!(
            "message body must be at most {MAX_BODY_CHARS} characters"
        )));
    }
    Ok(body.to_string())
}

pub async fn store(
    db: &PgPool,
    meeting_id: Uuid,
    sender_id: Uuid,
    body: &str,
) -> Result<ChatMessage, AppError> {
    let body = clean_body(body)?;
    let message = sqlx::query_as::<_, ChatMessage>(
        "insert into meeting_messages (id, meeting_id, sender_id, body) values ($1, $2, $3, $4) \
         returning id, seq, meeting_id, sender_id, body, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(meeting_id)
    .bind(sender_id)
    .bind(body)
    .fetch_one(db)
    .await?;
    Ok(message)
}

/// Oldest first, strictly after `after`.
pub async fn page(
    db: &PgPool,
    meeting_id: Uuid,
    after: Option<i64>,
    limit: i64,
) -> Result<ChatPage, AppError> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::validation(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    // One extra row tells whether another page exists.
    let mut items = sqlx::query_as::<_, ChatMessage>(
        "select id, seq, meeting_id, sender_id, body, created_at from meeting_messages \
         where meeting_id = $1 and seq > $2 order by seq limit $3",
    )
    .bind(meeting_id)
    .bind(after.unwrap_or(0))
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|m| m.cursor)
    } else {
        None
    };
    Ok(ChatPage { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_trimmed_and_bounded_in_characters() {
        assert_eq!(clean_body("  hi \n").unwrap(), "hi");
        assert!(clean_body(" \t ").is_err());
        // 4000 multi-byte characters are fine, 4001 are not.
        assert!(clean_body(&"é".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(clean_body(&"é".repeat(MAX_BODY_CHARS + 1)).is_err());
    }
}

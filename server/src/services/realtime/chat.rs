//! Meeting chat: messages are stored before they are broadcast, so history and
//! live delivery never disagree. A client-chosen `clientMessageId` makes a re-send
//! (after a reconnect, when the ack was lost) return the stored message.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::AppError;

pub const MAX_BODY_CHARS: usize = 4000;
pub const MAX_PAGE: i64 = 100;
pub const MAX_CLIENT_ID_CHARS: usize = 64;

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
    /// The sender's own id for the message, when it gave one.
    pub client_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A stored message and whether this call stored it (false: a re-send).
#[derive(Debug)]
pub struct Stored {
    pub message: ChatMessage,
    pub is_new: bool,
}

const COLUMNS: &str = "id, seq, meeting_id, sender_id, body, client_message_id, created_at";

/// 1..=64 characters of `[A-Za-z0-9_-]`.
pub fn check_client_id(id: &str) -> Result<(), AppError> {
    let valid = (1..=MAX_CLIENT_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(AppError::validation(format!(
            "clientMessageId must be 1 to {MAX_CLIENT_ID_CHARS} characters of A-Z, a-z, 0-9, _ or -"
        )))
    }
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

/// Stores a message once per (meeting, sender, `client_id`); without `client_id`
/// every call stores a new one.
pub async fn store(
    db: &PgPool,
    meeting_id: Uuid,
    sender_id: Uuid,
    body: &str,
    client_id: Option<&str>,
) -> Result<Stored, AppError> {
    let body = clean_body(body)?;
    if let Some(id) = client_id {
        check_client_id(id)?;
    }
    // `do nothing` plus a lookup instead of `do update`: a re-send must return the
    // first message as stored, and concurrent re-sends agree on one row.
    let inserted = sqlx::query_as::<_, ChatMessage>(sqlx::AssertSqlSafe(format!(
        "insert into meeting_messages (id, meeting_id, sender_id, body, client_message_id) \
         values ($1, $2, $3, $4, $5) \
         on conflict (meeting_id, sender_id, client_message_id) where client_message_id is not null \
         do nothing returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(meeting_id)
    .bind(sender_id)
    .bind(body)
    .bind(client_id)
    .fetch_optional(db)
    .await?;
    if let Some(message) = inserted {
        return Ok(Stored {
            message,
            is_new: true,
        });
    }
    let message = sqlx::query_as::<_, ChatMessage>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from meeting_messages \
         where meeting_id = $1 and sender_id = $2 and client_message_id = $3"
    )))
    .bind(meeting_id)
    .bind(sender_id)
    .bind(client_id)
    .fetch_one(db)
    .await?;
    Ok(Stored {
        message,
        is_new: false,
    })
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
    let mut items = sqlx::query_as::<_, ChatMessage>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from meeting_messages \
         where meeting_id = $1 and seq > $2 order by seq limit $3"
    )))
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

    #[test]
    fn client_ids_are_short_and_url_safe() {
        assert!(check_client_id("msg-1_A").is_ok());
        assert!(check_client_id(&"a".repeat(MAX_CLIENT_ID_CHARS)).is_ok());
        for bad in [
            "",
            "has space",
            "é",
            "a/b",
            &"a".repeat(MAX_CLIENT_ID_CHARS + 1),
        ] {
            assert!(check_client_id(bad).is_err(), "{bad:?}");
        }
    }
}

//! Refresh-token sessions as stored rows: issuing a token, finding and rotating it,
//! and revoking a family or every session of an account. Storage only, below both
//! the login flows ([`super::auth`]) and account management ([`super::users`]),
//! and depending on neither.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::secrets;
use crate::error::AppResult;

/// A stored refresh token, looked up by the token a client presents.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredRefresh {
    pub id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub replaced_at: Option<DateTime<Utc>>,
}

/// Stores a new refresh token of `family_id` for `user_id`, valid for `ttl`, and
/// returns the token (only its hash is stored).
pub async fn issue(
    conn: &mut PgConnection,
    user_id: Uuid,
    family_id: Uuid,
    ttl: std::time::Duration,
) -> AppResult<String> {
    let token = secrets::random_token();
    sqlx::query(
        "insert into refresh_tokens (id, user_id, token_hash, family_id, expires_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(user_id)
    .bind(secrets::hash_token(&token))
    .bind(family_id)
    .bind(Utc::now() + ttl)
    .execute(&mut *conn)
    .await?;
    Ok(token)
}

/// The stored row of `token`, locked until the end of the transaction.
pub async fn find_for_update(
    conn: &mut PgConnection,
    token: &str,
) -> AppResult<Option<StoredRefresh>> {
    Ok(sqlx::query_as(
        "select id, user_id, family_id, expires_at, revoked_at, replaced_at \
         from refresh_tokens where token_hash = $1 for update",
    )
    .bind(secrets::hash_token(token.trim()))
    .fetch_optional(&mut *conn)
    .await?)
}

/// Marks the token `id` as rotated: replaced (so presenting it again is reuse) and revoked.
pub async fn mark_replaced(conn: &mut PgConnection, id: Uuid) -> AppResult<()> {
    sqlx::query("update refresh_tokens set replaced_at = now(), revoked_at = now() where id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The family `token` belongs to, if it is known.
pub async fn family_of(conn: &mut PgConnection, token: &str) -> AppResult<Option<Uuid>> {
    Ok(
        sqlx::query_scalar("select family_id from refresh_tokens where token_hash = $1")
            .bind(secrets::hash_token(token.trim()))
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Revokes every live token of the family (one login and all its rotations).
pub async fn revoke_family(conn: &mut PgConnection, family_id: Uuid) -> AppResult<()> {
    sqlx::query(
        "update refresh_tokens set revoked_at = now() where family_id = $1 and revoked_at is null",
    )
    .bind(family_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Revokes every live token of the account: all its sessions end.
pub async fn revoke_all(conn: &mut PgConnection, user_id: Uuid) -> AppResult<()> {
    sqlx::query(
        "update refresh_tokens set revoked_at = now() where user_id = $1 and revoked_at is null",
    )
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

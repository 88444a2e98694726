//! User accounts: the stored record, its public view, input rules and the
//! admin management operations.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{password, sessions};
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub const MIN_PASSWORD_LEN: usize = 8;
/// Bounds argon2 work per request.
pub const MAX_PASSWORD_LEN: usize = 256;
pub const MAX_NAME_LEN: usize = 100;

const COLUMNS: &str =
    "id, email, password_hash, name, role, email_verified, is_active, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub role: String,
    pub email_verified: bool,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl UserRecord {
    pub fn role(&self) -> AppResult<Role> {
        self.role
            .parse()
            .map_err(|e: String| AppError::internal(anyhow::anyhow!(e)))
    }

    pub fn view(&self) -> AppResult<UserView> {
        Ok(UserView {
            id: self.id,
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role()?,
            email_verified: self.email_verified,
            is_active: self.is_active,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// What clients see of an account (never the password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub email_verified: bool,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn normalize_email(email: &str) -> AppResult<String> {
    // Checked before trimming and lowercasing, so the documented pattern and maxLength
    // (on the value as sent) are exactly what is accepted.
    let trimmed = email.trim();
    if email.chars().count() <= 254 && crate::validation::is_email(trimmed) {
        Ok(trimmed.to_lowercase())
    } else {
        Err(AppError::validation("email must be a valid email address"))
    }
}

pub fn check_password(password: &str) -> AppResult<()> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(AppError::validation(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(AppError::validation(format!(
            "password must be at most {MAX_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

pub fn normalize_name(name: &str) -> AppResult<String> {
    // The length is of the value as sent (the documented maxLength), before trimming.
    if name.chars().count() > MAX_NAME_LEN {
        return Err(AppError::validation(format!(
            "name must be at most {MAX_NAME_LEN} characters"
        )));
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::validation("name is required"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(AppError::validation(format!(
            "name must be at most {MAX_NAME_LEN} characters"
        )));
    }
    Ok(name.to_string())
}

/// A validated account to create.
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub password: String,
    pub role: Role,
    pub email_verified: bool,
}

impl NewUser {
    pub fn validated(
        name: &str,
        email: &str,
        password: &str,
        role: Role,
        email_verified: bool,
    ) -> AppResult<Self> {
        let name = normalize_name(name)?;
        let email = normalize_email(email)?;
        check_password(password)?;
        Ok(NewUser {
            name,
            email,
            password: password.to_string(),
            role,
            email_verified,
        })
    }
}

/// Inserts the account; 409 when the email is taken (case-insensitively).
pub async fn insert(conn: &mut PgConnection, new: &NewUser) -> AppResult<UserRecord> {
    let hash = password::hash(&new.password).await?;
    let inserted: Option<UserRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into users (id, email, password_hash, name, role, email_verified) \
         values ($1, $2, $3, $4, $5, $6) on conflict ((lower(email))) do nothing \
         returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(&new.email)
    .bind(hash)
    .bind(&new.name)
    .bind(new.role.as_str())
    .bind(new.email_verified)
    .fetch_optional(&mut *conn)
    .await?;
    inserted.ok_or_else(|| AppError::conflict("an account with this email already exists"))
}

/// Marks a password that can never match: accounts created by an external sign-in
/// (Google) have no password until they set one through the reset flow.
pub const NO_PASSWORD: &str = "!external-sign-in";

/// Inserts an account created by an external identity provider (verified email, no
/// usable password); `None` when the email is already taken (a concurrent sign-in).
pub async fn insert_external(
    conn: &mut PgConnection,
    name: &str,
    email: &str,
    role: Role,
) -> AppResult<Option<UserRecord>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into users (id, email, password_hash, name, role, email_verified) \
         values ($1, $2, $3, $4, $5, true) on conflict ((lower(email))) do nothing \
         returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(email)
    .bind(NO_PASSWORD)
    .bind(name)
    .bind(role.as_str())
    .fetch_optional(&mut *conn)
    .await?)
}

pub async fn find_by_email(conn: &mut PgConnection, email: &str) -> AppResult<Option<UserRecord>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from users where lower(email) = lower($1)"
    )))
    .bind(email.trim())
    .fetch_optional(&mut *conn)
    .await?)
}

pub async fn find_by_id(conn: &mut PgConnection, id: Uuid) -> AppResult<Option<UserRecord>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from users where id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?)
}

pub async fn get(db: &PgPool, id: Uuid) -> AppResult<UserRecord> {
    let mut conn = db.acquire().await?;
    find_by_id(&mut conn, id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("user {id} not found")))
}

/// One page of accounts, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub page: u32,
    pub limit: u32,
    pub total: i64,
}

pub const MAX_PAGE_SIZE: u32 = 100;

pub async fn list(db: &PgPool, page: u32, limit: u32, role: Option<Role>) -> AppResult<UserPage> {
    if page == 0 || page > crate::services::page::MAX_PAGE {
        return Err(AppError::validation(format!(
            "page must be between 1 and {}",
            crate::services::page::MAX_PAGE
        )));
    }
    if limit == 0 || limit > MAX_PAGE_SIZE {
        return Err(AppError::validation(format!(
            "limit must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    let role = role.map(Role::as_str);
    let total: i64 =
        sqlx::query_scalar("select count(*) from users where ($1::text is null or role = $1)")
            .bind(role)
            .fetch_one(db)
            .await?;
    let rows: Vec<UserRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from users where ($1::text is null or role = $1) \
         order by created_at desc, id limit $2 offset $3"
    )))
    .bind(role)
    .bind(i64::from(limit))
    .bind(i64::from(page - 1) * i64::from(limit))
    .fetch_all(db)
    .await?;
    Ok(UserPage {
        items: rows
            .iter()
            .map(UserRecord::view)
            .collect::<AppResult<_>>()?,
        page,
        limit,
        total,
    })
}

/// Only superadmins may grant or manage the privileged roles.
pub fn ensure_may_manage(actor: Role, role: Role) -> AppResult<()> {
    if role.is_admin() && actor != Role::Superadmin {
        return Err(AppError::forbidden(
            "only a superadmin may manage admin or superadmin accounts",
        ));
    }
    Ok(())
}

pub async fn create(db: &PgPool, actor: Role, new: NewUser) -> AppResult<UserRecord> {
    ensure_may_manage(actor, new.role)?;
    let mut conn = db.acquire().await?;
    insert(&mut conn, &new).await
}

/// Fields an admin may change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

pub async fn update(
    state: &AppState,
    actor_id: Uuid,
    actor: Role,
    id: Uuid,
    changes: UserChanges,
) -> AppResult<UserRecord> {
    let name = changes.name.as_deref().map(normalize_name).transpose()?;
    let mut tx = state.db.begin().await?;
    let target: Option<UserRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from users where id = $1 for update"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let target = target.ok_or_else(|| AppError::not_found(format!("user {id} not found")))?;
    ensure_may_manage(actor, target.role()?)?;
    if let Some(role) = changes.role {
        ensure_may_manage(actor, role)?;
    }
    if id == actor_id
        && (changes.is_active == Some(false) || changes.role.is_some_and(|r| !r.is_admin()))
    {
        return Err(AppError::validation(
            "you cannot deactivate or demote your own account",
        ));
    }
    let updated: UserRecord = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update users set name = coalesce($2, name), role = coalesce($3, role), \
         is_active = coalesce($4, is_active) where id = $1 returning {COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(changes.role.map(Role::as_str))
    .bind(changes.is_active)
    .fetch_one(&mut *tx)
    .await?;
    if !updated.is_active || updated.role != target.role {
        // Sessions end with the change; the next login picks up the new state.
        sessions::revoke_all(&mut tx, id).await?;
    }
    tx.commit().await?;
    // Existing access tokens follow the new state on their next request, open sockets
    // and relays on every replica at once.
    crate::auth::status::changed(state, id).await;
    Ok(updated)
}

pub async fn deactivate(
    state: &AppState,
    actor_id: Uuid,
    actor: Role,
    id: Uuid,
) -> AppResult<UserRecord> {
    update(
        state,
        actor_id,
        actor,
        id,
        UserChanges {
            is_active: Some(false),
            ..UserChanges::default()
        },
    )
    .await
}

//! Idempotent seed data: reference colleges always, privileged accounts always
//! (from config), demo batches and courses only when ENABLE_SEEDING=true.

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::{Config, Credentials};
use crate::services::password;

const COLLEGES: &[(&str, &str)] = &[
    ("Indian Institute of Technology Delhi", "New Delhi"),
    ("Indian Institute of Technology Bombay", "Mumbai"),
    ("Delhi Technological University", "New Delhi"),
    ("Vellore Institute of Technology", "Vellore"),
    ("BITS Pilani", "Pilani"),
    ("Other", ""),
];

const COURSES: &[(&str, &str, &str)] = &[
    (
        "data-analytics",
        "Data Analytics",
        "SQL, Excel, Power BI and Python for analysts",
    ),
    (
        "data-science",
        "Data Science",
        "Statistics, machine learning and model deployment",
    ),
    (
        "business-analytics",
        "Business Analytics",
        "Case studies, dashboards and storytelling with data",
    ),
];

const BATCHES: &[(&str, &str)] = &[
    ("DA-2026-JAN", "data-analytics"),
    ("DS-2026-JAN", "data-science"),
    ("BA-2026-JAN", "business-analytics"),
];

pub async fn seed(db: &PgPool, config: &Config) -> anyhow::Result<()> {
    for (name, city) in COLLEGES {
        sqlx::query(
            "insert into colleges (id, name, city) values ($1, $2, nullif($3, '')) \
             on conflict ((lower(name))) do nothing",
        )
        .bind(Uuid::new_v4())
        .bind(name)
        .bind(city)
        .execute(db)
        .await
        .context("seeding colleges")?;
    }

    if let Some(admin) = &config.admin {
        ensure_privileged_user(db, admin, "admin", "Admin").await?;
    }
    if let Some(superadmin) = &config.superadmin {
        ensure_privileged_user(db, superadmin, "superadmin", "Super Admin").await?;
    }

    if config.enable_seeding {
        for (slug, title, description) in COURSES {
            sqlx::query(
                "insert into courses (id, slug, title, description) values ($1, $2, $3, $4) \
                 on conflict (slug) do nothing",
            )
            .bind(Uuid::new_v4())
            .bind(slug)
            .bind(title)
            .bind(description)
            .execute(db)
            .await
            .context("seeding courses")?;
        }
        for (name, course_slug) in BATCHES {
            sqlx::query(
                "insert into batches (id, name, course_id) \
                 select $1, $2, id from courses where slug = $3 \
                 on conflict ((lower(name))) do nothing",
            )
            .bind(Uuid::new_v4())
            .bind(name)
            .bind(course_slug)
            .execute(db)
            .await
            .context("seeding batches")?;
        }
    }
    Ok(())
}

/// Creates the account if missing; an existing account keeps its password (it may
/// have been changed since) but is guaranteed its role and an active state.
async fn ensure_privileged_user(
    db: &PgPool,
    credentials: &Credentials,
    role: &str,
    name: &str,
) -> anyhow::Result<()> {
    let exists: Option<Uuid> =
        sqlx::query_scalar("select id from users where lower(email) = lower($1)")
            .bind(&credentials.email)
            .fetch_optional(db)
            .await?;
    if exists.is_some() {
        sqlx::query(
            "update users set role = $2, is_active = true where lower(email) = lower($1) \
             and (role <> $2 or not is_active)",
        )
        .bind(&credentials.email)
        .bind(role)
        .execute(db)
        .await?;
        return Ok(());
    }
    let hash = password::hash(credentials.password.expose())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    sqlx::query(
        "insert into users (id, email, password_hash, name, role, email_verified) \
         values ($1, $2, $3, $4, $5, true) on conflict ((lower(email))) do nothing",
    )
    .bind(Uuid::new_v4())
    .bind(&credentials.email)
    .bind(hash)
    .bind(name)
    .bind(role)
    .execute(db)
    .await
    .with_context(|| format!("ensuring the {role} account"))?;
    Ok(())
}

//! Dashboard KPIs, computed by the kpi worker into `kpi_snapshots`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Kpis {
    pub total_users: i64,
    /// Active and inactive users per role.
    pub users_by_role: BTreeMap<String, i64>,
    pub active_users: i64,
    pub bookings_total: i64,
    pub bookings_confirmed: i64,
    pub bookings_cancelled: i64,
    pub meetings_total: i64,
    pub meetings_scheduled: i64,
    pub meetings_completed: i64,
    pub meetings_cancelled: i64,
    pub upcoming_meetings: i64,
    pub open_slots: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KpiSnapshot {
    pub id: Uuid,
    pub computed_at: DateTime<Utc>,
    pub kpis: Kpis,
}

pub async fn compute(db: &PgPool) -> sqlx::Result<Kpis> {
    let roles: Vec<(String, i64)> =
        sqlx::query_as("select role, count(*) from users group by role order by role")
            .fetch_all(db)
            .await?;
    let (active_users,): (i64,) = sqlx::query_as("select count(*) from users where is_active")
        .fetch_one(db)
        .await?;
    let (bookings_total, bookings_confirmed, bookings_cancelled): (i64, i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where status = 'confirmed'), \
             count(*) filter (where status = 'cancelled') from bookings",
    )
    .fetch_one(db)
    .await?;
    let (meetings_total, scheduled, completed, cancelled, upcoming): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "select count(*), count(*) filter (where status = 'scheduled'), \
             count(*) filter (where status = 'completed'), \
             count(*) filter (where status = 'cancelled'), \
             count(*) filter (where status = 'scheduled' and starts_at > now()) from meetings",
        )
        .fetch_one(db)
        .await?;
    let (open_slots,): (i64,) = sqlx::query_as(
        "select count(*) from mentor_slots where status = 'open' and starts_at > now()",
    )
    .fetch_one(db)
    .await?;
    let mut users_by_role: BTreeMap<String, i64> = crate::auth::Role::ALL
        .iter()
        .map(|r| (r.as_str().to_string(), 0))
        .collect();
    users_by_role.extend(roles);
    Ok(Kpis {
        total_users: users_by_role.values().sum(),
        users_by_role,
        active_users,
        bookings_total,
        bookings_confirmed,
        bookings_cancelled,
        meetings_total,
        meetings_scheduled: scheduled,
        meetings_completed: completed,
        meetings_cancelled: cancelled,
        upcoming_meetings: upcoming,
        open_slots,
    })
}

/// Computes and stores a snapshot; returns it.
pub async fn snapshot(db: &PgPool) -> sqlx::Result<KpiSnapshot> {
    let kpis = compute(db).await?;
    let data = serde_json::to_value(&kpis).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let (id, computed_at): (Uuid, DateTime<Utc>) = sqlx::query_as(
        "insert into kpi_snapshots (id, data) values ($1, $2) returning id, computed_at",
    )
    .bind(Uuid::new_v4())
    .bind(data)
    .fetch_one(db)
    .await?;
    Ok(KpiSnapshot {
        id,
        computed_at,
        kpis,
    })
}

pub async fn latest(db: &PgPool) -> sqlx::Result<Option<KpiSnapshot>> {
    let row: Option<(Uuid, DateTime<Utc>, serde_json::Value)> = sqlx::query_as(
        "select id, computed_at, data from kpi_snapshots order by computed_at desc limit 1",
    )
    .fetch_optional(db)
    .await?;
    row.map(|(id, computed_at, data)| {
        serde_json::from_value(data)
            .map(|kpis| KpiSnapshot {
                id,
                computed_at,
                kpis,
            })
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))
    })
    .transpose()
}

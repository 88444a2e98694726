//! Registration does not reveal which addresses have accounts, not even by its
//! timing: the taken-address path hashes the password and writes one outbox row
//! (a notice to the owner) like the new-address path. The medians of interleaved
//! runs must be close.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;

use crate::support::auth::{register, spawn};
use crate::support::http::post;
use crate::support::users::unique_email;

const ROUNDS: usize = 15;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

#[sqlx::test(migrations = false)]
async fn registering_a_taken_address_takes_as_long_as_a_new_one(db: PgPool) {
    let app = spawn(db).await;
    let taken = unique_email("taken");
    register(&app, "Owner", &taken, "owner-password-1").await;
    let attempt = |email: String| {
        let app = &app;
        async move {
            let started = Instant::now();
            let res = post(
                app,
                "/api/auth/register",
                json!({"name": "Probe", "email": email, "password": "probe-password-1"}),
            )
            .await;
            let took = started.elapsed();
            assert_eq!(res.status(), 202);
            (took, res.text().await.unwrap())
        }
    };
    // Warm up both paths (connections, the argon2 code path).
    for _ in 0..3 {
        attempt(unique_email("warm")).await;
        attempt(taken.clone()).await;
    }
    let (mut fresh, mut existing) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternate the order so drift on the shared machine hits both alike.
        let (a, b) = if round % 2 == 0 {
            let a = attempt(unique_email("fresh")).await;
            (a, attempt(taken.clone()).await)
        } else {
            let b = attempt(taken.clone()).await;
            (attempt(unique_email("fresh")).await, b)
        };
        assert_eq!(a.1, b.1, "same body");
        fresh.push(a.0);
        existing.push(b.0);
    }
    let (fresh, existing) = (median(fresh), median(existing));
    let diff = fresh.abs_diff(existing);
    println!(
        "FIGURE register_timing median_new_ms={:.1} median_taken_ms={:.1} diff_ms={:.1}",
        fresh.as_secs_f64() * 1e3,
        existing.as_secs_f64() * 1e3,
        diff.as_secs_f64() * 1e3
    );
    let tolerance = (fresh.min(existing) / 4).max(Duration::from_millis(10));
    assert!(
        diff <= tolerance,
        "median new {fresh:?} vs taken {existing:?}: differ by {diff:?} (> {tolerance:?})"
    );
    app.shutdown().await.unwrap();
}

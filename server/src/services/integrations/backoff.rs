//! Delays between retries of an idempotent provider call.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Delay before retry number `retry` (1 = the first retry): `base` doubled per retry,
/// capped at `max`, with "equal jitter" — half fixed, half scaled by `unit` in [0, 1] —
/// so clients that failed together spread out yet never retry at once.
pub fn delay(retry: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    let capped = base.saturating_mul(factor).min(max);
    let half = capped / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// [`delay`] with a random jitter.
pub fn jittered(retry: u32, base: Duration, max: Duration) -> Duration {
    delay(retry, base, max, rand::random::<f64>())
}

/// A `Retry-After` value (delta-seconds or an HTTP-date) as a wait from `now`.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(1);

    #[test]
    fn grows_exponentially_within_jitter_bounds() {
        for (retry, full) in [(1, 100), (2, 200), (3, 400), (4, 800)] {
            let full = Duration::from_millis(full);
            assert_eq!(delay(retry, BASE, MAX, 0.0), full / 2, "retry {retry}");
            assert_eq!(delay(retry, BASE, MAX, 1.0), full, "retry {retry}");
            for _ in 0..50 {
                let d = jittered(retry, BASE, MAX);
                assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?}");
            }
        }
    }

    #[test]
    fn is_capped_and_never_overflows() {
        assert_eq!(delay(5, BASE, MAX, 1.0), MAX);
        assert_eq!(delay(u32::MAX, BASE, MAX, 1.0), MAX);
        assert_eq!(delay(u32::MAX, BASE, MAX, 0.0), MAX / 2);
        // Out-of-range jitter is clamped.
        assert_eq!(delay(1, BASE, MAX, 7.0), BASE);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}

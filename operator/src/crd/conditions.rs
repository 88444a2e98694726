//! Typed status conditions (Kubernetes API conventions: CamelCase reasons, observedGeneration
//! on every condition, lastTransitionTime kept while the status does not change).
//!
//! `Ready` means "the current spec is released": its image and pod template are live, passed
//! the gate and verification, and every live replica is ready. So CI can run
//! `kubectl wait --for=condition=Ready` after a spec change; a failed release gives
//! `Degraded=True` and `Ready=False` with the reason.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    Ready,
    Progressing,
    Degraded,
    StandbyReady,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::Progressing => "Progressing",
            ConditionType::Degraded => "Degraded",
            ConditionType::StandbyReady => "StandbyReady",
        }
    }
}

macro_rules! reasons {
    ($($name:ident),* $(,)?) => {
        /// Condition and Event reasons.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Reason { $($name),* }

        impl Reason {
            pub fn as_str(self) -> &'static str {
                match self { $(Reason::$name => stringify!($name)),* }
            }

            pub fn parse(s: &str) -> Option<Reason> {
                match s { $(stringify!($name) => Some(Reason::$name),)* _ => None }
            }
        }
    };
}

reasons! {
    // Ready
    Released, ReleaseInProgress, Propagating, Verifying, ReleaseFailed, ActiveNotReady, NoLiveRelease, Paused,
    // Progressing
    Migrating, StandbyRollingOut, HealthGating, AwaitingPromotion, Idle,
    // Degraded
    AsExpected, SecretsUnavailable, MigrationFailed, HealthGateFailed, ProgressDeadlineExceeded,
    VerificationFailed, RolledBack, RolloutAborted,
    // StandbyReady
    GatePassed, Gating, StandbyWarm, StandbyNotReady, NoStandby,
    // Events only
    RolloutStarted, RolloutSuperseded, RolloutCancelled, GateStarted, HealthCheckFailed,
    HealthGatePassed, MigrationStarted, MigrationSucceeded, MigrationLogs, TrafficSwitched,
    VerificationPassed, VerificationCheckFailed, ScaledDown, StandbyLogs, ConnectionsDrained,
    NothingToAbort, RollbackUnavailable, RollbackStarted, RollbackInProgress, RetryRequested,
    NothingToRetry, PromotionRequested, NothingToPromote, ReleaseWaiting, ReleaseSnapshotMissing,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Upserts a condition, keeping `lastTransitionTime` when the status did not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: ConditionType,
    status: bool,
    reason: Reason,
    message: &str,
    observed_generation: Option<i64>,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" }.to_owned();
    let last_transition_time = conditions
        .iter()
        .find(|c| c.type_ == type_.as_str() && c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    let new = Condition {
        type_: type_.as_str().to_owned(),
        status,
        reason: reason.as_str().to_owned(),
        message: message.to_owned(),
        observed_generation,
        last_transition_time,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_.as_str()) {
        Some(c) => *c = new,
        None => conditions.push(new),
    }
}

/// The condition of `type_`, if set.
pub fn condition(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

/// True when the condition is set and `"True"`.
pub fn is_true(conditions: &[Condition], type_: ConditionType) -> bool {
    condition(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Reason of a `"True"` condition.
pub fn true_reason(conditions: &[Condition], type_: ConditionType) -> Option<Reason> {
    condition(conditions, type_)
        .filter(|c| c.status == "True")
        .and_then(|c| Reason::parse(&c.reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let mut c = Vec::new();
        set_condition(
            &mut c,
            ConditionType::Ready,
            false,
            Reason::ReleaseInProgress,
            "a",
            Some(1),
            t0,
        );
        set_condition(
            &mut c,
            ConditionType::Ready,
            false,
            Reason::ReleaseFailed,
            "b",
            Some(2),
            t1,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, Time(t0));
        assert_eq!(
            (c[0].reason.as_str(), c[0].observed_generation),
            ("ReleaseFailed", Some(2))
        );
        set_condition(
            &mut c,
            ConditionType::Ready,
            true,
            Reason::Released,
            "",
            Some(2),
            t1,
        );
        assert_eq!(c[0].last_transition_time, Time(t1));
        assert!(is_true(&c, ConditionType::Ready));
        assert_eq!(
            true_reason(&c, ConditionType::Ready),
            Some(Reason::Released)
        );
        assert_eq!(
            Reason::parse("HealthGateFailed"),
            Some(Reason::HealthGateFailed)
        );
        assert_eq!(Reason::parse("nope"), None);
    }
}

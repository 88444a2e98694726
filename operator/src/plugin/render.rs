//! Text views of a MasBackend for `kubectl mas`.

use std::fmt::Write as _;

use mas_operator::crd::{Color, MasBackend, MasBackendStatus};

fn age(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> String {
    let secs = k8s_openapi::jiff::Timestamp::now()
        .duration_since(t.0)
        .as_secs()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// One line: what is live.
pub fn summary(mb: &MasBackend) -> String {
    let name = mb.metadata.name.as_deref().unwrap_or("?");
    let s = mb.status.clone().unwrap_or_default();
    match (&s.active_release, s.active_color) {
        (Some(r), Some(c)) => format!(
            "masbackend/{name}: r{} ({}) released on {c}",
            r.revision, r.image
        ),
        _ => format!("masbackend/{name}: nothing released yet"),
    }
}

fn color_line(out: &mut String, s: &MasBackendStatus, c: Color) {
    let Some(state) = s.colors.get(c) else { return };
    let role = if s.active_color == Some(c) {
        "live"
    } else if s.rollout.as_ref().is_some_and(|r| r.color == c) {
        "rolling out"
    } else if state.scaled_down {
        "scaled down"
    } else {
        "warm standby"
    };
    let _ = writeln!(
        out,
        "├── {c:<5}  r{:<4} {:<40} {role}",
        state.release.revision, state.release.image
    );
}

/// The on-call view: colors, the release in flight, conditions, recent history.
pub fn tree(mb: &MasBackend) -> String {
    let name = mb.metadata.name.as_deref().unwrap_or("?");
    let ns = mb.metadata.namespace.as_deref().unwrap_or("?");
    let s = mb.status.clone().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "Name:        {name}");
    let _ = writeln!(out, "Namespace:   {ns}");
    let _ = writeln!(out, "Spec image:  {}", mb.spec.image);
    let _ = writeln!(
        out,
        "Strategy:    {:?}, promotion {:?}",
        mb.spec.strategy, mb.spec.promotion
    );
    let _ = writeln!(
        out,
        "Phase:       {:?}  {}",
        s.phase,
        s.message.clone().unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "Replicas:    {} desired, {} ready live",
        mb.spec.replicas, s.active_replicas
    );
    let _ = writeln!(out, "\nmasbackend/{name}");
    for c in Color::ALL {
        color_line(&mut out, &s, c);
    }
    if let Some(r) = &s.rollout {
        let _ = writeln!(
            out,
            "└── rollout  r{} ({}) on {}: {:?}, gate {}/{} passes, {} failures, trigger {:?}, started {} ago",
            r.release.revision,
            r.release.image,
            r.color,
            r.stage,
            r.gate_passes,
            mb.spec.health.success_threshold,
            r.gate_failures,
            r.trigger,
            age(&r.started_at)
        );
    }
    if let Some(v) = &s.verifying {
        let _ = writeln!(
            out,
            "└── verifying r{} on {} ({} failures)",
            v.revision, v.color, v.failures
        );
    }
    let _ = writeln!(out, "\nConditions:");
    for c in &s.conditions {
        let _ = writeln!(
            out,
            "  {:<13} {:<5} {:<22} {}",
            c.type_, c.status, c.reason, c.message
        );
    }
    let _ = writeln!(out, "\n{}", history(mb));
    out
}

pub fn history(mb: &MasBackend) -> String {
    let s = mb.status.clone().unwrap_or_default();
    let mut out = String::from(
        "REVISION  IMAGE                                     COLOR  TRIGGER          OUTCOME     SWITCH  AGE\n",
    );
    for h in &s.history {
        let rejected = if s.is_rejected(&h.release.template_hash) {
            " (rejected)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:<9} {:<41} {:<6} {:<16} {:<11} {:<7} {}{rejected}",
            format!("r{}", h.release.revision),
            h.release.image,
            h.color.to_string(),
            format!("{:?}", h.trigger),
            format!("{:?}", h.outcome),
            h.switch_seconds
                .map_or("-".to_owned(), |s| format!("{s:.1}s")),
            age(&h.at)
        );
    }
    out
}

//! Classifies PostgreSQL constraint violations so services can turn them into
//! 409/400 answers instead of 500s.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    Unique,
    /// An exclusion constraint (e.g. overlapping time ranges).
    Exclusion,
    ForeignKey,
    Check,
}

/// The violated constraint's kind and name, if `err` is a constraint violation.
pub fn violation(err: &sqlx::Error) -> Option<(Violation, String)> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    let kind = match db.code().as_deref() {
        Some("23505") => Violation::Unique,
        Some("23P01") => Violation::Exclusion,
        Some("23503") => Violation::ForeignKey,
        Some("23514") => Violation::Check,
        _ => return None,
    };
    Some((kind, db.constraint().unwrap_or_default().to_string()))
}

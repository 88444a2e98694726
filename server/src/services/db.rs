//! Classifies PostgreSQL constraint violations so services can turn them into
//! 409/400 answers instead of 500s.

use std::borrow::Cow;

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
    let constraint = db.constraint().map(Cow::from).unwrap_or_default();
    Some((kind, constraint.into_owned()))
}

/// Trims and checks a required text field's length (in characters).
pub fn required_text(field: &str, value: &str, max: usize) -> crate::error::AppResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(crate::error::AppError::validation(format!(
            "{field} must not be empty"
        )));
    }
    optional_text(field, value, max)
}

/// Trims and checks an optional text field's length (in characters).
pub fn optional_text(field: &str, value: &str, max: usize) -> crate::error::AppResult<String> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(crate::error::AppError::validation(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(value.to_string())
}

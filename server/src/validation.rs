//! Small input checks shared by config and request DTOs.

use serde::Deserialize;

use crate::error::{AppError, AppResult};

/// A pragmatic email check: one `@`, a non-empty local part and a dotted domain.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(char::is_whitespace)
        && value.chars().count() <= 254
}

/// Trims and checks a required text field's length (in characters).
pub fn required_text(field: &str, value: &str, max: usize) -> AppResult<String> {
    if value.trim().is_empty() {
        return Err(AppError::validation(format!("{field} must not be empty")));
    }
    optional_text(field, value, max)
}

/// Trims and checks an optional text field's length (in characters).
pub fn optional_text(field: &str, value: &str, max: usize) -> AppResult<String> {
    // The length of the value as sent, the documented maxLength, not of the trimmed one.
    if value.chars().count() > max {
        return Err(AppError::validation(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(value.trim().to_string())
}

/// A non-negative whole number, also when written with a fraction of zero (`2137.0`): JSON
/// Schema's `integer` (what the API documents) includes those.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(n) = n.as_u64() {
        return Ok(n);
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0 => Ok(f as u64),
        _ => Err(serde::de::Error::custom(format!(
            "expected a non-negative whole number, got {n}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::is_email;

    #[test]
    fn emails() {
        assert!(is_email("a@b.co"));
        assert!(!is_email("a@b"));
        assert!(!is_email("@b.co"));
        assert!(!is_email("a b@c.co"));
        assert!(!is_email("a@@c.co"));
    }
}

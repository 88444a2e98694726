//! Small input checks shared by config and request DTOs.

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

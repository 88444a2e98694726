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
pub fn whole_number<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    whole(serde_json::Number::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// [`whole_number`] for an optional member (`null` or absent is `None`; use with
/// `#[serde(default)]`).
pub fn optional_whole_number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    Option::<serde_json::Number>::deserialize(d)?
        .map(whole)
        .transpose()
        .map_err(serde::de::Error::custom)
}

fn whole<T: TryFrom<u64>>(n: serde_json::Number) -> Result<T, String> {
    let value = match (n.as_u64(), n.as_f64()) {
        (Some(v), _) => Some(v),
        (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0 => {
            Some(f as u64)
        }
        _ => None,
    };
    value
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| format!("expected a non-negative whole number in range, got {n}"))
}

#[cfg(test)]
mod tests {
    use super::{is_email, whole};

    #[test]
    fn whole_numbers_accept_a_zero_fraction_only() {
        let parse = |s: &str| whole::<i32>(serde_json::from_str(s).unwrap());
        assert_eq!(parse("47620"), Ok(47620));
        assert_eq!(parse("47620.0"), Ok(47620));
        assert!(parse("1.5").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("3000000000").is_err(), "out of i32");
    }

    #[test]
    fn emails() {
        assert!(is_email("a@b.co"));
        assert!(!is_email("a@b"));
        assert!(!is_email("@b.co"));
        assert!(!is_email("a b@c.co"));
        assert!(!is_email("a@@c.co"));
    }
}

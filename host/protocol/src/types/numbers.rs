//! Numbers as JavaScript plugins write them.
//!
//! Every JSON number a Node plugin writes is a double: a count may come as `3` or `3.0`.
//! Integer fields accept any integral number that fits; a fraction or an out-of-range
//! value is an error that names the value.

use serde::{Deserialize, Deserializer, de::Error};

/// Deserializes an optional integer that may be written as an integral float.
pub fn optional_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    integer_of(&number).map(Some).map_err(D::Error::custom)
}

/// Deserializes an integer that may be written as an integral float.
pub fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    integer_of(&number).map_err(D::Error::custom)
}

/// Deserializes an integer count that may be missing (`null`) or written as a float.
pub fn integer_or_zero<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    optional_integer(deserializer).map(Option::unwrap_or_default)
}

fn integer_of(number: &serde_json::Number) -> Result<i64, String> {
    if let Some(value) = number.as_i64() {
        return Ok(value);
    }
    match number.as_f64() {
        Some(value) if value.fract() == 0.0 && value.abs() < 9.007_199_254_740_992e15 => Ok(value as i64),
        _ => Err(format!("expected a whole number that fits in 53 bits, got {number}")),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Counts {
        #[serde(default, deserialize_with = "super::optional_integer")]
        volumes: Option<i64>,
    }

    fn volumes(json: &str) -> Result<Option<i64>, serde_json::Error> {
        serde_json::from_str::<Counts>(json).map(|counts| counts.volumes)
    }

    #[test]
    fn integral_floats_are_integers() {
        assert_eq!(volumes(r#"{"volumes": 3}"#).unwrap(), Some(3));
        assert_eq!(volumes(r#"{"volumes": 3.0}"#).unwrap(), Some(3));
        assert_eq!(volumes(r#"{"volumes": null}"#).unwrap(), None);
        assert_eq!(volumes(r#"{}"#).unwrap(), None);
    }

    #[test]
    fn fractions_and_huge_numbers_are_clear_errors() {
        let error = volumes(r#"{"volumes": 2.5}"#).unwrap_err().to_string();
        assert!(error.contains("whole number"), "{error}");
        assert!(volumes(r#"{"volumes": 1e300}"#).is_err());
        assert!(volumes(r#"{"volumes": "3"}"#).is_err());
    }
}

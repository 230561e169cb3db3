//! Numbers as JavaScript plugins write them.
//!
//! Every JSON number a Node plugin writes is a double: a count may come as `3` or `3.0`.
//! Integer fields accept any integral number that fits; a fraction or an out-of-range
//! value is an error that names the value.
//!
//! Codex reads some counts as integers (`chapters`, `rating`, `rank`…) that the host keeps
//! as `f64` to accept the fractions plugins send; [`whole_as_integer`] writes those back
//! as integers when they are whole, so a consumer with Codex's types reads what we write.

use serde::{Deserialize, Deserializer, Serializer, de::Error};

/// Largest integer an `f64` holds exactly (2^53).
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

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

/// Serializes an optional number as an integer when it is whole (`3.0` → `3`), else as is.
pub fn whole_as_integer<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(number) => whole_number_as_integer(number, serializer),
        None => serializer.serialize_none(),
    }
}

/// [`whole_as_integer`] for a number that is always present.
pub fn whole_number_as_integer<S: Serializer>(number: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if number.fract() == 0.0 && number.abs() < EXACT_INTEGER_LIMIT {
        serializer.serialize_i64(*number as i64)
    } else {
        serializer.serialize_f64(*number)
    }
}

fn integer_of(number: &serde_json::Number) -> Result<i64, String> {
    if let Some(value) = number.as_i64() {
        return Ok(value);
    }
    match number.as_f64() {
        Some(value) if value.fract() == 0.0 && value.abs() < EXACT_INTEGER_LIMIT => Ok(value as i64),
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

    #[derive(serde::Serialize)]
    struct Chapters(#[serde(serialize_with = "super::whole_as_integer")] Option<f64>);

    #[test]
    fn whole_numbers_are_written_as_integers_and_fractions_kept() {
        let written = |value| serde_json::to_string(&Chapters(value)).unwrap();
        assert_eq!(written(Some(12.0)), "12");
        assert_eq!(written(Some(-3.0)), "-3");
        assert_eq!(written(Some(12.5)), "12.5");
        assert_eq!(written(Some(1e300)), "1e+300");
        assert_eq!(written(None), "null");
    }
}

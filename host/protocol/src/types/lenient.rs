//! Reading fields a plugin may send carelessly, where the host needs nothing from them:
//! `null` for a string or a list, or metadata of the wrong shape in a pulled entry, must not
//! fail the whole answer.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `null` (or nothing) reads as the type's default.
pub fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// A value of the wrong shape reads as absent, instead of failing the message it is in.
pub fn absent_if_invalid<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Entry {
        #[serde(default, deserialize_with = "super::null_as_default")]
        name: String,
        #[serde(default, deserialize_with = "super::null_as_default")]
        tags: Vec<String>,
        #[serde(default, deserialize_with = "super::absent_if_invalid")]
        count: Option<u8>,
    }

    #[test]
    fn careless_values_read_as_absent() {
        let entry: Entry = serde_json::from_str(r#"{"name": null, "tags": null, "count": "many"}"#).unwrap();
        assert_eq!((entry.name.as_str(), entry.tags.len(), entry.count), ("", 0, None));
        let entry: Entry = serde_json::from_str(r#"{"name": "n", "tags": ["a"], "count": 3}"#).unwrap();
        assert_eq!((entry.name.as_str(), entry.tags.len(), entry.count), ("n", 1, Some(3)));
        assert!(
            serde_json::from_str::<Entry>(r#"{"tags": "a"}"#).is_err(),
            "a wrong type that is not null still fails"
        );
    }
}

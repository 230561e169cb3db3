//! A `get` answer read tolerantly (orchestration.md §5): an object carrying its external id
//! is an answer; an optional field of the wrong type is left out and reported, and is not a
//! fault of the plugin. A non-object, or a missing id, is.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A field of the answer that was left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub value: Value,
    pub why: String,
}

/// What could be read of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    pub metadata: T,
    pub problems: Vec<FieldProblem>,
    /// The answer had the legacy `totalBookCount`, which fills nothing.
    pub legacy_total_book_count: bool,
}

/// Reads `answer` as `T`, field by field: a field that does not read is left out and
/// reported. `Err` is a fault of the plugin: not an object, or no usable `externalId`.
pub fn decode<T: DeserializeOwned>(answer: &Value) -> Result<Decoded<T>, String> {
    let Value::Object(fields) = answer else {
        return Err(format!("the answer is not an object: {}", kind(answer)));
    };
    let external_id = match fields.get("externalId") {
        Some(Value::String(id)) if !id.trim().is_empty() => id.clone(),
        Some(other) => return Err(format!("`externalId` is not an id: {other}")),
        None => return Err("the answer has no `externalId`".into()),
    };
    let legacy_total_book_count = fields.contains_key("totalBookCount");
    // Most answers read whole: field by field only when one does not.
    if let Ok(metadata) = T::deserialize(answer) {
        return Ok(Decoded { metadata, problems: Vec::new(), legacy_total_book_count });
    }
    let mut problems = Vec::new();
    let mut kept = Map::new();
    kept.insert("externalId".into(), Value::String(external_id.clone()));
    let external_url = match fields.get("externalUrl") {
        Some(Value::String(url)) => url.clone(),
        Some(other) => {
            problems.push(FieldProblem {
                field: "externalUrl".into(),
                value: other.clone(),
                why: format!("expected a string, found {}", kind(other)),
            });
            String::new()
        }
        None => String::new(),
    };
    kept.insert("externalUrl".into(), Value::String(external_url));
    let base = kept.clone();
    for (name, value) in fields {
        if name == "externalId" || name == "externalUrl" {
            continue;
        }
        let mut alone = base.clone();
        alone.insert(name.clone(), value.clone());
        match serde_json::from_value::<T>(Value::Object(alone)) {
            Ok(_) => {
                kept.insert(name.clone(), value.clone());
            }
            Err(error) => {
                problems.push(FieldProblem { field: name.clone(), value: value.clone(), why: error.to_string() })
            }
        }
    }
    let metadata =
        serde_json::from_value(Value::Object(kept)).map_err(|error| format!("the answer does not read: {error}"))?;
    Ok(Decoded { metadata, problems, legacy_total_book_count })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::metadata::SeriesMetadata;
    use serde_json::json;

    #[test]
    fn a_wrongly_typed_optional_field_is_left_out_and_reported() {
        let answer = json!({
            "externalId": "x1", "externalUrl": "https://e/x1", "title": "Monster", "year": "nineteen ninety-four",
            "genres": ["Thriller", 5], "summary": "A doctor…", "totalBookCount": 18, "unknownField": {"a": 1}
        });
        let decoded = decode::<SeriesMetadata>(&answer).unwrap();
        assert_eq!(decoded.metadata.work.title.as_deref(), Some("Monster"));
        assert_eq!(decoded.metadata.work.summary.as_deref(), Some("A doctor…"));
        assert_eq!(decoded.metadata.work.year, None);
        assert!(decoded.metadata.work.genres.is_empty());
        let fields: Vec<&str> = decoded.problems.iter().map(|problem| problem.field.as_str()).collect();
        assert_eq!(fields, ["genres", "year"]);
        assert_eq!(decoded.problems[1].value, json!("nineteen ninety-four"));
        assert!(decoded.legacy_total_book_count);
    }

    #[test]
    fn no_id_or_no_object_is_a_fault() {
        assert!(decode::<SeriesMetadata>(&json!([1])).unwrap_err().contains("not an object"));
        assert!(decode::<SeriesMetadata>(&json!({"title": "x"})).unwrap_err().contains("no `externalId`"));
        assert!(decode::<SeriesMetadata>(&json!({"externalId": 7})).unwrap_err().contains("not an id"));
        assert!(decode::<SeriesMetadata>(&json!({"externalId": " "})).is_err());
        let no_url = decode::<SeriesMetadata>(&json!({"externalId": "x", "externalUrl": 3})).unwrap();
        assert_eq!(no_url.problems[0].field, "externalUrl");
    }
}

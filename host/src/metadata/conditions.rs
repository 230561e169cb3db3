//! Auto-match conditions (orchestration.md §3): whether a series may be matched
//! automatically, as `{mode: all|any, rules: [{field, operator, value?}]}`, evaluated on the
//! series' context ([`super::context`]) with the reference's 15 operators.
//!
//! Unlike the reference, a condition is checked when it is saved ([`Conditions::check`]): an
//! unknown field or operator, a value of the wrong type for its operator, or an invalid
//! pattern is refused, naming the rule, instead of evaluating as false forever. And
//! `contains` on a list of names (`metadata.genres`, `metadata.tags`) asks whether the list
//! holds that name, where the reference always answered no.

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How the rules combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    All,
    Any,
}

/// The reference's 15 operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    IsNull,
    IsNotNull,
    Equals,
    NotEquals,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    Matches,
    In,
    NotIn,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// A set of rules and how they combine; no rules: every series passes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub rules: Vec<Condition>,
}

/// A rule that cannot be saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("condition {number} (`{field}`): {why}")]
pub struct InvalidCondition {
    /// Counted from 1.
    pub number: usize,
    pub field: String,
    pub why: String,
}

/// What a field holds, which decides the operators and values that make sense for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Bool,
    /// A list of names (genres, tags).
    Names,
    /// A list of objects (authors, ratings…).
    Objects,
    /// Whatever the custom metadata holds there.
    Any,
}

const TEXT_FIELDS: [&str; 8] =
    ["title", "titleSort", "summary", "publisher", "imprint", "status", "language", "readingDirection"];
const NUMBER_FIELDS: [&str; 4] = ["ageRating", "year", "totalVolumeCount", "totalChapterCount"];
const NAME_LISTS: [&str; 2] = ["genres", "tags"];
const OBJECT_LISTS: [&str; 4] = ["alternateTitles", "authors", "externalRatings", "externalLinks"];
/// The reference's lock names, and ours for alternate titles.
pub const LOCK_FIELDS: [&str; 18] = [
    "titleLock",
    "titleSortLock",
    "summaryLock",
    "publisherLock",
    "imprintLock",
    "statusLock",
    "ageRatingLock",
    "languageLock",
    "readingDirectionLock",
    "yearLock",
    "totalVolumeCountLock",
    "totalChapterCountLock",
    "genresLock",
    "tagsLock",
    "customMetadataLock",
    "coverLock",
    "authorsJsonLock",
    "alternateTitlesLock",
];

/// `title_sort` → `titleSort`; camelCase is left as it is.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for character in name.chars() {
        if character == '_' {
            upper = true;
        } else if upper {
            out.extend(character.to_uppercase());
            upper = false;
        } else {
            out.push(character);
        }
    }
    out
}

/// A field path in its one spelling (camelCase; sources and custom paths as written), and
/// what it holds; `None` for a path the series context does not have.
fn resolve(field: &str) -> Option<(Vec<String>, Kind)> {
    let (head, rest) = match field.split_once('.') {
        Some((head, rest)) => (camel(head), Some(rest)),
        None => (camel(field), None),
    };
    match (head.as_str(), rest) {
        ("type", None) => Some((vec!["type".into()], Kind::Text)),
        ("bookCount", None) => Some((vec!["bookCount".into()], Kind::Number)),
        ("externalIds", Some("count")) => Some((vec!["externalIds".into(), "count".into()], Kind::Number)),
        ("externalIds", Some(source)) if !source.is_empty() => {
            Some((vec!["externalIds".into(), source.to_owned(), "id".into()], Kind::Text))
        }
        ("customMetadata", Some(path)) if path.split('.').all(|step| !step.is_empty()) => {
            let mut steps = vec!["customMetadata".to_owned()];
            steps.extend(path.split('.').map(str::to_owned));
            Some((steps, Kind::Any))
        }
        ("metadata", Some(name)) => {
            let name = camel(name);
            let kind = if TEXT_FIELDS.contains(&name.as_str()) {
                Kind::Text
            } else if NUMBER_FIELDS.contains(&name.as_str()) {
                Kind::Number
            } else if NAME_LISTS.contains(&name.as_str()) {
                Kind::Names
            } else if OBJECT_LISTS.contains(&name.as_str()) {
                Kind::Objects
            } else if LOCK_FIELDS.contains(&name.as_str()) {
                Kind::Bool
            } else {
                return None;
            };
            Some((vec!["metadata".into(), name], kind))
        }
        _ => None,
    }
}

fn known_fields() -> String {
    let metadata: Vec<&str> = TEXT_FIELDS
        .iter()
        .chain(&NUMBER_FIELDS)
        .chain(&NAME_LISTS)
        .chain(&OBJECT_LISTS)
        .chain(&LOCK_FIELDS)
        .copied()
        .collect();
    format!(
        "type, bookCount, externalIds.count, externalIds.<source>, customMetadata.<path> and metadata.<{}> (snake_case spellings too)",
        metadata.join("|")
    )
}

impl Conditions {
    /// Refuses the first rule that could never mean what its author meant.
    pub fn check(&self) -> Result<(), InvalidCondition> {
        for (index, rule) in self.rules.iter().enumerate() {
            let refuse = |why: String| InvalidCondition { number: index + 1, field: rule.field.clone(), why };
            let Some((_, kind)) = resolve(&rule.field) else {
                return Err(refuse(format!("no such field; the fields are {}", known_fields())));
            };
            check_value(rule.operator, kind, rule.value.as_ref()).map_err(refuse)?;
        }
        Ok(())
    }

    /// Whether `context` (a series context) passes; the first rule that decided, for the
    /// report, when it failed.
    pub fn evaluate(&self, context: &Value) -> Result<(), String> {
        if self.rules.is_empty() {
            return Ok(());
        }
        match self.mode {
            Mode::All => match self.rules.iter().find(|rule| !rule.passes(context)) {
                Some(failed) => Err(format!("{} {:?} failed", failed.field, failed.operator)),
                None => Ok(()),
            },
            Mode::Any => match self.rules.iter().any(|rule| rule.passes(context)) {
                true => Ok(()),
                false => Err("no condition passed".into()),
            },
        }
    }
}

fn check_value(operator: Operator, kind: Kind, value: Option<&Value>) -> Result<(), String> {
    use Operator::*;
    let value_is = |what: &str| format!("`{}` needs {what} as its value", operator_name(operator));
    match operator {
        IsNull | IsNotNull => match value {
            None | Some(Value::Null) => Ok(()),
            Some(_) => Err(format!("`{}` takes no value", operator_name(operator))),
        },
        Equals | NotEquals => match (kind, value) {
            (Kind::Names | Kind::Objects, _) => {
                Err("a list is never equal to a value; use `contains` or `is_null` on it".into())
            }
            (_, None | Some(Value::Null | Value::String(_) | Value::Number(_) | Value::Bool(_))) => Ok(()),
            _ => Err(value_is("a string, a number, a boolean or null")),
        },
        Gt | Gte | Lt | Lte => match (kind, value) {
            (Kind::Number | Kind::Any, Some(Value::Number(_))) => Ok(()),
            (Kind::Number | Kind::Any, _) => Err(value_is("a number")),
            _ => Err("this field is not a number".into()),
        },
        Contains | NotContains => match (kind, value) {
            (Kind::Objects | Kind::Bool, _) => {
                Err(format!("`{}` works on text and on genres and tags", operator_name(operator)))
            }
            (_, Some(Value::String(_))) => Ok(()),
            _ => Err(value_is("a string")),
        },
        StartsWith | EndsWith | Matches => match (kind, value) {
            (Kind::Names | Kind::Objects | Kind::Bool, _) => {
                Err(format!("`{}` works on text; this field is not text", operator_name(operator)))
            }
            (_, Some(Value::String(pattern))) if operator == Matches => {
                Regex::new(pattern).map(drop).map_err(|error| format!("the pattern {pattern:?} is invalid: {error}"))
            }
            (_, Some(Value::String(_))) => Ok(()),
            _ => Err(value_is("a string")),
        },
        In | NotIn => match (kind, value) {
            (Kind::Names | Kind::Objects, _) => Err("a list is never in a list; use `contains` on it".into()),
            (_, Some(Value::Array(items))) if items.iter().all(|item| !item.is_array() && !item.is_object()) => Ok(()),
            _ => Err(value_is("a list of strings, numbers or booleans")),
        },
    }
}

fn operator_name(operator: Operator) -> String {
    serde_json::to_value(operator).ok().and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default()
}

impl Condition {
    fn passes(&self, context: &Value) -> bool {
        use Operator::*;
        let Some((path, _)) = resolve(&self.field) else { return false };
        let count;
        let found = if path == ["externalIds", "count"] {
            count = Value::from(context.get("externalIds").and_then(Value::as_object).map_or(0, |ids| ids.len()));
            Some(&count)
        } else {
            path.iter().try_fold(context, |at, step| at.get(step))
        };
        let expected = self.value.as_ref().unwrap_or(&Value::Null);
        match self.operator {
            IsNull => is_empty(found),
            IsNotNull => !is_empty(found),
            Equals => equals(found, expected),
            NotEquals => !equals(found, expected),
            Gt | Gte | Lt | Lte => match (found.and_then(number), expected.as_f64()) {
                (Some(found), Some(expected)) => match self.operator {
                    Gt => found > expected,
                    Gte => found >= expected,
                    Lt => found < expected,
                    _ => found <= expected,
                },
                _ => false,
            },
            Contains => contains(found, expected),
            NotContains => !contains(found, expected),
            StartsWith => text_test(found, expected, |text, needle| text.starts_with(needle)),
            EndsWith => text_test(found, expected, |text, needle| text.ends_with(needle)),
            Matches => {
                text_test(found, expected, |text, pattern| compiled(pattern).is_some_and(|regex| regex.is_match(text)))
            }
            In => is_in(found, expected),
            NotIn => !is_in(found, expected),
        }
    }
}

/// `pattern` compiled once for the whole process (a library's conditions are evaluated for
/// every series), failures included; the cache is emptied past 1,024 patterns.
fn compiled(pattern: &str) -> Option<Regex> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    static CACHE: LazyLock<Mutex<HashMap<String, Option<Regex>>>> = LazyLock::new(Mutex::default);
    let mut cache = CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = cache.get(pattern) {
        return known.clone();
    }
    if cache.len() >= 1024 {
        cache.clear();
    }
    let regex = Regex::new(pattern).ok();
    cache.insert(pattern.to_owned(), regex.clone());
    regex
}

/// Missing, null, `""` or an empty list; `0` and `false` are values.
fn is_empty(found: Option<&Value>) -> bool {
    match found {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(_) => false,
    }
}

/// A scalar as text: strings as they are, numbers as Rust prints them (`5.0` → `5`).
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => number.as_f64().map(|number| number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// The reference's equality: same-typed scalars directly (numbers within ε), anything else
/// by their text; a missing or null field equals null.
fn equals(found: Option<&Value>, expected: &Value) -> bool {
    match (found.unwrap_or(&Value::Null), expected) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => (a - b).abs() < f64::EPSILON,
            _ => false,
        },
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (found, expected) => match (text(found), expected_text(expected)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    }
}

/// The expected side's text: a number as it was written (`5.0` stays `5.0`).
fn expected_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => Some(number.to_string()),
        other => text(other),
    }
}

fn contains(found: Option<&Value>, expected: &Value) -> bool {
    let Some(needle) = expected.as_str() else { return false };
    match found {
        Some(Value::Array(items)) => items.iter().any(|item| item.as_str() == Some(needle)),
        Some(value) => text(value).is_some_and(|text| text.contains(needle)),
        None => false,
    }
}

fn text_test(found: Option<&Value>, expected: &Value, test: impl Fn(&str, &str) -> bool) -> bool {
    match (found.and_then(text), expected.as_str()) {
        (Some(text), Some(needle)) => test(&text, needle),
        _ => false,
    }
}

fn is_in(found: Option<&Value>, expected: &Value) -> bool {
    let (Some(found), Value::Array(items)) = (found, expected) else { return false };
    !found.is_array() && items.iter().any(|item| equals(Some(found), item))
}

#[cfg(test)]
mod tests;

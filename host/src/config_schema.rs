//! A plugin's `configSchema` and `userConfigSchema` (the SDK's `ConfigSchema`: fields with a
//! key, label, free-form type hint, `required`, `default`), read leniently, and what the
//! coming page does with it: a form's strings turned into a config, and a config checked
//! against the fields, each fault naming its field. Codex forwards config unchecked; the
//! page checks what it can (the known types: number, string, boolean, string-array,
//! object) and takes anything for another type. Also the command of a process plugin as
//! an admin types it: one argument per line. Pure.

use serde::Deserialize;
use serde_json::{Map, Value};

/// A field's type hint, as the SDK names the common ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    Number,
    String,
    Boolean,
    StringArray,
    Object,
    /// Another hint: any JSON value, edited as JSON.
    Other(String),
}

impl FieldKind {
    fn of(hint: &str) -> Self {
        match hint {
            "number" | "integer" => Self::Number,
            "string" | "password" | "secret" | "url" => Self::String,
            "boolean" => Self::Boolean,
            "string-array" => Self::StringArray,
            "object" => Self::Object,
            other => Self::Other(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawField {
    key: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<Value>,
}

/// One field of a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigField {
    pub key: String,
    pub label: String,
    pub description: Option<String>,
    pub kind: FieldKind,
    pub required: bool,
    pub default: Option<Value>,
}

/// A field's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub why: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "`{}` {}", self.field, self.why)
    }
}

/// A config schema.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigSchema {
    pub description: Option<String>,
    pub fields: Vec<ConfigField>,
}

impl ConfigSchema {
    /// Reads a manifest's schema; a field without a key is left out, a missing type is a
    /// string's; `None` when the value has no `fields` list.
    pub fn read(value: &Value) -> Option<Self> {
        let fields = value.get("fields")?.as_array()?;
        let fields = fields
            .iter()
            .filter_map(|field| serde_json::from_value::<RawField>(field.clone()).ok())
            .filter(|field| !field.key.is_empty())
            .map(|field| ConfigField {
                label: field.label.unwrap_or_else(|| field.key.clone()),
                kind: FieldKind::of(field.kind.as_deref().unwrap_or("string")),
                key: field.key,
                description: field.description,
                required: field.required,
                default: field.default,
            })
            .collect();
        let description = value.get("description").and_then(Value::as_str).map(str::to_owned);
        Some(Self { description, fields })
    }

    /// Checks `config`: a required field without a value or a default, and a value of the
    /// wrong type, are faults. Keys the schema does not name are the plugin's business.
    pub fn check(&self, config: &Map<String, Value>) -> Result<(), Vec<FieldError>> {
        let mut faults = Vec::new();
        for field in &self.fields {
            match config.get(&field.key) {
                None | Some(Value::Null) if field.required && field.default.is_none() => {
                    faults.push(FieldError { field: field.key.clone(), why: "is required".into() });
                }
                Some(value) if !value.is_null() && !fits(&field.kind, value) => {
                    faults.push(FieldError {
                        field: field.key.clone(),
                        why: format!("must be {}", described(&field.kind)),
                    });
                }
                _ => {}
            }
        }
        if faults.is_empty() { Ok(()) } else { Err(faults) }
    }

    /// A config from a form's fields (as a browser sends them: strings; a checkbox left
    /// unchecked is absent): numbers parsed, a string-array one item per line, an object
    /// or another type as JSON; an empty field is left out. Then checked as [`Self::check`].
    pub fn from_form(&self, form: &[(String, String)]) -> Result<Map<String, Value>, Vec<FieldError>> {
        let mut config = Map::new();
        let mut faults = Vec::new();
        for field in &self.fields {
            let text = form.iter().find(|(key, _)| *key == field.key).map(|(_, value)| value.trim());
            let value = match (&field.kind, text) {
                (FieldKind::Boolean, text) => Some(Ok(Value::Bool(matches!(text, Some("on" | "true" | "1"))))),
                (_, None | Some("")) => None,
                (FieldKind::String, Some(text)) => Some(Ok(Value::String(text.to_owned()))),
                (FieldKind::Number, Some(text)) => Some(number(text)),
                (FieldKind::StringArray, Some(text)) => Some(Ok(Value::Array(
                    text.lines().map(str::trim).filter(|line| !line.is_empty()).map(|line| line.into()).collect(),
                ))),
                (FieldKind::Object | FieldKind::Other(_), Some(text)) => {
                    Some(serde_json::from_str(text).map_err(|error| format!("is not JSON: {error}")))
                }
            };
            match value {
                Some(Ok(value)) => {
                    config.insert(field.key.clone(), value);
                }
                Some(Err(why)) => faults.push(FieldError { field: field.key.clone(), why }),
                None => {}
            }
        }
        if !faults.is_empty() {
            return Err(faults);
        }
        self.check(&config).map(|()| config)
    }
}

fn number(text: &str) -> Result<Value, String> {
    if let Ok(integer) = text.parse::<i64>() {
        return Ok(Value::from(integer));
    }
    match text.parse::<f64>() {
        Ok(number) if number.is_finite() => Ok(Value::from(number)),
        _ => Err(format!("{text:?} is not a number")),
    }
}

fn fits(kind: &FieldKind, value: &Value) -> bool {
    match kind {
        FieldKind::Number => value.is_number(),
        FieldKind::String => value.is_string(),
        FieldKind::Boolean => value.is_boolean(),
        FieldKind::StringArray => value.as_array().is_some_and(|items| items.iter().all(Value::is_string)),
        FieldKind::Object => value.is_object(),
        FieldKind::Other(_) => true,
    }
}

fn described(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Number => "a number",
        FieldKind::String => "text",
        FieldKind::Boolean => "true or false",
        FieldKind::StringArray => "a list of texts",
        FieldKind::Object => "a JSON object",
        FieldKind::Other(_) => "JSON",
    }
}

/// A process plugin's command as an admin types it, one argument per line (the seeds'
/// "Add Plugin": `-y` and `@package@1.0.0` on lines of their own): blank lines are left
/// out, and a line that starts with a dash and holds a space outside an `=value` is
/// refused as several arguments on one line.
pub fn argument_lines(text: &str) -> Result<Vec<String>, String> {
    let mut arguments = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let before_value = line.split_once('=').map_or(line, |(option, _)| option);
        if line.starts_with('-') && before_value.contains(char::is_whitespace) {
            return Err(format!(
                "line {}, {line:?}, holds several arguments: put each on a line of its own",
                number + 1
            ));
        }
        arguments.push(line.to_owned());
    }
    Ok(arguments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> ConfigSchema {
        ConfigSchema::read(&json!({"description": "Nyaa", "fields": [
            {"key": "uploaders", "label": "Uploaders", "type": "string-array"},
            {"key": "requestTimeoutMs", "label": "Timeout", "type": "number", "default": 10000},
            {"key": "baseUrl", "label": "Base URL", "type": "string", "required": true},
            {"key": "digital", "label": "Digital only", "type": "boolean"},
            {"key": "extra", "label": "Extra", "type": "object"},
            {"key": "odd", "label": "Odd", "type": "color"},
            {"label": "no key"}
        ]}))
        .unwrap()
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_schema_is_read_leniently() {
        let schema = schema();
        assert_eq!(schema.fields.len(), 6, "the field without a key is left out");
        assert_eq!(schema.fields[5].kind, FieldKind::Other("color".into()));
        assert!(ConfigSchema::read(&json!({"nofields": []})).is_none());
    }

    #[test]
    fn a_config_is_checked_field_by_field() {
        let schema = schema();
        assert!(schema.check(&map(json!({"baseUrl": "http://x", "uploaders": ["a"], "odd": [1]}))).is_ok());
        let faults = schema
            .check(&map(json!({"uploaders": "a", "requestTimeoutMs": "10", "digital": 1, "extra": [], "unknown": 1})))
            .unwrap_err();
        let named: Vec<(&str, &str)> = faults.iter().map(|fault| (fault.field.as_str(), fault.why.as_str())).collect();
        assert_eq!(
            named,
            [
                ("uploaders", "must be a list of texts"),
                ("requestTimeoutMs", "must be a number"),
                ("baseUrl", "is required"),
                ("digital", "must be true or false"),
                ("extra", "must be a JSON object"),
            ]
        );
    }

    #[test]
    fn a_form_becomes_a_config() {
        let form =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let config = schema()
            .from_form(&form(&[
                ("uploaders", "1r0n\n\n  tsuna69 \r\n"),
                ("requestTimeoutMs", "2500"),
                ("baseUrl", "http://127.0.0.1:8080"),
                ("digital", "on"),
                ("extra", r#"{"a": 1}"#),
                ("odd", ""),
            ]))
            .unwrap();
        assert_eq!(
            Value::Object(config),
            json!({"uploaders": ["1r0n", "tsuna69"], "requestTimeoutMs": 2500, "baseUrl": "http://127.0.0.1:8080",
                   "digital": true, "extra": {"a": 1}})
        );
        let faults = schema().from_form(&form(&[("requestTimeoutMs", "soon"), ("extra", "{")])).unwrap_err();
        assert_eq!(faults[0].field, "requestTimeoutMs");
        assert!(faults[0].why.contains("not a number"));
        assert!(faults[1].why.contains("not JSON"));
        let missing = schema().from_form(&form(&[])).unwrap_err();
        assert_eq!((missing[0].field.as_str(), missing[0].why.as_str()), ("baseUrl", "is required"));
    }

    #[test]
    fn arguments_come_one_per_line() {
        assert_eq!(
            argument_lines("-y\n@ashdev/codex-plugin-metadata-openlibrary@2.5.0\n").unwrap(),
            ["-y", "@ashdev/codex-plugin-metadata-openlibrary@2.5.0"]
        );
        assert_eq!(
            argument_lines("\n/opt/plugins/my dir/index.js\n--name=a b\n").unwrap(),
            ["/opt/plugins/my dir/index.js", "--name=a b"]
        );
        let error = argument_lines("-y @ashdev/codex-plugin-metadata-openlibrary@2.5.0").unwrap_err();
        assert!(error.contains("line 1") && error.contains("several arguments"), "{error}");
        assert!(argument_lines("").unwrap().is_empty());
    }
}

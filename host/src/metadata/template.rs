//! Search query templates (orchestration.md §2): Handlebars (the `handlebars` crate), no
//! HTML escaping, non-strict (a missing value renders as nothing), with the reference's 22
//! helpers under the same names and positional arguments.
//!
//! Differences from the reference, each a fix: `length` and `truncate` count characters,
//! not bytes; `padStart` pads to a number of characters and refuses a length past the
//! output cap instead of allocating it; and the cap (10,000 bytes) is enforced while the
//! output is written, so no `{{#each}}` or `replace` can build more than that first.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderError, RenderErrorReason,
    Renderable, ScopedJson,
};
use serde_json::Value;
use std::io::Write;

/// The most a rendered query may be.
pub const MAX_OUTPUT_BYTES: usize = 10_000;

const NAME: &str = "query";

/// A template that parsed, ready to render.
pub struct SearchTemplate {
    registry: Handlebars<'static>,
    source: String,
}

impl std::fmt::Debug for SearchTemplate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_tuple("SearchTemplate").field(&self.source).finish()
    }
}

/// A template that does not parse, or failed to render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

impl SearchTemplate {
    /// Parses `source`; a template that does not parse is refused, with where and why.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        // Partials and decorators (`{{> p}}`, `{{#> p}}`, `{{#*inline}}`) can call
        // themselves, and the engine only stops a template that names itself: a recursion
        // through an inline partial overflows the stack and aborts the process. A search
        // query has no use for them.
        static PARTIALS: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(r"\{\{\{?~?\s*#?\s*[>*]").expect("a valid pattern"));
        if PARTIALS.is_match(source) {
            return Err(TemplateError(
                "the search template uses a partial or a decorator (`{{> …}}`, `{{#*inline …}}`), which a search template may not".into(),
            ));
        }
        let mut registry = Handlebars::new();
        registry.register_escape_fn(handlebars::no_escape);
        registry.set_strict_mode(false);
        register_helpers(&mut registry);
        registry
            .register_template_string(NAME, source)
            .map_err(|error| TemplateError(format!("the search template does not parse: {error}")))?;
        Ok(Self { registry, source: source.to_owned() })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the query for `context` (see [`super::context`]), trimmed.
    pub fn render(&self, context: &Value) -> Result<String, TemplateError> {
        let mut output = CappedOutput(Vec::new());
        self.registry.render_to_write(NAME, context, &mut output).map_err(|error| {
            let capped = error.to_string().contains(CAP_MESSAGE);
            TemplateError(if capped {
                format!("the search template's output is over {MAX_OUTPUT_BYTES} bytes")
            } else {
                format!("the search template failed to render: {error}")
            })
        })?;
        let text = String::from_utf8_lossy(&output.0);
        Ok(text.trim().to_owned())
    }
}

const CAP_MESSAGE: &str = "template output cap reached";

/// Collects output, refusing to grow past [`MAX_OUTPUT_BYTES`].
struct CappedOutput(Vec<u8>);

impl Write for CappedOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + bytes.len() > MAX_OUTPUT_BYTES {
            return Err(std::io::Error::other(CAP_MESSAGE));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type ValueFn = fn(&[Value]) -> Result<String, String>;

/// A helper that computes a string from its arguments (usable in a subexpression).
struct ValueHelper(ValueFn);

impl HelperDef for ValueHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let arguments: Vec<Value> = helper.params().iter().map(|param| param.value().clone()).collect();
        let failed = |why: String| RenderError::from(RenderErrorReason::Other(format!("{}: {why}", helper.name())));
        let text = (self.0)(&arguments).map_err(failed)?;
        // A helper's result may feed another helper without being written: capped here too.
        if text.len() > MAX_OUTPUT_BYTES {
            return Err(failed(format!("its result is over {MAX_OUTPUT_BYTES} bytes")));
        }
        Ok(ScopedJson::Derived(Value::String(text)))
    }
}

type BlockTest = fn(&[Option<&Value>]) -> bool;

/// A block helper: renders its block when the test passes, its `{{else}}` otherwise.
struct BlockHelper(BlockTest);

impl HelperDef for BlockHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        registry: &'reg Handlebars<'reg>,
        context: &'rc Context,
        render: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let arguments: Vec<Option<&Value>> = helper
            .params()
            .iter()
            .map(|param| if param.is_value_missing() { None } else { Some(param.value()) })
            .collect();
        let block = if (self.0)(&arguments) { helper.template() } else { helper.inverse() };
        match block {
            Some(block) => block.render(registry, context, render, out),
            None => Ok(()),
        }
    }
}

fn register_helpers(registry: &mut Handlebars<'static>) {
    let values: [(&str, ValueFn); 14] = [
        ("lowercase", |a| Ok(string(a, 0).to_lowercase())),
        ("uppercase", |a| Ok(string(a, 0).to_uppercase())),
        ("capitalize", |a| Ok(capitalize(&string(a, 0)))),
        ("trim", |a| Ok(string(a, 0).trim().to_owned())),
        ("truncate", truncate),
        ("replace", replace),
        ("split", split),
        ("join", join),
        ("urlencode", |a| Ok(urlencode(&string(a, 0)))),
        ("padStart", pad_start),
        ("default", default),
        ("length", length),
        ("lookup", lookup),
        ("math", math),
    ];
    for (name, helper) in values {
        registry.register_helper(name, Box::new(ValueHelper(helper)));
    }
    let blocks: [(&str, BlockTest); 8] = [
        ("gt", |a| number_or_zero(a, 0) > number_or_zero(a, 1)),
        ("lt", |a| number_or_zero(a, 0) < number_or_zero(a, 1)),
        ("and", |a| truthy(a.first().copied().flatten()) && truthy(a.get(1).copied().flatten())),
        ("or", |a| truthy(a.first().copied().flatten()) || truthy(a.get(1).copied().flatten())),
        ("exists", exists),
        ("ifEquals", if_equals),
        ("ifNotEquals", |a| !if_equals(a)),
        ("includes", |a| {
            let text = a.first().copied().flatten().and_then(Value::as_str).unwrap_or("");
            let search = a.get(1).copied().flatten().and_then(Value::as_str).unwrap_or("");
            text.contains(search)
        }),
    ];
    for (name, helper) in blocks {
        registry.register_helper(name, Box::new(BlockHelper(helper)));
    }
}

/// Argument `at` as a string; anything that is not a string is empty.
fn string(arguments: &[Value], at: usize) -> String {
    arguments.get(at).and_then(Value::as_str).unwrap_or("").to_owned()
}

/// Argument `at` as a count, if it is a whole number ≥ 0.
fn count(arguments: &[Value], at: usize) -> Option<usize> {
    arguments.get(at).and_then(Value::as_u64).and_then(|count| usize::try_from(count).ok())
}

fn capitalize(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters.flat_map(char::to_lowercase)).collect(),
        None => String::new(),
    }
}

/// `truncate text len=100 suffix="..."`: the first `len` characters and the suffix, when
/// the text is longer.
fn truncate(arguments: &[Value]) -> Result<String, String> {
    let text = string(arguments, 0);
    let length = count(arguments, 1).unwrap_or(100);
    let suffix = arguments.get(2).and_then(Value::as_str).unwrap_or("...");
    if text.chars().count() <= length {
        return Ok(text);
    }
    Ok(text.chars().take(length).collect::<String>() + suffix)
}

/// `replace text search replacement`: every occurrence, literally.
fn replace(arguments: &[Value]) -> Result<String, String> {
    let (text, search, replacement) = (string(arguments, 0), string(arguments, 1), string(arguments, 2));
    let grows_to = if search.is_empty() {
        text.len() + (text.chars().count() + 1) * replacement.len()
    } else {
        text.len() + text.matches(search.as_str()).count() * replacement.len()
    };
    if grows_to > MAX_OUTPUT_BYTES {
        return Err(format!("the result would be over {MAX_OUTPUT_BYTES} bytes"));
    }
    Ok(text.replace(search.as_str(), &replacement))
}

/// `split text sep=" " index=0`: one part; an index past the end is empty.
fn split(arguments: &[Value]) -> Result<String, String> {
    let text = string(arguments, 0);
    let separator = arguments.get(1).and_then(Value::as_str).unwrap_or(" ");
    let index = count(arguments, 2).unwrap_or(0);
    Ok(text.split(separator).nth(index).unwrap_or("").to_owned())
}

/// `join list sep=", "`: strings, numbers and booleans; other items are left out.
fn join(arguments: &[Value]) -> Result<String, String> {
    let Some(Value::Array(items)) = arguments.first() else { return Ok(String::new()) };
    let separator = arguments.get(1).and_then(Value::as_str).unwrap_or(", ");
    let parts: Vec<String> = items.iter().filter_map(scalar_text).collect();
    let joined = parts.iter().map(String::len).sum::<usize>() + separator.len() * parts.len().saturating_sub(1);
    if joined > MAX_OUTPUT_BYTES {
        return Err(format!("the result would be over {MAX_OUTPUT_BYTES} bytes"));
    }
    Ok(parts.join(separator))
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Percent-encodes everything but `A-Z a-z 0-9 - . _ ~`.
fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(char::from(byte)),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// `padStart value len=2 char="0"`: padded on the left to `len` characters.
fn pad_start(arguments: &[Value]) -> Result<String, String> {
    let text = match arguments.first() {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    };
    let length = count(arguments, 1).unwrap_or(2);
    if length > MAX_OUTPUT_BYTES {
        return Err(format!("a length of {length} is over the query's {MAX_OUTPUT_BYTES}-byte limit"));
    }
    let padding = arguments.get(2).and_then(Value::as_str).unwrap_or("0");
    let missing = length.saturating_sub(text.chars().count());
    if padding.is_empty() || missing == 0 {
        return Ok(text);
    }
    let pad: String = padding.chars().cycle().take(missing).collect();
    Ok(pad + &text)
}

/// `default value fallback`: the fallback for a missing, null or empty value, and for a
/// list or an object; `0` and `false` are values.
fn default(arguments: &[Value]) -> Result<String, String> {
    match arguments.first() {
        Some(value @ (Value::Number(_) | Value::Bool(_))) => Ok(scalar_text(value).unwrap_or_default()),
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        _ => Ok(string(arguments, 1)),
    }
}

/// `length value`: a list's items, a string's characters (the reference counted bytes).
fn length(arguments: &[Value]) -> Result<String, String> {
    Ok(match arguments.first() {
        Some(Value::Array(items)) => items.len(),
        Some(Value::String(text)) => text.chars().count(),
        _ => 0,
    }
    .to_string())
}

/// `lookup object key`: a scalar under `key`; anything else is empty.
fn lookup(arguments: &[Value]) -> Result<String, String> {
    let (Some(Value::Object(object)), Some(Value::String(key))) = (arguments.first(), arguments.get(1)) else {
        return Ok(String::new());
    };
    Ok(object.get(key).and_then(scalar_text).unwrap_or_default())
}

/// `math a op b` with `+ - * / %`: whole results print as integers; a division or a
/// remainder by zero, an unknown operator or a missing operand is empty.
fn math(arguments: &[Value]) -> Result<String, String> {
    let (Some(a), Some(op), Some(b)) = (
        arguments.first().and_then(Value::as_f64),
        arguments.get(1).and_then(Value::as_str),
        arguments.get(2).and_then(Value::as_f64),
    ) else {
        return Ok(String::new());
    };
    let result = match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" if b != 0.0 => a / b,
        "%" if b != 0.0 => a % b,
        _ => return Ok(String::new()),
    };
    if result.fract() == 0.0 && result.abs() < 9.0e15 {
        Ok(format!("{}", result as i64))
    } else {
        Ok(result.to_string())
    }
}

fn number_or_zero(arguments: &[Option<&Value>], at: usize) -> f64 {
    arguments.get(at).copied().flatten().and_then(Value::as_f64).unwrap_or(0.0)
}

/// Missing, null and `""` do not exist; `0`, `false`, `[]` and `{}` do.
fn exists(arguments: &[Option<&Value>]) -> bool {
    match arguments.first().copied().flatten() {
        None | Some(Value::Null) => false,
        Some(Value::String(text)) => !text.is_empty(),
        Some(_) => true,
    }
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(Value::Number(number)) => number.as_f64().is_some_and(|number| number != 0.0),
        Some(Value::String(text)) => !text.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Object(map)) => !map.is_empty(),
    }
}

/// The reference's `ifEquals`: both absent are equal, one absent is not; same-typed
/// scalars directly (numbers within ε); anything else by its text (null, lists and objects
/// as empty text).
fn if_equals(arguments: &[Option<&Value>]) -> bool {
    let (a, b) = (arguments.first().copied().flatten(), arguments.get(1).copied().flatten());
    match (a, b) {
        (None, None) => true,
        (None, _) | (_, None) => false,
        (Some(Value::String(a)), Some(Value::String(b))) => a == b,
        (Some(Value::Number(a)), Some(Value::Number(b))) => {
            (a.as_f64().unwrap_or(f64::NAN) - b.as_f64().unwrap_or(f64::NAN)).abs() < f64::EPSILON
        }
        (Some(Value::Bool(a)), Some(Value::Bool(b))) => a == b,
        (Some(Value::Null), Some(Value::Null)) => true,
        (Some(a), Some(b)) => scalar_text(a).unwrap_or_default() == scalar_text(b).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;

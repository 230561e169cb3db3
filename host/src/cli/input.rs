//! Reading what the user typed: JSON, `KEY=VALUE` pairs, paths, durations, credentials.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Failure;

/// Between a millisecond and a day.
pub fn parse_timeout(seconds: f64) -> Result<Duration, Failure> {
    let allowed = Duration::from_millis(1)..=Duration::from_secs(24 * 3600);
    match Duration::try_from_secs_f64(seconds) {
        Ok(timeout) if allowed.contains(&timeout) => Ok(timeout),
        _ => Err(Failure::usage(format!("--timeout must be between 0.001 and 86400 seconds, got {seconds}"))),
    }
}

pub fn parse_json(what: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|error| Failure::usage(format!("{what} is not valid JSON: {error}")))
}

pub fn parse_object(flag: &str, text: Option<&str>) -> Result<Map<String, Value>, Failure> {
    match text.map(|text| parse_json(flag, text)).transpose()? {
        None => Ok(Map::new()),
        Some(Value::Object(object)) => Ok(object),
        Some(other) => Err(Failure::usage(format!("{flag} must be a JSON object, got {other}"))),
    }
}

/// `--credentials FILE`, or `-` for stdin.
pub fn read_credentials(flag: &str, source: Option<&Path>) -> Result<BTreeMap<String, String>, Failure> {
    let text = match source {
        None => None,
        Some(path) if path == Path::new("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), 1 << 20), &mut text)
                .map_err(|error| Failure::usage(format!("{flag}: could not read stdin: {error}")))?;
            Some(text)
        }
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|error| Failure::usage(format!("{flag}: could not read {}: {error}", path.display())))?,
        ),
    };
    let object = parse_object(flag, text.as_deref())?;
    object
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(secret) => Ok((key, secret)),
            _ => Err(Failure::usage(format!("{flag}: the value of `{key}` must be a string"))),
        })
        .collect()
}

/// `KEY=VALUE` of `flag`.
pub fn parse_pair(flag: &str, pair: &str) -> Result<(String, String), Failure> {
    match pair.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(Failure::usage(format!("{flag} takes KEY=VALUE, got {pair:?}"))),
    }
}

pub fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path).map_err(|error| Failure::usage(format!("bad path {}: {error}", path.display())))
}

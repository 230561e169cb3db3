//! JSON-RPC 2.0 messages: classifying an incoming line, and building outgoing ones.
//!
//! A line with a string `method` is a request; a line with an `id` and a `result` or an
//! `error` (and no `method`) is a response; anything else is [`Incoming::Invalid`], which
//! the dispatcher logs and skips. `"result": null` is a successful answer whose value is
//! `null` (the `shutdown` answer), not a missing result.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;

use crate::codes::ErrorCode;

/// The error object of a JSON-RPC response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code: code.code(), message: message.into(), data: None }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn kind(&self) -> ErrorCode {
        ErrorCode::from_code(self.code)
    }
}

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.kind().name(), self.message)
    }
}

/// A request the plugin sends to the host (reverse RPC).
#[derive(Debug)]
pub struct PluginRequest {
    /// The plugin's own id, echoed back unchanged (number or string). `None` for a
    /// notification, which gets no answer.
    pub id: Option<Value>,
    pub method: String,
    pub params: Option<Box<RawValue>>,
    /// The host request the plugin was serving when it made this call, if it says so.
    pub parent_request_id: Option<Value>,
}

/// An answer from the plugin to one of the host's requests.
#[derive(Debug)]
pub struct Response {
    /// The host's id, if the answer carries one the host could have sent.
    pub id: Option<i64>,
    /// The raw `id` as it came, for logs.
    pub raw_id: Value,
    pub outcome: Result<Box<RawValue>, ResponseError>,
}

/// The error side of a response.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseError {
    /// A well-formed JSON-RPC error.
    Rpc(ErrorObject),
    /// An `error` member that is not `{code, message}`.
    Malformed(String),
}

/// One line from the plugin's stdout, classified.
#[derive(Debug)]
pub enum Incoming {
    Request(PluginRequest),
    Response(Response),
    /// Not a JSON-RPC message (a stray `console.log`, half a line, a blank line).
    Invalid(String),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    params: Option<Box<RawValue>>,
    #[serde(default, rename = "parentRequestId")]
    parent_request_id: Option<Value>,
}

/// Keeps `"result": null` as `Some(null)`: a present null is an answer.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
}

/// Classifies one line read from the plugin.
pub fn classify(line: &[u8]) -> Incoming {
    let text = line.trim_ascii();
    if text.is_empty() {
        return Incoming::Invalid("blank line".into());
    }
    // serde would read a JSON array into the envelope by position: only objects count.
    if text.first() != Some(&b'{') {
        return Incoming::Invalid("not a JSON object".into());
    }
    if let Err(error) = std::str::from_utf8(text) {
        return not_utf8(text, error);
    }
    let envelope: Envelope = match serde_json::from_slice(text) {
        Ok(envelope) => envelope,
        Err(error) => return Incoming::Invalid(format!("not a JSON-RPC object: {error}")),
    };
    match envelope.method {
        Some(Value::String(method)) => Incoming::Request(PluginRequest {
            id: envelope.id.filter(|id| !id.is_null()),
            method,
            params: envelope.params,
            parent_request_id: envelope.parent_request_id.filter(|id| !id.is_null()),
        }),
        Some(other) => Incoming::Invalid(format!("`method` is not a string: {other}")),
        None => classify_response(envelope),
    }
}

/// A line that is not UTF-8 (JSON must be): if it still reads as an answer to a request,
/// that request fails at once with the reason, rather than waiting for its deadline.
fn not_utf8(text: &[u8], error: std::str::Utf8Error) -> Incoming {
    let why = format!("the answer is not valid UTF-8 (at byte {})", error.valid_up_to());
    let lossy = String::from_utf8_lossy(text);
    match serde_json::from_str::<Envelope>(&lossy) {
        Ok(envelope) if envelope.method.is_none() => match envelope.id {
            Some(raw_id) if !raw_id.is_null() => Incoming::Response(Response {
                id: host_id(&raw_id),
                raw_id,
                outcome: Err(ResponseError::Malformed(why)),
            }),
            _ => Incoming::Invalid(why),
        },
        _ => Incoming::Invalid(why),
    }
}

fn classify_response(envelope: Envelope) -> Incoming {
    let raw_id = match envelope.id {
        Some(id) if !id.is_null() => id,
        _ => {
            let what = match &envelope.error {
                Some(error) => format!("an error without an id: {error}"),
                None => "neither a method nor an id".into(),
            };
            return Incoming::Invalid(what);
        }
    };
    let outcome = match (envelope.result, envelope.error) {
        (_, Some(error)) => Err(match serde_json::from_value::<ErrorObject>(error.clone()) {
            Ok(error) => ResponseError::Rpc(error),
            Err(_) => ResponseError::Malformed(format!("`error` is not {{code, message}}: {error}")),
        }),
        (Some(result), None) => Ok(result),
        (None, None) => return Incoming::Invalid(format!("response {raw_id} has neither result nor error")),
    };
    Incoming::Response(Response { id: host_id(&raw_id), raw_id, outcome })
}

/// Host ids are integers; an answer may echo one as a number or a numeric string.
fn host_id(id: &Value) -> Option<i64> {
    match id {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

#[derive(Serialize)]
struct OutgoingRequest<'a> {
    jsonrpc: &'static str,
    id: i64,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct OutgoingResponse<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorObject>,
}

/// The line (with its `\n`) for a host request.
pub fn request_line(id: i64, method: &str, params: Option<&RawValue>) -> Vec<u8> {
    let request = OutgoingRequest { jsonrpc: "2.0", id, method, params };
    finish_line(serde_json::to_vec(&request))
}

/// The line (with its `\n`) answering a plugin request.
pub fn response_line(id: &Value, outcome: &Result<Value, ErrorObject>) -> Vec<u8> {
    let response = match outcome {
        Ok(result) => OutgoingResponse { jsonrpc: "2.0", id, result: Some(result), error: None },
        Err(error) => OutgoingResponse { jsonrpc: "2.0", id, result: None, error: Some(error) },
    };
    match serde_json::to_vec(&response) {
        Ok(mut line) => {
            line.push(b'\n');
            line
        }
        Err(_) => {
            // A `Value` always serializes; should that ever change, the plugin still gets
            // an answer rather than a hang.
            let fallback = ErrorObject::new(ErrorCode::InternalError, "the host could not encode its answer");
            let response = OutgoingResponse { jsonrpc: "2.0", id, result: None, error: Some(&fallback) };
            let mut line = serde_json::to_vec(&response).unwrap_or_default();
            line.push(b'\n');
            line
        }
    }
}

fn finish_line(encoded: serde_json::Result<Vec<u8>>) -> Vec<u8> {
    // Serializing these structs cannot fail: every field is already valid JSON.
    let mut line = encoded.expect("a JSON-RPC envelope of valid JSON always serializes");
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(line: &str) -> Response {
        match classify(line.as_bytes()) {
            Incoming::Response(response) => response,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    #[test]
    fn a_string_method_is_a_request_even_with_a_result() {
        let line = r#"{"jsonrpc":"2.0","id":3,"method":"storage/get","params":{"key":"k"},"result":1}"#;
        let Incoming::Request(request) = classify(line.as_bytes()) else { panic!() };
        assert_eq!(request.method, "storage/get");
        assert_eq!(request.id, Some(json!(3)));
        assert_eq!(request.params.unwrap().get(), r#"{"key":"k"}"#);
    }

    #[test]
    fn parent_request_id_is_accepted_and_optional() {
        let line = r#"{"jsonrpc":"2.0","id":"a","method":"storage/list","parentRequestId":7}"#;
        let Incoming::Request(request) = classify(line.as_bytes()) else { panic!() };
        assert_eq!(request.parent_request_id, Some(json!(7)));
        assert_eq!(request.id, Some(json!("a")));
    }

    #[test]
    fn a_null_result_is_an_answer() {
        let answer = response(r#"{"jsonrpc":"2.0","id":5,"result":null}"#);
        assert_eq!(answer.id, Some(5));
        assert_eq!(answer.outcome.unwrap().get(), "null");
    }

    #[test]
    fn numeric_string_ids_match_host_ids() {
        assert_eq!(response(r#"{"id":"12","result":"pong"}"#).id, Some(12));
        assert_eq!(response(r#"{"id":"abc","result":"pong"}"#).id, None);
    }

    #[test]
    fn errors_are_parsed_and_malformed_errors_are_kept_apart() {
        let answer = response(r#"{"id":1,"error":{"code":-32002,"message":"nope","data":{"x":1}}}"#);
        let Err(ResponseError::Rpc(error)) = answer.outcome else { panic!() };
        assert_eq!(error.kind(), ErrorCode::NotFound);
        assert_eq!(error.data, Some(json!({"x": 1})));
        let answer = response(r#"{"id":1,"error":"boom"}"#);
        assert!(matches!(answer.outcome, Err(ResponseError::Malformed(_))));
    }

    /// An answer with a byte that is not UTF-8 fails its request at once, with the reason.
    #[test]
    fn an_answer_that_is_not_utf8_fails_its_request() {
        let line = b"{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"title\":\"caf\xe9\"}}";
        let Incoming::Response(answer) = classify(line) else { panic!("an answer to request 4") };
        assert_eq!(answer.id, Some(4));
        let Err(ResponseError::Malformed(why)) = answer.outcome else { panic!() };
        assert!(why.contains("not valid UTF-8 (at byte 46)"), "{why}");
        assert!(matches!(classify(b"caf\xe9 au lait"), Incoming::Invalid(_)));
    }

    #[test]
    fn junk_is_invalid_not_fatal() {
        for line in [
            "",
            "   ",
            "hello",
            "{\"id\":1}",
            "[1,2]",
            "{\"id\":null,\"error\":{\"code\":1,\"message\":\"x\"}}",
            "{\"method\":5}",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"res",
        ] {
            assert!(matches!(classify(line.as_bytes()), Incoming::Invalid(_)), "{line}");
        }
    }

    #[test]
    fn outgoing_lines_are_single_json_lines() {
        let params = serde_json::value::to_raw_value(&json!({"query": "a\nb"})).unwrap();
        let line = request_line(9, "metadata/series/search", Some(&params));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let value: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            value,
            json!({"jsonrpc": "2.0", "id": 9, "method": "metadata/series/search", "params": {"query": "a\nb"}})
        );
        assert_eq!(request_line(1, "ping", None), b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n");
        let line = response_line(&json!("x"), &Err(ErrorObject::new(ErrorCode::MethodNotFound, "no")));
        let value: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value, json!({"jsonrpc": "2.0", "id": "x", "error": {"code": -32601, "message": "no"}}));
    }
}

//! Errors a plugin answers with, mapped to the protocol's codes.

use codex_plugin_protocol::{ErrorCode, ErrorObject};
use serde_json::json;
use std::fmt;

use crate::storage::StorageError;

/// What a provider method returns when it has no result. Each variant becomes the
/// official code: the host treats -32001..-32005 as answers about the outside world, never
/// as faults of the plugin.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginError {
    /// -32001, with `data.retryAfterSeconds`.
    RateLimited { retry_after_seconds: u64, message: String },
    /// -32002.
    NotFound(String),
    /// -32003.
    Auth(String),
    /// -32004, with `data.statusCode` when known.
    Api { message: String, status_code: Option<u16> },
    /// -32005.
    Config(String),
    /// -32602: the request's params were not what the method takes.
    InvalidParams(String),
    /// -32602 naming the offending field in `data.field`, as the official SDK does.
    InvalidParam { field: String, message: String },
    /// -32601: this plugin does not offer the method (an optional one, say).
    MethodNotFound(String),
    /// -32603: anything else; a fault as far as the host is concerned.
    Internal(String),
}

impl PluginError {
    /// Params that do not parse as `T`: -32602 "Invalid params: …" naming the field.
    pub(crate) fn params_as<T: serde::de::DeserializeOwned>(params: serde_json::Value) -> Result<T, PluginError> {
        serde_path_to_error::deserialize(params).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." { "params".to_owned() } else { path };
            PluginError::InvalidParam { field, message: format!("Invalid params: {}", error.inner()) }
        })
    }

    pub fn rate_limited(retry_after_seconds: u64, message: impl Into<String>) -> Self {
        Self::RateLimited { retry_after_seconds, message: message.into() }
    }

    pub fn api(message: impl Into<String>, status_code: Option<u16>) -> Self {
        Self::Api { message: message.into(), status_code }
    }

    /// The JSON-RPC error object on the wire.
    pub fn to_rpc(&self) -> ErrorObject {
        match self {
            Self::RateLimited { retry_after_seconds, message } => ErrorObject::new(ErrorCode::RateLimited, message)
                .with_data(json!({"retryAfterSeconds": retry_after_seconds})),
            Self::NotFound(message) => ErrorObject::new(ErrorCode::NotFound, message),
            Self::Auth(message) => ErrorObject::new(ErrorCode::AuthFailed, message),
            Self::Api { message, status_code: Some(status) } => {
                ErrorObject::new(ErrorCode::ApiError, message).with_data(json!({"statusCode": status}))
            }
            Self::Api { message, status_code: None } => ErrorObject::new(ErrorCode::ApiError, message),
            Self::Config(message) => ErrorObject::new(ErrorCode::ConfigError, message),
            Self::InvalidParams(message) => ErrorObject::new(ErrorCode::InvalidParams, message),
            Self::InvalidParam { field, message } => {
                ErrorObject::new(ErrorCode::InvalidParams, message).with_data(json!({"field": field}))
            }
            Self::MethodNotFound(message) => ErrorObject::new(ErrorCode::MethodNotFound, message),
            Self::Internal(message) => ErrorObject::new(ErrorCode::InternalError, message),
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rpc = self.to_rpc();
        write!(f, "{} ({})", rpc.message, rpc.code)
    }
}

impl std::error::Error for PluginError {}

/// A storage failure inside a request is the plugin's own problem: -32603, with the cause.
impl From<StorageError> for PluginError {
    fn from(error: StorageError) -> Self {
        Self::Internal(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_the_official_code_and_data() {
        let cases = [
            (PluginError::rate_limited(120, "slow down"), -32001, Some(json!({"retryAfterSeconds": 120}))),
            (PluginError::NotFound("no".into()), -32002, None),
            (PluginError::Auth("token".into()), -32003, None),
            (PluginError::api("upstream", Some(502)), -32004, Some(json!({"statusCode": 502}))),
            (PluginError::api("upstream", None), -32004, None),
            (PluginError::Config("missing key".into()), -32005, None),
            (PluginError::InvalidParams("bad".into()), -32602, None),
            (
                PluginError::InvalidParam { field: "query".into(), message: "bad".into() },
                -32602,
                Some(json!({"field": "query"})),
            ),
            (PluginError::MethodNotFound("nope".into()), -32601, None),
            (PluginError::Internal("oops".into()), -32603, None),
        ];
        for (error, code, data) in cases {
            let rpc = error.to_rpc();
            assert_eq!(rpc.code, code, "{error}");
            assert_eq!(rpc.data, data, "{error}");
        }
    }
}

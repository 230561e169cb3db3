//! Error codes: the one place that knows them.
//!
//! The values are those of the official TypeScript SDK and of every published plugin.
//! The "Writing Plugins" guide lists NotFound -32001, Auth -32002 and RateLimit -32003:
//! that table is wrong, and following it would turn every rate limit into "not found".

use serde_json::Value;

/// Default `retryAfterSeconds` when a rate-limited answer carries none (reference: 60).
pub const DEFAULT_RETRY_AFTER_SECONDS: u64 = 60;

/// A JSON-RPC error code as the plugin protocol uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    InternalError,
    RateLimited,
    NotFound,
    AuthFailed,
    ApiError,
    ConfigError,
    /// Any other code a plugin may send; kept as it came.
    Other(i64),
}

impl ErrorCode {
    /// The numeric code on the wire.
    pub fn code(self) -> i64 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::InternalError => -32603,
            Self::RateLimited => -32001,
            Self::NotFound => -32002,
            Self::AuthFailed => -32003,
            Self::ApiError => -32004,
            Self::ConfigError => -32005,
            Self::Other(code) => code,
        }
    }

    /// The code for a number read off the wire.
    pub fn from_code(code: i64) -> Self {
        match code {
            -32700 => Self::ParseError,
            -32600 => Self::InvalidRequest,
            -32601 => Self::MethodNotFound,
            -32602 => Self::InvalidParams,
            -32603 => Self::InternalError,
            -32001 => Self::RateLimited,
            -32002 => Self::NotFound,
            -32003 => Self::AuthFailed,
            -32004 => Self::ApiError,
            -32005 => Self::ConfigError,
            other => Self::Other(other),
        }
    }

    /// A short lowercase name for messages and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::ParseError => "parse error",
            Self::InvalidRequest => "invalid request",
            Self::MethodNotFound => "method not found",
            Self::InvalidParams => "invalid params",
            Self::InternalError => "internal error",
            Self::RateLimited => "rate limited",
            Self::NotFound => "not found",
            Self::AuthFailed => "auth failed",
            Self::ApiError => "external api error",
            Self::ConfigError => "configuration error",
            Self::Other(_) => "error",
        }
    }

    /// Domain answers (-32001..-32005) are answers about the outside world, not faults of
    /// the plugin: they never count against its health.
    pub fn is_domain_answer(self) -> bool {
        matches!(self, Self::RateLimited | Self::NotFound | Self::AuthFailed | Self::ApiError | Self::ConfigError)
    }
}

/// How long a rate-limited plugin asks the caller to wait, from the error's `data`.
pub fn retry_after_seconds(data: Option<&Value>) -> u64 {
    data.and_then(|data| data.get("retryAfterSeconds"))
        .and_then(Value::as_f64)
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .map_or(DEFAULT_RETRY_AFTER_SECONDS, |seconds| seconds.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_round_trip_and_follow_the_sdk() {
        let all = [
            (ErrorCode::RateLimited, -32001),
            (ErrorCode::NotFound, -32002),
            (ErrorCode::AuthFailed, -32003),
            (ErrorCode::ApiError, -32004),
            (ErrorCode::ConfigError, -32005),
            (ErrorCode::ParseError, -32700),
            (ErrorCode::MethodNotFound, -32601),
        ];
        for (code, number) in all {
            assert_eq!(code.code(), number);
            assert_eq!(ErrorCode::from_code(number), code);
        }
        assert_eq!(ErrorCode::from_code(-1), ErrorCode::Other(-1));
    }

    #[test]
    fn only_domain_codes_are_answers() {
        assert!(ErrorCode::RateLimited.is_domain_answer());
        assert!(ErrorCode::NotFound.is_domain_answer());
        assert!(!ErrorCode::InternalError.is_domain_answer());
        assert!(!ErrorCode::MethodNotFound.is_domain_answer());
    }

    #[test]
    fn retry_after_defaults_to_sixty() {
        assert_eq!(retry_after_seconds(None), 60);
        assert_eq!(retry_after_seconds(Some(&json!({}))), 60);
        assert_eq!(retry_after_seconds(Some(&json!({"retryAfterSeconds": 120}))), 120);
        assert_eq!(retry_after_seconds(Some(&json!({"retryAfterSeconds": -5}))), 60);
    }
}

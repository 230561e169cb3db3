//! Errors of a running plugin, and the one place that maps them to JSON-RPC codes.

use std::time::Duration;

use crate::dispatch::{CallError, ConnectionClosed, PluginLabel};
use crate::protocol::{ErrorCode, ErrorObject, ManifestError};
use crate::transport::process::ProcessError;

/// Why a plugin did not start, or a call got no result.
///
/// Three kinds are kept apart: answers the caller gets ([`PluginError::Answered`] and the
/// host's own refusals; the plugin keeps running), plugin faults ([`PluginError::is_fault`]:
/// the supervisor acts), and host bugs (-32603 with an error log).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// Starting failed (`initialize` or its manifest); the plugin was stopped.
    #[error("{source}; it was not started")]
    Initialize { plugin: PluginLabel, source: Box<PluginError> },
    #[error("{plugin} returned an {source}")]
    InvalidManifest {
        plugin: PluginLabel,
        source: ManifestError,
        /// The `initialize` answer as it came, for a report of everything wrong with it.
        answer: Box<serde_json::Value>,
    },
    #[error("method `{method}` is not part of the plugin protocol")]
    UnknownMethod { method: String },
    #[error("{plugin} does not declare `{capability}` in its manifest, so `{method}` was not sent")]
    CapabilityNotDeclared { plugin: PluginLabel, method: &'static str, capability: &'static str },
    #[error("invalid params for `{method}`: {why}")]
    InvalidParams { method: String, why: String },
    #[error("{plugin} did not answer `{method}` within {}", format_duration(*after))]
    Timeout { plugin: PluginLabel, method: &'static str, after: Duration },
    #[error("{plugin} answered `{method}` with error {error}")]
    Answered { plugin: PluginLabel, method: &'static str, error: ErrorObject },
    #[error("{plugin} answered `{method}` with a malformed result: {why}")]
    MalformedResult { plugin: PluginLabel, method: &'static str, why: String },
    #[error("{closed} (during `{method}`)")]
    Closed { method: &'static str, closed: ConnectionClosed },
    /// No plugin is registered under this id (`user` is `None`), or this user is not
    /// connected to it: the caller's mistake, and nothing of it is kept.
    #[error("{why}")]
    NotRegistered { plugin: String, user: Option<String>, why: String },
    /// The plugin has credentials and the caller gave the host no vault key to open them.
    #[error("plugin `{plugin}` could not be started: {why}")]
    NeedsKey { plugin: String, why: String },
    /// The host could not start the plugin as registered (a component that does not load,
    /// a sandbox it may not have): an admin's problem, not the plugin's fault.
    #[error("plugin `{plugin}` could not be started: {why}")]
    Launch { plugin: String, why: String },
    /// Disabled by an admin, or by the supervisor after repeated faults.
    #[error("plugin `{plugin}` is disabled: {reason}")]
    Disabled { plugin: String, reason: String },
    /// Every place for an instance is taken by one in use, and none came free within the
    /// wait: a condition of the host, never a fault of the plugin.
    #[error("the host is at capacity: {why}; retry shortly, or raise the host's capacity")]
    AtCapacity { plugin: String, why: String },
    /// A session's instance is gone: its next call would reach a fresh instance without the
    /// session's state, so the job is told instead.
    #[error("plugin `{plugin}`'s session ended: {why}; start the job again")]
    SessionLost { plugin: String, why: String },
    /// Down after a fault, and not due to restart within the call's deadline.
    #[error("plugin `{plugin}` is restarting after a fault; retry in {} s", retry_in.as_secs_f64().ceil())]
    Restarting { plugin: String, retry_in: Duration },
}

impl PluginError {
    pub(crate) fn from_call(plugin: &PluginLabel, method: &'static str, error: CallError) -> Self {
        match error {
            CallError::Rpc(error) => Self::Answered { plugin: plugin.clone(), method, error },
            CallError::MalformedError(why) => Self::MalformedResult { plugin: plugin.clone(), method, why },
            CallError::Closed(closed) => Self::Closed { method, closed },
            too_large @ CallError::RequestTooLarge { .. } => {
                Self::InvalidParams { method: method.to_owned(), why: too_large.to_string() }
            }
        }
    }

    /// The JSON-RPC code for this error: the plugin's own code for its answers, the
    /// matching standard code for the host's refusals, -32603 for everything else.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Answered { error, .. } => error.kind(),
            Self::UnknownMethod { .. } | Self::CapabilityNotDeclared { .. } => ErrorCode::MethodNotFound,
            Self::InvalidParams { .. } | Self::NotRegistered { .. } => ErrorCode::InvalidParams,
            // The plugin's own answer to `initialize`, not the host's wrapping of it.
            Self::Initialize { source, .. } => source.code(),
            _ => ErrorCode::InternalError,
        }
    }

    /// The error as a JSON-RPC error object, for callers that speak JSON-RPC themselves.
    pub fn to_rpc(&self) -> ErrorObject {
        match self {
            Self::Answered { error, .. } => error.clone(),
            other => ErrorObject::new(other.code(), other.to_string()),
        }
    }

    /// A fault of the plugin (timeout, death, protocol violation, -32603), as opposed to an
    /// answer: only faults count against its health.
    pub fn is_fault(&self) -> bool {
        match self {
            Self::Timeout { .. }
            | Self::MalformedResult { .. }
            | Self::InvalidManifest { .. }
            | Self::Initialize { .. } => true,
            Self::Closed { closed, .. } => closed.reason.is_fault(),
            Self::Answered { error, .. } => error.kind() == ErrorCode::InternalError,
            Self::Process(_)
            | Self::UnknownMethod { .. }
            | Self::CapabilityNotDeclared { .. }
            | Self::InvalidParams { .. }
            | Self::NotRegistered { .. }
            | Self::Launch { .. }
            | Self::NeedsKey { .. }
            | Self::Disabled { .. }
            | Self::AtCapacity { .. }
            | Self::SessionLost { .. }
            | Self::Restarting { .. } => false,
        }
    }
}

fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

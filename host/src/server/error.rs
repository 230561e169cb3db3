//! One error for every route: a status code and a message that says what to do next, as
//! JSON (`{"error": {"status", "code", "message"}}`). Each service error maps here once.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::integrations::IntegrationError;
use crate::library::LibraryError;
use crate::pipeline::PipelineError;
use crate::plugin::PluginError;
use crate::registry::RegistryError;
use crate::release_tracking::ReleaseError;

/// A request that could not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// A short, stable name of the status for programs (`not_found`).
    pub fn code(&self) -> String {
        self.status.canonical_reason().unwrap_or("error").to_lowercase().replace([' ', '-'], "_")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), "{}", self.message);
        }
        let body = json!({"error": {"status": self.status.as_u16(), "code": self.code(), "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        let status = match &error {
            RegistryError::NotRegistered(_) | RegistryError::NotConnected { .. } => StatusCode::NOT_FOUND,
            RegistryError::AlreadyRegistered(_) | RegistryError::KeyRotating { .. } => StatusCode::CONFLICT,
            RegistryError::Invalid { .. } => StatusCode::BAD_REQUEST,
            RegistryError::Vault(crate::vault::VaultError::MissingKey) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, error.to_string())
    }
}

impl From<LibraryError> for ApiError {
    fn from(error: LibraryError) -> Self {
        let status = match &error {
            LibraryError::NoLibrary(_) | LibraryError::NoSeries(_) | LibraryError::NoBook(_) => StatusCode::NOT_FOUND,
            LibraryError::Invalid(_) => StatusCode::BAD_REQUEST,
            LibraryError::Changed { .. } => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, error.to_string())
    }
}

impl From<PluginError> for ApiError {
    /// The plugin's own error answer is a bad gateway (its message kept); a plugin that
    /// did not start or answer in time is unavailable or a gateway timeout.
    fn from(error: PluginError) -> Self {
        let status = match &error {
            PluginError::NotRegistered { .. } => StatusCode::NOT_FOUND,
            PluginError::InvalidParams { .. } | PluginError::UnknownMethod { .. } => StatusCode::BAD_REQUEST,
            PluginError::CapabilityNotDeclared { .. } => StatusCode::BAD_REQUEST,
            PluginError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            PluginError::Disabled { .. }
            | PluginError::AtCapacity { .. }
            | PluginError::NeedsKey { .. }
            | PluginError::Launch { .. }
            | PluginError::Initialize { .. }
            | PluginError::Process(_)
            | PluginError::SessionLost { .. }
            | PluginError::Restarting { .. } => StatusCode::SERVICE_UNAVAILABLE,
            PluginError::Answered { .. }
            | PluginError::MalformedResult { .. }
            | PluginError::InvalidManifest { .. }
            | PluginError::Closed { .. } => StatusCode::BAD_GATEWAY,
        };
        Self::new(status, error.to_string())
    }
}

impl From<PipelineError> for ApiError {
    fn from(error: PipelineError) -> Self {
        match error {
            PipelineError::Library(error) => error.into(),
            PipelineError::Registry(error) => error.into(),
            PipelineError::Plugin(error) => error.into(),
            error @ (PipelineError::NotProvider { .. }
            | PipelineError::Settings { .. }
            | PipelineError::UnknownField(..)) => Self::bad_request(error.to_string()),
            error @ PipelineError::OutOfScope { .. } => Self::forbidden(error.to_string()),
            error @ PipelineError::Fault { .. } => Self::new(StatusCode::BAD_GATEWAY, error.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<IntegrationError> for ApiError {
    fn from(error: IntegrationError) -> Self {
        match error {
            IntegrationError::Library(error) => error.into(),
            IntegrationError::Registry(error) => error.into(),
            IntegrationError::Plugin(error) => error.into(),
            error @ (IntegrationError::NotCapable { .. }
            | IntegrationError::NoRecommenders(_)
            | IntegrationError::Invalid(_)
            | IntegrationError::Settings { .. }) => Self::bad_request(error.to_string()),
            error @ IntegrationError::Busy { .. } => Self::new(StatusCode::CONFLICT, error.to_string()),
            error @ IntegrationError::Fault { .. } => Self::new(StatusCode::BAD_GATEWAY, error.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<ReleaseError> for ApiError {
    fn from(error: ReleaseError) -> Self {
        match error {
            ReleaseError::Library(error) => error.into(),
            ReleaseError::Plugin(error) => error.into(),
            error @ ReleaseError::UnknownSource(_) => Self::not_found(error.to_string()),
            error @ ReleaseError::Invalid(_) => Self::bad_request(error.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<crate::access::store::TokenError> for ApiError {
    fn from(error: crate::access::store::TokenError) -> Self {
        match error {
            error @ crate::access::store::TokenError::Unknown(_) => Self::not_found(error.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_plugin_is_not_found_and_a_duplicate_a_conflict() {
        let unknown: ApiError = RegistryError::NotRegistered("x".into()).into();
        assert_eq!((unknown.status, unknown.code().as_str()), (StatusCode::NOT_FOUND, "not_found"));
        let duplicate: ApiError = RegistryError::AlreadyRegistered("x".into()).into();
        assert_eq!(duplicate.status, StatusCode::CONFLICT);
    }

    #[test]
    fn a_missing_series_through_the_pipeline_is_not_found() {
        let error: ApiError = PipelineError::Library(LibraryError::NoSeries("s".into())).into();
        assert_eq!(error.status, StatusCode::NOT_FOUND);
        assert!(error.message.contains('s'), "{}", error.message);
    }
}

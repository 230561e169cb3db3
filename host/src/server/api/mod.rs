//! The JSON API under `/api/v1`: one module per resource, each route a handler that
//! checks who asks ([`super::auth`]) and what they sent ([`super::body`]), calls a service,
//! and answers JSON or an [`ApiError`].

pub mod connections;
pub mod install;
pub mod jobs;
pub mod library;
pub mod plugins;
pub mod recommendations;
pub mod releases;

use axum::Router;
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::host::PluginHost;
use crate::supervisor::HealthState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/plugins", get(plugins::list).post(plugins::add))
        .route("/plugins/{id}", get(plugins::show).put(plugins::update).delete(plugins::remove))
        .route("/plugins/{id}/enable", post(plugins::enable))
        .route("/plugins/{id}/disable", post(plugins::disable))
        .route("/plugins/{id}/reset", post(plugins::reset))
        .route("/plugins/{id}/test", post(plugins::test))
        .route("/plugins/{id}/config", put(plugins::configure))
        .route("/plugins/{id}/credentials", put(plugins::set_credentials))
        .route("/plugins/{id}/permissions", put(plugins::set_permissions))
        .route("/plugins/{id}/search-settings", put(plugins::set_search_settings))
        .route("/connections", get(connections::list))
        .route(
            "/connections/{plugin}",
            get(connections::show).put(connections::configure).delete(connections::disconnect),
        )
        .route("/connections/{plugin}/token", post(connections::connect_with_token))
        .route("/connections/{plugin}/oauth", post(connections::start_oauth))
        .route("/connections/{plugin}/sync", get(connections::sync_status).post(connections::sync))
        .route("/libraries", get(library::libraries))
        .route("/libraries/{id}/series", get(library::series_page))
        .route("/libraries/{id}/auto-match", post(library::auto_match))
        .route("/series/{id}", get(library::series))
        .route("/series/{id}/search", post(library::search))
        .route("/series/{id}/apply", post(library::apply))
        .route("/recommendations", get(recommendations::list))
        .route("/recommendations/refresh", post(recommendations::refresh))
        .route("/recommendations/dismiss", post(recommendations::dismiss))
        .route("/release-sources", get(releases::sources))
        .route("/release-sources/{id}/poll", post(releases::poll))
        .route("/releases", get(releases::announced))
        .route("/tracked-series", get(releases::tracked))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::show))
        .route("/jobs/{id}/events", get(jobs::events))
        .route("/whoami", get(whoami))
}

/// Runs `work` (reads and writes of the database, behind its lock and busy timeout) off
/// the async workers, so that a request waiting for the database stalls no other.
pub async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || work(&state))
        .await
        .map_err(|error| ApiError::internal(format!("a database task stopped: {error}")))?
}

/// Every path's wrong method.
pub async fn method_not_allowed(method: http::Method, uri: http::Uri) -> ApiError {
    ApiError::new(http::StatusCode::METHOD_NOT_ALLOWED, format!("{} does not take {method}", uri.path()))
}

/// Who the token stands for.
async fn whoami(caller: super::auth::Caller) -> axum::Json<Value> {
    axum::Json(json!(caller.0))
}

/// Every path that is not a route.
pub async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}; the README lists the API's routes", uri.path()))
}

/// A plugin's health as JSON.
pub fn health_json(host: &PluginHost, plugin: &str) -> Result<Value, ApiError> {
    Ok(match host.health(plugin)? {
        HealthState::Healthy => json!({"state": "healthy"}),
        HealthState::Degraded { faults_in_a_row, faults_in_window, restart_at } => json!({
            "state": "degraded",
            "faultsInARow": faults_in_a_row,
            "faultsInWindow": faults_in_window,
            "restartInSeconds": restart_at.map(|at| at.saturating_duration_since(tokio::time::Instant::now()).as_secs_f64()),
        }),
        HealthState::Disabled(disabled) => json!({
            "state": "disabled",
            "reason": disabled.reason,
            "recentFaults": disabled.recent_faults,
        }),
    })
}

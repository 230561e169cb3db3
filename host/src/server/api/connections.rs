//! `/api/v1/connections`: a user's connections to plugins (their settings, their account
//! by OAuth or a personal token, sync now and its status), and `/oauth/callback`, where a
//! provider sends the user back (the one route without a token: its state is the proof).
//! A user acts for themselves; an admin names the user (`?user=` or `"user"`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::body::JsonBody;
use super::super::error::ApiError;
use super::plugins::check_config;
use crate::integrations::{SyncOptions, SyncProgress};
use crate::registry::RegistryError;
use crate::vault::Secret;

type Answer = Result<Json<Value>, ApiError>;

/// `?user=USER`: whom an admin acts for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForUser {
    pub user: Option<String>,
}

/// The caller's connections (an admin's: the named user's).
pub async fn list(caller: Caller, State(state): State<AppState>, Query(query): Query<ForUser>) -> Answer {
    let user = caller.user(query.user.as_deref())?;
    let registry = state.services().host.registry();
    let mut connections = Vec::new();
    for record in registry.list()? {
        let plugin = record.id.as_str();
        if registry.user_connection(plugin, &user).is_ok() {
            connections.push(connection_json(&state, plugin, &user)?);
        }
    }
    let mut available = Vec::new();
    for record in registry.list()? {
        let Some(manifest) = record.manifest.as_ref() else { continue };
        let capabilities = manifest.get("capabilities");
        let for_users = ["userReadSync", "userRecommendationProvider"]
            .iter()
            .any(|name| capabilities.and_then(|found| found.get(name)).is_some_and(|value| value == &json!(true)));
        if record.enabled && for_users {
            available.push(json!({
                "plugin": record.id.as_str(),
                "name": manifest.get("displayName"),
                "oauth": manifest.get("oauth").is_some(),
                "userConfigSchema": manifest.get("userConfigSchema"),
            }));
        }
    }
    Ok(Json(json!({"user": user, "connections": connections, "available": available})))
}

pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    Query(query): Query<ForUser>,
) -> Answer {
    let user = caller.user(query.user.as_deref())?;
    Ok(Json(connection_json(&state, &plugin, &user)?))
}

/// A user's settings for a plugin (their `userConfigSchema` fields and `_codex`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub user: Option<String>,
    pub config: Map<String, Value>,
}

/// Connects the user (or changes their settings), checked against `userConfigSchema`.
pub async fn configure(
    caller: Caller,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    JsonBody(settings): JsonBody<Settings>,
) -> Answer {
    let user = caller.user(settings.user.as_deref())?;
    let host = &state.services().host;
    let record = host.registry().get(&plugin)?;
    check_config(&record, "userConfigSchema", &settings.config)?;
    crate::sync::SyncSettings::check_user_config(&settings.config).map_err(ApiError::bad_request)?;
    host.registry().connect_user(&plugin, &user, settings.config)?;
    host.restart_user(&plugin, &user).await;
    Ok(Json(connection_json(&state, &plugin, &user)?))
}

/// Disconnects the user: their settings, credentials, tokens, sync records and cached
/// recommendations go.
pub async fn disconnect(
    caller: Caller,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    Query(query): Query<ForUser>,
) -> Result<StatusCode, ApiError> {
    let user = caller.user(query.user.as_deref())?;
    let host = &state.services().host;
    host.registry().disconnect_user(&plugin, &user)?;
    host.restart_user(&plugin, &user).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A personal access token for the user's tracker account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalToken {
    #[serde(default)]
    pub user: Option<String>,
    pub token: String,
}

/// Stores the token sealed (as `access_token`, as Codex's plugins read it) and asks the
/// plugin who the account is, so a wrong token shows at once.
pub async fn connect_with_token(
    caller: Caller,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    JsonBody(body): JsonBody<PersonalToken>,
) -> Answer {
    let user = caller.user(body.user.as_deref())?;
    if body.token.trim().is_empty() {
        return Err(ApiError::bad_request("`token` is empty"));
    }
    let services = state.services();
    let registry = services.host.registry();
    registry.get(&plugin)?;
    let vault =
        services.host.vault().map_err(|error| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string()))?;
    if let Err(RegistryError::NotConnected { .. }) = registry.user_connection(&plugin, &user) {
        registry.connect_user(&plugin, &user, Map::new())?;
    }
    let credentials =
        BTreeMap::from([(crate::integrations::ACCESS_TOKEN.to_owned(), Secret::new(body.token.trim().to_owned()))]);
    registry.set_credentials(vault, &plugin, Some(&user), &credentials)?;
    services.host.restart_user(&plugin, &user).await;
    let account = services.integrations.account(&plugin, &user).await.map_err(|error| {
        let error = ApiError::from(error);
        ApiError::new(
            error.status,
            format!("the token is stored, but the plugin did not accept it: {}; send the right token", error.message),
        )
    })?;
    let mut shown = connection_json(&state, &plugin, &user)?;
    shown["account"] = json!(account);
    Ok(Json(shown))
}

/// Starts an OAuth flow: the address to send the user to; the provider sends them back
/// to `/oauth/callback` under the server's public URL.
pub async fn start_oauth(
    caller: Caller,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    Query(query): Query<ForUser>,
) -> Answer {
    let user = caller.user(query.user.as_deref())?;
    let redirect = state.config().oauth_redirect_uri();
    let started = state.services().integrations.start_oauth(&plugin, &user, Some(&redirect)).await?;
    Ok(Json(json!(started)))
}

/// The provider's redirect: `?state=…&code=…` (or `?error=…`).
#[derive(Debug, Deserialize)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

pub async fn oauth_callback(State(state): State<AppState>, Query(callback): Query<Callback>) -> Response {
    let Some(flow) = callback.state.filter(|flow| !flow.is_empty()) else {
        return callback_page(StatusCode::BAD_REQUEST, "Not connected", "This callback carries no state.");
    };
    let provider_error = callback.error.map(|error| match callback.error_description {
        Some(description) => format!("{error}: {description}"),
        None => error,
    });
    let finished =
        state.services().integrations.finish_oauth(&flow, callback.code.as_deref(), provider_error.as_deref()).await;
    match finished {
        Ok(connected) => {
            let text = format!("{}'s account is connected to {}.", connected.user, connected.plugin);
            callback_page(StatusCode::OK, "Connected", &text)
        }
        Err(error) => {
            let error = ApiError::from(error);
            callback_page(error.status, "Not connected", &error.message)
        }
    }
}

/// The page a browser lands on after the provider: what happened, and the way back.
fn callback_page(status: StatusCode, title: &str, text: &str) -> Response {
    let escape = |text: &str| handlebars::html_escape(text);
    let body = format!(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content=\"width=device-width\"><title>{0}</title><h1 id=oauth-outcome>{0}</h1><p>{1}</p><p><a href=\"/integrations\">Back to your integrations</a></p></html>",
        escape(title),
        escape(text)
    );
    (status, Html(body)).into_response()
}

/// How a sync runs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncRequest {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub full: bool,
}

/// Starts a sync as a job: its id, its progress as it goes, its report at the end.
pub async fn sync(
    caller: Caller,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    JsonBody(request): JsonBody<SyncRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = caller.user(request.user.as_deref())?;
    let integrations = state.services().integrations.clone();
    integrations.host().registry().user_connection(&plugin, &user)?;
    let subject = json!({"plugin": plugin, "user": user});
    let job = state.jobs().start("sync", &caller.0, subject, move |progress| async move {
        let told = progress.clone();
        let options = SyncOptions {
            dry_run: request.dry_run,
            full: request.full,
            progress: Some(Arc::new(move |step: SyncProgress| told.report(json!(step)))),
            ..SyncOptions::default()
        };
        let report = integrations.sync(&plugin, &user, options).await?;
        match &report.error {
            None => Ok(json!(report.as_ref())),
            Some(error) => Err(ApiError::new(StatusCode::BAD_GATEWAY, format!("the sync failed: {error}"))),
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!(job))))
}

/// The connection's last sync, and whether one runs now.
pub async fn sync_status(
    caller: Caller,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    Query(query): Query<ForUser>,
) -> Answer {
    let user = caller.user(query.user.as_deref())?;
    let integrations = &state.services().integrations;
    integrations.host().registry().user_connection(&plugin, &user)?;
    let record = integrations.sync_record(&plugin, &user)?;
    Ok(Json(record.map(|record| record.to_json()).unwrap_or_else(
        || json!({"plugin": plugin, "user": user, "running": false, "lastSyncAt": null, "lastResult": null}),
    )))
}

/// A connection as its user sees it: settings, credential names, the plugin's schema, and
/// the last sync.
fn connection_json(state: &AppState, plugin: &str, user: &str) -> Result<Value, ApiError> {
    let services = state.services();
    let registry = services.host.registry();
    let record = registry.get(plugin)?;
    let connection = registry.user_connection(plugin, user)?;
    let mut credentials = registry.credential_names(plugin, Some(user))?;
    credentials.retain(|name| !name.starts_with(crate::registry::HOST_SECRET_PREFIX));
    let manifest = record.manifest.as_ref();
    let sync = services.integrations.sync_record(plugin, user)?.map(|record| record.to_json());
    Ok(json!({
        "plugin": plugin,
        "user": user,
        "name": manifest.and_then(|manifest| manifest.get("displayName")),
        "config": connection.config,
        "credentials": credentials,
        "connected": credentials.iter().any(|name| name == crate::integrations::ACCESS_TOKEN),
        "oauth": manifest.is_some_and(|manifest| manifest.get("oauth").is_some()),
        "userConfigSchema": manifest.and_then(|manifest| manifest.get("userConfigSchema")),
        "sync": sync,
    }))
}

//! `/api/v1/connections`: a user's connections to plugins (their settings, their account
//! by OAuth or a personal token, sync now and its status), and `/oauth/callback`, where a
//! provider sends the user back (the one route without a token: its state is the proof).
//! A user acts for themselves; an admin names the user (`?user=` or `"user"`).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::body::{JsonBody, QueryParams};
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
pub async fn list(caller: Caller, State(state): State<AppState>, QueryParams(query): QueryParams<ForUser>) -> Answer {
    let user = caller.user(query.user.as_deref())?;
    Ok(Json(super::blocking(&state, move |state| connections_json(state, &user)).await?))
}

/// A user's connections, and the plugins they may connect to.
pub fn connections_json(state: &AppState, user: &str) -> Result<Value, ApiError> {
    let registry = state.services().host.registry();
    let mut connections = Vec::new();
    for record in registry.list()? {
        let plugin = record.id.as_str();
        if registry.user_connection(plugin, user).is_ok() {
            connections.push(connection_json(state, plugin, user)?);
        }
    }
    let mut available = Vec::new();
    for record in registry.list()? {
        let Some(manifest) = record.manifest.as_ref() else { continue };
        if record.enabled && for_users(manifest) {
            available.push(json!({
                "plugin": record.id.as_str(),
                "name": manifest.get("displayName"),
                "oauth": manifest.get("oauth").is_some(),
                "userConfigSchema": manifest.get("userConfigSchema"),
            }));
        }
    }
    Ok(json!({"user": user, "connections": connections, "available": available}))
}

pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    QueryParams(query): QueryParams<ForUser>,
) -> Answer {
    let user = caller.user(query.user.as_deref())?;
    Ok(Json(super::blocking(&state, move |state| connection_json(state, &plugin, &user)).await?))
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
    save_user_settings(&state, &plugin, &user, settings.config).await?;
    Ok(Json(connection_json(&state, &plugin, &user)?))
}

/// Connects `user` to `plugin` with `config` (or replaces their settings), once it fits the
/// plugin's `userConfigSchema` and the `_codex` sync keys; their instance restarts with it.
pub async fn save_user_settings(
    state: &AppState,
    plugin: &str,
    user: &str,
    config: Map<String, Value>,
) -> Result<(), ApiError> {
    let host = &state.services().host;
    let record = host.registry().get(plugin)?;
    check_user_plugin(&record)?;
    check_config(&record, "userConfigSchema", &config)?;
    crate::sync::SyncSettings::check_user_config(&config).map_err(ApiError::bad_request)?;
    host.registry().connect_user(plugin, user, config)?;
    host.restart_user(plugin, user).await;
    Ok(())
}

/// Disconnects the user: their settings, credentials, tokens, sync records and cached
/// recommendations go.
pub async fn disconnect(
    caller: Caller,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    QueryParams(query): QueryParams<ForUser>,
) -> Result<StatusCode, ApiError> {
    let user = caller.user(query.user.as_deref())?;
    disconnect_user(&state, &plugin, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// [`disconnect`]'s work, for the API and the page: the instance of theirs stops with it.
pub async fn disconnect_user(state: &AppState, plugin: &str, user: &str) -> Result<(), ApiError> {
    let host = &state.services().host;
    host.registry().disconnect_user(plugin, user)?;
    host.restart_user(plugin, user).await;
    Ok(())
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
/// plugin who the account is; a token the plugin refuses is taken back (the connection and
/// the token it had before stay as they were).
pub async fn connect_with_token(
    caller: Caller,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    JsonBody(body): JsonBody<PersonalToken>,
) -> Answer {
    let user = caller.user(body.user.as_deref())?;
    Ok(Json(connect_token(&state, &plugin, &user, body.token.trim()).await?))
}

/// [`connect_with_token`]'s work, for the API and the page.
pub async fn connect_token(state: &AppState, plugin: &str, user: &str, token: &str) -> Result<Value, ApiError> {
    if token.is_empty() {
        return Err(ApiError::bad_request("`token` is empty"));
    }
    let services = state.services();
    let registry = services.host.registry();
    check_user_plugin(&registry.get(plugin)?)?;
    let vault =
        services.host.vault().map_err(|error| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string()))?;
    let access = crate::integrations::ACCESS_TOKEN;
    let was_connected = match registry.user_connection(plugin, user) {
        Ok(_) => true,
        Err(RegistryError::NotConnected { .. }) => false,
        Err(error) => return Err(error.into()),
    };
    let previous =
        match was_connected && registry.credential_names(plugin, Some(user))?.iter().any(|name| name == access) {
            true => registry.credentials(vault, plugin, Some(user))?.remove(access),
            false => None,
        };
    if !was_connected {
        registry.connect_user(plugin, user, Map::new())?;
    }
    let credentials = BTreeMap::from([(access.to_owned(), Secret::new(token.to_owned()))]);
    registry.set_credentials(vault, plugin, Some(user), &credentials)?;
    services.host.restart_user(plugin, user).await;
    let account = match services.integrations.account(plugin, user).await {
        Ok(account) => account,
        Err(error) => {
            // Put back what was there: a refused token loses nothing.
            let restored = match (was_connected, previous) {
                (false, _) => registry.disconnect_user(plugin, user),
                (true, Some(previous)) => registry.set_credentials(
                    vault,
                    plugin,
                    Some(user),
                    &BTreeMap::from([(access.to_owned(), previous)]),
                ),
                (true, None) => registry.remove_credentials(plugin, Some(user), &[access]),
            };
            if let Err(failed) = restored {
                tracing::warn!(plugin, user, "the connection could not be put back as it was: {failed}");
            }
            services.host.restart_user(plugin, user).await;
            let error = ApiError::from(error);
            return Err(ApiError::new(
                error.status,
                format!(
                    "the plugin did not accept the token: {}; nothing was changed, send the right token",
                    error.message
                ),
            ));
        }
    };
    let mut shown = connection_json(state, plugin, user)?;
    shown["account"] = json!(account);
    Ok(shown)
}

/// Whether a manifest declares something users connect to: sync or recommendations.
fn for_users(manifest: &Value) -> bool {
    ["userReadSync", "userRecommendationProvider"]
        .iter()
        .any(|name| manifest.pointer(&format!("/capabilities/{name}")) == Some(&json!(true)))
}

/// A plugin users connect to: enabled, and (when its manifest is known) one that syncs or
/// recommends.
fn check_user_plugin(record: &crate::registry::PluginRecord) -> Result<(), ApiError> {
    let plugin = record.id.as_str();
    if !record.enabled {
        return Err(ApiError::bad_request(format!("plugin `{plugin}` is disabled; an admin enables it")));
    }
    match record.manifest.as_ref().is_none_or(for_users) {
        true => Ok(()),
        false => Err(ApiError::bad_request(format!(
            "plugin `{plugin}` neither syncs reading progress nor recommends: users do not connect to it"
        ))),
    }
}

/// Starts an OAuth flow: the address to send the user to; the provider sends them back
/// to `/oauth/callback` under the server's public URL. The answer's cookie binds the flow
/// to the browser that opens the address: the callback must bring it back.
pub async fn start_oauth(
    caller: Caller,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    QueryParams(query): QueryParams<ForUser>,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    let user = caller.user(query.user.as_deref())?;
    let (cookie, started) = begin_oauth(&state, &plugin, &user).await?;
    Ok((CookieJar::new().add(cookie), Json(json!(started))))
}

/// Starts a flow for `user` and binds it to a new cookie.
pub async fn begin_oauth(
    state: &AppState,
    plugin: &str,
    user: &str,
) -> Result<(axum_extra::extract::cookie::Cookie<'static>, crate::integrations::OAuthStart), ApiError> {
    check_user_plugin(&state.services().host.registry().get(plugin)?)?;
    let redirect = state.config().oauth_redirect_uri();
    let started = state.services().integrations.start_oauth(plugin, user, Some(&redirect)).await?;
    Ok((state.oauth_bindings().bind(&started.state, state.secure_cookies()), started))
}

/// The provider's redirect: `?state=…&code=…` (or `?error=…`).
#[derive(Debug, Deserialize)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

pub async fn oauth_callback(
    State(state): State<AppState>,
    jar: CookieJar,
    QueryParams(callback): QueryParams<Callback>,
) -> Response {
    let back = state.config().public_url.join("integrations").map(String::from).unwrap_or_default();
    let Some(flow) = callback.state.filter(|flow| !flow.is_empty()) else {
        return callback_page(StatusCode::BAD_REQUEST, "Not connected", "This callback carries no state.", &back);
    };
    let cookie = jar.get(super::super::oauth_binding::cookie_name(state.secure_cookies())).map(|cookie| cookie.value());
    if !state.oauth_bindings().check(&flow, cookie) {
        let text = "This sign-in was not started in this browser (or was already finished): start it again from your integrations page.";
        return callback_page(StatusCode::BAD_REQUEST, "Not connected", text, &back);
    }
    let provider_error = callback.error.map(|error| match callback.error_description {
        Some(description) => format!("{error}: {description}"),
        None => error,
    });
    let finished =
        state.services().integrations.finish_oauth(&flow, callback.code.as_deref(), provider_error.as_deref()).await;
    match finished {
        Ok(connected) => {
            let text = format!("{}'s account is connected to {}.", connected.user, connected.plugin);
            callback_page(StatusCode::OK, "Connected", &text, &back)
        }
        Err(error) => {
            let error = ApiError::from(error);
            callback_page(error.status, "Not connected", &error.message, &back)
        }
    }
}

/// The page a browser lands on after the provider: what happened, and the way back.
fn callback_page(status: StatusCode, title: &str, text: &str, back: &str) -> Response {
    let escape = |text: &str| handlebars::html_escape(text);
    let body = format!(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content=\"width=device-width\"><title>{0}</title><h1 id=oauth-outcome>{0}</h1><p>{1}</p><p><a href=\"{2}\" id=back>Back to your integrations</a></p></html>",
        escape(title),
        escape(text),
        escape(back)
    );
    super::super::pages::render::with_headers((status, Html(body)).into_response())
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
    let job = start_sync(&state, &plugin, &user, request.dry_run, request.full)?;
    Ok((StatusCode::ACCEPTED, Json(json!(job))))
}

/// Starts a sync of `user`'s connection to `plugin` as a job of theirs.
pub fn start_sync(
    state: &AppState,
    plugin: &str,
    user: &str,
    dry_run: bool,
    full: bool,
) -> Result<super::super::jobs::JobState, ApiError> {
    let integrations = state.services().integrations.clone();
    integrations.host().registry().user_connection(plugin, user)?;
    let subject = json!({"plugin": plugin, "user": user});
    // The user's job, whoever started it: they follow it too.
    let owner = crate::access::Principal::User(user.to_owned());
    let (plugin, user) = (plugin.to_owned(), user.to_owned());
    Ok(state.jobs().start("sync", &owner, subject, move |progress| async move {
        let told = progress.clone();
        let options = SyncOptions {
            dry_run,
            full,
            progress: Some(Arc::new(move |step: SyncProgress| told.report(json!(step)))),
            ..SyncOptions::default()
        };
        let report = integrations.sync(&plugin, &user, options).await?;
        match &report.error {
            None => Ok(json!(report.as_ref())),
            Some(error) => Err(ApiError::new(StatusCode::BAD_GATEWAY, format!("the sync failed: {error}"))),
        }
    }))
}

/// The connection's last sync, and whether one runs now.
pub async fn sync_status(
    caller: Caller,
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    QueryParams(query): QueryParams<ForUser>,
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
pub fn connection_json(state: &AppState, plugin: &str, user: &str) -> Result<Value, ApiError> {
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

//! A user's pages: their integrations (connect by the provider's sign-in or a token, their
//! settings from `userConfigSchema` and the `_codex` sync keys, sync now, the last result,
//! disconnect), a job's live progress, and their recommendations with dismiss.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::super::AppState;
use super::super::api::connections::{
    begin_oauth, connect_token, connection_json, connections_json, disconnect_user, save_user_settings, start_sync,
};
use super::super::error::ApiError;
use super::super::jobs::JobStatus;
use super::plugins::form_fields;
use super::render::{Flash, page, refused_page};
use super::session::{PageForm, Session};
use super::{Done, done, notice, user_only};
use crate::config_schema::ConfigSchema;
use crate::sync::{SyncSettings, USER_SYNC_KEYS};
use codex_plugin_protocol::types::initialize::HOST_ONLY_NAMESPACE;
use codex_plugin_protocol::types::recommendations::DismissReason;

pub async fn list(State(state): State<AppState>, session: Session, Query(query): Query<Done>) -> Response {
    let user = match user_only(&state, &session) {
        Ok(user) => user.to_owned(),
        Err(refused) => return *refused,
    };
    match super::super::api::blocking(&state, move |state| connections_json(state, &user)).await {
        Ok(data) => page(
            &state,
            StatusCode::OK,
            Some(&session),
            "Integrations",
            "integrations",
            data,
            &notice(query.done.as_deref()),
        ),
        Err(error) => refused_page(&state, error.status, &error.message),
    }
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(plugin): Path<String>,
    Query(query): Query<Done>,
) -> Response {
    let user = match user_only(&state, &session) {
        Ok(user) => user.to_owned(),
        Err(refused) => return *refused,
    };
    integration_page(&state, &session, &plugin, &user, StatusCode::OK, &notice(query.done.as_deref()))
}

fn integration_page(
    state: &AppState,
    session: &Session,
    plugin: &str,
    user: &str,
    status: StatusCode,
    flash: &Flash,
) -> Response {
    let record = match state.services().host.registry().get(plugin) {
        Ok(record) => record,
        Err(error) => {
            let error = ApiError::from(error);
            return refused_page(state, error.status, &error.message);
        }
    };
    let connection = connection_json(state, plugin, user).unwrap_or_else(|_| json!({"connected": false, "config": {}}));
    let manifest = record.manifest.clone().unwrap_or(Value::Null);
    let config = connection["config"].as_object().cloned().unwrap_or_default();
    let fields = ConfigSchema::read(&manifest["userConfigSchema"]).map(|schema| form_fields(&schema, Some(&config)));
    let settings = SyncSettings::from_user_config(&config);
    let flags = [
        ("includeCompleted", "Push series I finished", settings.include_completed),
        ("includeInProgress", "Push series I am reading", settings.include_in_progress),
        ("countPartialProgress", "Count books I opened as read", settings.count_partial_progress),
        ("syncRatings", "Sync my ratings and notes", settings.sync_ratings),
        ("searchFallback", "Also push series without an id, by title", settings.search_fallback),
        ("autoSync", "Sync on the admin's schedule", settings.auto_sync),
    ];
    debug_assert_eq!(flags.map(|(key, _, _)| key), USER_SYNC_KEYS);
    let mode = config.get("syncMode").and_then(Value::as_str).unwrap_or("both");
    let modes: Vec<Value> = [("both", "Both ways"), ("pull", "From the tracker only"), ("push", "To the tracker only")]
        .iter()
        .map(|(value, label)| json!({"value": value, "label": label, "selected": *value == mode}))
        .collect();
    let name = manifest["displayName"].as_str().unwrap_or(plugin).to_owned();
    let data = json!({
        "csrf": session.csrf,
        "plugin": plugin,
        "name": name,
        "oauth": !manifest["oauth"].is_null(),
        "syncs": manifest.pointer("/capabilities/userReadSync") == Some(&json!(true)),
        "connection": connection,
        "fields": fields.unwrap_or_default(),
        "modes": modes,
        "sync_flags": flags.iter().map(|(key, label, checked)| json!({"key": key, "label": label, "checked": checked})).collect::<Vec<_>>(),
    });
    page(state, status, Some(session), &name, "integration", data, flash)
}

/// A form of an integration: `settings`, `token`, `oauth`, `sync` or `disconnect`.
pub async fn act(
    State(state): State<AppState>,
    Path((plugin, action)): Path<(String, String)>,
    jar: CookieJar,
    form: PageForm,
) -> Response {
    let user = match user_only(&state, &form.session) {
        Ok(user) => user.to_owned(),
        Err(refused) => return *refused,
    };
    let outcome = match action.as_str() {
        "settings" => {
            settings(&state, &plugin, &user, &form).await.map(|()| done(&format!("/integrations/{plugin}"), "settings"))
        }
        "token" => connect_token(&state, &plugin, &user, form.get("token").unwrap_or_default().trim())
            .await
            .map(|_| done(&format!("/integrations/{plugin}"), "connected")),
        "oauth" => begin_oauth(&state, &plugin, &user)
            .await
            .map(|(cookie, started)| (jar.add(cookie), Redirect::to(&started.authorization_url)).into_response()),
        "sync" => start_sync(&state, &plugin, &user, false, false)
            .map(|job| Redirect::to(&format!("/jobs/{}", job.id)).into_response()),
        "disconnect" => disconnect_user(&state, &plugin, &user).await.map(|()| done("/integrations", "disconnected")),
        _ => Err(ApiError::not_found(format!("integrations have no action `{action}`"))),
    };
    outcome.unwrap_or_else(|error| {
        let status = super::form_status(&error);
        integration_page(&state, &form.session, &plugin, &user, status, &Flash::error(error.message))
    })
}

/// The schema's fields and the sync settings from the form; the rest of the config kept.
async fn settings(state: &AppState, plugin: &str, user: &str, form: &PageForm) -> Result<(), ApiError> {
    let registry = state.services().host.registry();
    let record = registry.get(plugin)?;
    let mut config = registry.user_connection(plugin, user).map(|connection| connection.config).unwrap_or_default();
    let manifest = record.manifest.unwrap_or(Value::Null);
    if let Some(schema) = ConfigSchema::read(&manifest["userConfigSchema"]) {
        let from_form = schema.from_form(&form.fields).map_err(|faults| {
            let faults: Vec<String> = faults.iter().map(ToString::to_string).collect();
            ApiError::bad_request(format!("your settings were not saved: {}", faults.join("; ")))
        })?;
        for field in &schema.fields {
            config.remove(&field.key);
        }
        config.extend(from_form);
    }
    if manifest.pointer("/capabilities/userReadSync") == Some(&json!(true)) {
        if let Some(mode) = form.get("syncMode") {
            config.insert("syncMode".into(), json!(mode));
        }
        let mut keys = config.get(HOST_ONLY_NAMESPACE).and_then(Value::as_object).cloned().unwrap_or_else(Map::new);
        for key in USER_SYNC_KEYS {
            keys.insert(key.into(), json!(form.get(&format!("{HOST_ONLY_NAMESPACE}.{key}")).is_some()));
        }
        config.insert(HOST_ONLY_NAMESPACE.into(), Value::Object(keys));
    }
    save_user_settings(state, plugin, user, config).await
}

/// A job's page: its state now; with JavaScript it follows the job's events, without it
/// reloads itself while the job runs.
pub async fn job(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    let job = match state.jobs().watch(&id, &session.principal) {
        Ok(receiver) => receiver.borrow().clone(),
        Err(error) => return refused_page(&state, error.status, &error.message),
    };
    let running = job.status == JobStatus::Running;
    let sync = (job.kind == "sync").then(|| job.result.clone()).flatten();
    let back = match job.kind {
        "sync" => job.subject["plugin"].as_str().map(|plugin| format!("/integrations/{plugin}")),
        // A failed install registered nothing: back to the form.
        "install" if job.status == JobStatus::Failed => Some("/plugins/new".to_owned()),
        "install" => job.subject["plugin"].as_str().map(|plugin| format!("/plugins/{plugin}")),
        _ => None,
    };
    let title = format!("{} job", job.kind);
    let data = json!({"job": job, "running": running, "sync": sync, "back": back});
    page(&state, StatusCode::OK, Some(&session), &title, "job", data, &Flash::default())
}

pub async fn recommendations(State(state): State<AppState>, session: Session, Query(query): Query<Done>) -> Response {
    let user = match user_only(&state, &session) {
        Ok(user) => user.to_owned(),
        Err(refused) => return *refused,
    };
    recommendations_page(&state, &session, &user, false, StatusCode::OK, &notice(query.done.as_deref())).await
}

async fn recommendations_page(
    state: &AppState,
    session: &Session,
    user: &str,
    refresh: bool,
    status: StatusCode,
    flash: &Flash,
) -> Response {
    let list = match state.services().integrations.recommendations(user, refresh).await {
        Ok(list) => list,
        Err(error) => {
            let error = ApiError::from(error);
            let data = json!({"csrf": session.csrf, "recommendations": [], "sources": []});
            let flash = Flash::error(error.message);
            return page(state, error.status, Some(session), "Recommendations", "recommendations", data, &flash);
        }
    };
    let data = json!({"csrf": session.csrf, "recommendations": list.recommendations, "sources": list.sources});
    page(state, status, Some(session), "Recommendations", "recommendations", data, flash)
}

/// `refresh` asks every recommendation plugin again; `dismiss` dismisses one.
pub async fn recommendations_act(
    State(state): State<AppState>,
    Path(action): Path<String>,
    form: PageForm,
) -> Response {
    let user = match user_only(&state, &form.session) {
        Ok(user) => user.to_owned(),
        Err(refused) => return *refused,
    };
    let outcome = match action.as_str() {
        "refresh" => state
            .services()
            .integrations
            .recommendations(&user, true)
            .await
            .map(|_| "refreshed")
            .map_err(ApiError::from),
        "dismiss" => {
            let reason = form.get("reason").map(|reason| serde_json::from_value::<DismissReason>(json!(reason)));
            match (form.get("externalId"), reason.transpose()) {
                (Some(id), Ok(reason)) => state
                    .services()
                    .integrations
                    .dismiss(&user, id, reason)
                    .await
                    .map(|_| "dismissed")
                    .map_err(ApiError::from),
                (None, _) => Err(ApiError::bad_request("the recommendation to dismiss is missing")),
                (_, Err(error)) => Err(ApiError::bad_request(format!("the reason is not one of the list: {error}"))),
            }
        }
        _ => Err(ApiError::not_found(format!("recommendations have no action `{action}`"))),
    };
    match outcome {
        Ok(key) => done("/recommendations", key),
        Err(error) => {
            let status = super::form_status(&error);
            recommendations_page(&state, &form.session, &user, false, status, &Flash::error(error.message)).await
        }
    }
}

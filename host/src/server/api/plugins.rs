//! `/api/v1/plugins`: the admin's routes on the registry (list, add, show, update, enable,
//! disable, reset, remove, test, configuration, credentials, permissions, search settings).

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::super::AppState;
use super::super::auth::Admin;
use super::super::body::JsonBody;
use super::super::error::ApiError;
use super::super::jobs::JobState;
use super::health_json;
use super::install::NpxPlugin;
use crate::config_schema::ConfigSchema;
use crate::install::npx;
use crate::metadata::conditions::Conditions;
use crate::metadata::permissions::Permission;
use crate::metadata::rules::TitleRule;
use crate::metadata::settings::{MetadataSettings, Target};
use crate::plugin::PluginId;
use crate::registry::{Launch, PluginDefinition, PluginRecord, Registry};
use crate::vault::Secret;

type Answer = Result<Json<Value>, ApiError>;

/// A new plugin: its id and its registration, as `GET /plugins/{id}` shows it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewPlugin {
    pub id: String,
    pub definition: PluginDefinition,
    /// Enable it at once, without a review of its permissions (default false).
    #[serde(default)]
    pub enable: bool,
}

pub async fn list(_: Admin, State(state): State<AppState>) -> Answer {
    Ok(Json(json!({"plugins": super::blocking(&state, list_plugins).await?})))
}

/// Every plugin: id, how it runs, enabled, health, and its manifest's name and version.
pub fn list_plugins(state: &AppState) -> Result<Vec<Value>, ApiError> {
    let host = &state.services().host;
    let mut plugins = Vec::new();
    for record in host.registry().list()? {
        plugins.push(json!({
            "id": record.id.as_str(),
            "launch": record.definition.launch,
            "enabled": record.enabled,
            "health": health_json(host, record.id.as_str())?,
            "name": manifest_text(&record, "displayName"),
            "version": manifest_text(&record, "version"),
        }));
    }
    Ok(plugins)
}

pub async fn add(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewPlugin>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok(match add_plugin(&state, new)? {
        Added::Registered(shown) => (StatusCode::CREATED, Json(shown)),
        Added::Installing(job) => (StatusCode::ACCEPTED, Json(json!(job))),
    })
}

/// What an add did.
pub enum Added {
    /// Registered: the plugin as shown.
    Registered(Value),
    /// An npx plugin whose package is being installed: the job; it is registered at its end.
    Installing(JobState),
}

/// Registers a plugin after checking it (disabled unless `enable`), or for an npx plugin
/// starts the install that registers it.
pub fn add_plugin(state: &AppState, new: NewPlugin) -> Result<Added, ApiError> {
    let id = PluginId::new(&new.id).map_err(ApiError::bad_request)?;
    check_launch(state, &new.definition, None)?;
    refuse_secret_in_config(&new.definition.admin_config)?;
    if let Some(command) = crate::install::npx_command(&new.definition).map_err(ApiError::bad_request)? {
        let plugin = NpxPlugin { id, definition: new.definition, command, enable: new.enable };
        return super::install::start_install(state, plugin).map(Added::Installing);
    }
    let registry = state.services().host.registry();
    match new.enable {
        true => registry.add(&id, &new.definition)?,
        false => registry.add_disabled(&id, &new.definition)?,
    }
    if new.enable {
        start_release_source(state, id.as_str());
    }
    show_record(state, id.as_str()).map(Added::Registered)
}

pub async fn show(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    Ok(Json(super::blocking(&state, move |state| show_record(state, &id)).await?))
}

/// Replaces the registration; its admin configuration is checked against its schema.
pub async fn update(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(definition): JsonBody<PluginDefinition>,
) -> Answer {
    let registry = state.services().host.registry();
    let record = registry.get(&id)?;
    if record.definition.confinement == crate::sandbox::Confinement::Unconfined {
        return Err(ApiError::forbidden(
            "this plugin runs unconfined: change it with `codex-plugin-host plugin` on the server",
        ));
    }
    check_launch(&state, &definition, Some(&record.definition.launch))?;
    refuse_secret_in_config(&definition.admin_config)?;
    check_config(&record, "configSchema", &definition.admin_config)?;
    registry.set_definition(&id, &definition)?;
    Ok(Json(show_record(&state, &id)?))
}

pub async fn remove(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.services().host.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn enable(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    enable_plugin(&state, &id)?;
    Ok(Json(show_record(&state, &id)?))
}

/// Enables the plugin; a release source starts, to register its sources.
pub fn enable_plugin(state: &AppState, id: &str) -> Result<(), ApiError> {
    state.services().host.registry().set_enabled(id, true)?;
    start_release_source(state, id);
    Ok(())
}

pub async fn disable(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    state.services().host.disable(&id).await?;
    Ok(Json(show_record(&state, &id)?))
}

/// Enables a plugin the supervisor disabled, and forgets its faults.
pub async fn reset(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    reset_plugin(&state, &id).await?;
    Ok(Json(show_record(&state, &id)?))
}

pub async fn reset_plugin(state: &AppState, id: &str) -> Result<(), ApiError> {
    state.services().host.reset(id).await?;
    start_release_source(state, id);
    Ok(())
}

/// Starts the plugin afresh, initializes it, pings it and stops it.
pub async fn test(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    Ok(Json(test_plugin(&state, &id).await?))
}

/// Starts the plugin afresh, initializes it, pings it and stops it; answers it as shown,
/// with how long that took.
pub async fn test_plugin(state: &AppState, id: &str) -> Result<Value, ApiError> {
    let took = state.services().host.test(id).await?;
    let mut shown = show_record(state, id)?;
    shown["test"] = json!({"ok": true, "milliseconds": took.as_secs_f64() * 1000.0});
    Ok(shown)
}

/// Replaces the admin configuration, checked field by field against `configSchema`.
pub async fn configure(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(config): JsonBody<Map<String, Value>>,
) -> Answer {
    configure_plugin(&state, &id, config).await?;
    Ok(Json(show_record(&state, &id)?))
}

/// Replaces the admin configuration after checking it; the plugin's instances restart.
pub async fn configure_plugin(state: &AppState, id: &str, config: Map<String, Value>) -> Result<(), ApiError> {
    let host = &state.services().host;
    let record = host.registry().get(id)?;
    refuse_secret_in_config(&config)?;
    check_config(&record, "configSchema", &config)?;
    host.configure(id, config).await?;
    Ok(())
}

/// Credentials to store sealed: names and values. Never shown back, only their names.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCredentials {
    pub credentials: BTreeMap<String, String>,
    /// A user's own credentials; none: the plugin's.
    #[serde(default)]
    pub user: Option<String>,
}

pub async fn set_credentials(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(new): JsonBody<NewCredentials>,
) -> Answer {
    Ok(Json(store_credentials(&state, &id, new)?))
}

/// Stores credentials sealed; answers their names.
pub fn store_credentials(state: &AppState, id: &str, new: NewCredentials) -> Result<Value, ApiError> {
    let host = &state.services().host;
    if new.credentials.is_empty() {
        return Err(ApiError::bad_request("`credentials` is empty: give at least one name and value"));
    }
    if let Some(name) = new.credentials.keys().find(|name| name.starts_with(crate::registry::HOST_SECRET_PREFIX)) {
        return Err(ApiError::bad_request(format!(
            "`{name}`: names starting with `{}` are the host's own",
            crate::registry::HOST_SECRET_PREFIX
        )));
    }
    if let Some((name, _)) = new.credentials.iter().find(|(_, value)| value.trim().is_empty()) {
        return Err(ApiError::bad_request(format!("credential `{name}` is empty")));
    }
    let vault = host.vault().map_err(|error| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string()))?;
    let values: BTreeMap<String, Secret> =
        new.credentials.into_iter().map(|(name, value)| (name, Secret::new(value))).collect();
    host.registry().set_credentials(vault, id, new.user.as_deref(), &values)?;
    let names = host.registry().credential_names(id, new.user.as_deref())?;
    Ok(json!({"id": id, "user": new.user, "credentials": names}))
}

/// What the plugin may write and which libraries it sees.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Permissions {
    pub permissions: Vec<String>,
    /// None or empty: every library.
    #[serde(default)]
    pub library_ids: Vec<String>,
}

pub async fn set_permissions(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(new): JsonBody<Permissions>,
) -> Answer {
    let settings = grant_permissions(&state, &id, new)?;
    Ok(Json(settings_json(&id, &settings)))
}

/// Replaces what the plugin may write and which libraries it sees, after checking each.
pub fn grant_permissions(state: &AppState, id: &str, new: Permissions) -> Result<MetadataSettings, ApiError> {
    let services = state.services();
    let registry = services.host.registry();
    let mut settings = registry.metadata_settings(id)?;
    for name in &new.permissions {
        name.parse::<Permission>().map_err(ApiError::bad_request)?;
    }
    for library in &new.library_ids {
        crate::library::LibraryPort::library(services.library.as_ref(), library)?;
    }
    let mut permissions = new.permissions;
    permissions.sort();
    permissions.dedup();
    (settings.permissions, settings.library_ids) = (permissions, new.library_ids);
    registry.set_metadata_settings(id, &settings)?;
    Ok(settings)
}

/// How the plugin searches and matches (its permissions and libraries stay).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchSettings {
    #[serde(default)]
    pub search_template: Option<String>,
    #[serde(default)]
    pub title_rules: Vec<TitleRule>,
    #[serde(default)]
    pub auto_match_conditions: Option<Conditions>,
    #[serde(default)]
    pub confidence_threshold: Option<f64>,
    #[serde(default)]
    pub reuse_external_id: Option<bool>,
    #[serde(default)]
    pub accept_unscored: Option<bool>,
    #[serde(default)]
    pub targets: Option<Vec<Target>>,
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
}

pub async fn set_search_settings(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(new): JsonBody<SearchSettings>,
) -> Answer {
    let settings = save_search_settings(&state, &id, new)?;
    Ok(Json(settings_json(&id, &settings)))
}

/// Replaces how the plugin searches and matches, once the settings compile.
pub fn save_search_settings(state: &AppState, id: &str, new: SearchSettings) -> Result<MetadataSettings, ApiError> {
    let registry = state.services().host.registry();
    let current = registry.metadata_settings(id)?;
    if new.confidence_threshold.is_some_and(|threshold| !(0.0..=1.0).contains(&threshold)) {
        return Err(ApiError::bad_request("`confidenceThreshold` must be between 0 and 1"));
    }
    let settings = MetadataSettings {
        permissions: current.permissions,
        library_ids: current.library_ids,
        search_template: new.search_template.filter(|text| !text.trim().is_empty()),
        title_rules: new.title_rules,
        auto_match_conditions: new.auto_match_conditions,
        confidence_threshold: new.confidence_threshold,
        reuse_external_id: new.reuse_external_id,
        accept_unscored: new.accept_unscored,
        targets: new.targets.map(|mut targets| {
            targets.sort();
            targets.dedup();
            targets
        }),
        requests_per_minute: new.requests_per_minute.filter(|rate| *rate > 0),
    };
    settings.compile().map_err(|why| ApiError::bad_request(format!("the settings are not usable: {why}")))?;
    registry.set_metadata_settings(id, &settings)?;
    Ok(settings)
}

/// Everything about one plugin: registration, health, manifest, schemas, metrics,
/// settings, credential names (never values) and connected users.
pub fn show_record(state: &AppState, id: &str) -> Result<Value, ApiError> {
    let host = &state.services().host;
    let registry: &Registry = host.registry();
    let record = registry.get(id)?;
    let mut users = Vec::new();
    for connection in registry.users(id)? {
        let credentials = registry.credential_names(id, Some(&connection.user))?;
        users.push(json!({"user": connection.user, "credentials": credentials}));
    }
    let metrics = host.metrics(id)?;
    Ok(json!({
        "id": record.id.as_str(),
        "definition": record.definition,
        "enabled": record.enabled,
        "disabledReason": record.disabled_reason,
        "recentFaults": record.recent_faults,
        "health": health_json(host, id)?,
        "manifest": record.manifest,
        "metrics": metrics,
        "credentials": registry.credential_names(id, None)?,
        "users": users,
        "install": record.install,
        "metadataSettings": registry.metadata_settings(id)?,
    }))
}

/// A plugin just enabled that is (or may be) a release source starts in the background, to
/// register its sources (as the server's start does for those enabled before).
pub fn start_release_source(state: &AppState, id: &str) {
    let Ok(record) = state.services().host.registry().get(id) else { return };
    let declares =
        |manifest: &Value| manifest.pointer("/capabilities/releaseSource").is_some_and(|found| !found.is_null());
    if !record.manifest.as_ref().is_none_or(declares) {
        return;
    }
    let (releases, id) = (state.services().releases.clone(), id.to_owned());
    tokio::spawn(async move {
        if let Err(error) = releases.refresh_sources(&id).await {
            tracing::warn!(plugin = id, "a release source did not start: {error}");
        }
    });
}

fn settings_json(id: &str, settings: &MetadataSettings) -> Value {
    let mut value = serde_json::to_value(settings).expect("settings serialize");
    value["id"] = json!(id);
    value
}

fn manifest_text(record: &PluginRecord, key: &str) -> Option<String> {
    record.manifest.as_ref()?.get(key)?.as_str().map(str::to_owned)
}

/// A process plugin's command must be on the allowlist and it must run confined (an
/// unconfined plugin is the operator's choice on the server's command line, never a
/// token's); an npx one names its package as the seeds do, and keeps the command it was
/// installed for; a wasm plugin's component must be a file.
fn check_launch(state: &AppState, definition: &PluginDefinition, current: Option<&Launch>) -> Result<(), ApiError> {
    definition.validate().map_err(ApiError::bad_request)?;
    if definition.confinement == crate::sandbox::Confinement::Unconfined {
        return Err(ApiError::forbidden(
            "an unconfined plugin runs as the server's user and could read its vault key: only `codex-plugin-host plugin add --confinement unconfined` on the server registers one",
        ));
    }
    match &definition.launch {
        Launch::Process { command, args } => {
            state.services().allowlist.resolve(command).map_err(|error| ApiError::bad_request(error.to_string()))?;
            if npx::is_npx(command) {
                npx::NpxCommand::parse(args).map_err(ApiError::bad_request)?;
                if current.is_some_and(|current| *current != definition.launch) {
                    return Err(ApiError::bad_request(
                        "an npx command is not changed in place (the install would no longer match it): remove the plugin and add it again",
                    ));
                }
            }
        }
        Launch::Wasm { file } => {
            if !file.is_file() {
                return Err(ApiError::bad_request(format!("no component file at {}", file.display())));
            }
        }
    }
    Ok(())
}

/// A configuration checked against the plugin's schema (`configSchema` or
/// `userConfigSchema` of its manifest), when its manifest is known.
pub fn check_config(record: &PluginRecord, schema: &str, config: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(schema) = record.manifest.as_ref().and_then(|manifest| manifest.get(schema)).and_then(ConfigSchema::read)
    else {
        return Ok(());
    };
    schema.check(config).map_err(|faults| {
        let faults: Vec<String> = faults.iter().map(ToString::to_string).collect();
        ApiError::bad_request(format!("the configuration does not fit the plugin's schema: {}", faults.join("; ")))
    })
}

/// The admin config is sent to the plugin: an OAuth client secret there would reach it.
fn refuse_secret_in_config(config: &Map<String, Value>) -> Result<(), ApiError> {
    match config.contains_key("oauth_client_secret") {
        true => Err(ApiError::bad_request(
            "`oauth_client_secret` would be sent to the plugin with its admin config; store it sealed with `plugin oauth-secret`",
        )),
        false => Ok(()),
    }
}

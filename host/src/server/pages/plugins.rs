//! The admin's plugin pages: the list (enabled toggle, health), add (a command and its
//! arguments one per line, or a component file), and one plugin's page: the permission
//! review before enabling, the configuration form generated from its `configSchema`, its
//! search settings, credentials (never shown back), metrics and recent faults, actions.

use axum::extract::{Multipart, Path, Query, State};
use axum::response::{IntoResponse as _, Redirect, Response};
use http::StatusCode;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::super::AppState;
use super::super::api::plugins::{
    Added, NewCredentials, NewPlugin, Permissions, SearchSettings, add_plugin, configure_plugin, enable_plugin,
    grant_permissions, list_plugins, reset_plugin, save_search_settings, show_record, store_credentials, test_plugin,
};
use super::super::error::ApiError;
use super::render::{Flash, page};
use super::session::{PageForm, Session};
use super::{Done, admin_only, done, notice};
use crate::config_schema::{ConfigSchema, FieldKind, argument_lines};
use crate::registry::{Launch, PluginDefinition};

/// The largest component file the page takes.
pub const COMPONENT_LIMIT: usize = 64 << 20;

pub async fn list(State(state): State<AppState>, session: Session, Query(query): Query<Done>) -> Response {
    if let Some(refused) = admin_only(&state, &session) {
        return refused;
    }
    let plugins = match super::super::api::blocking(&state, list_plugins).await {
        Ok(plugins) => plugins,
        Err(error) => return super::render::refused_page(&state, error.status, &error.message),
    };
    let plugins: Vec<Value> = plugins
        .into_iter()
        .map(|mut plugin| {
            plugin["runs"] = json!(runs(&plugin["launch"]));
            plugin
        })
        .collect();
    let data = json!({"plugins": plugins, "csrf": session.csrf});
    page(&state, StatusCode::OK, Some(&session), "Plugins", "plugins", data, &notice(query.done.as_deref()))
}

pub async fn new_page(State(state): State<AppState>, session: Session) -> Response {
    if let Some(refused) = admin_only(&state, &session) {
        return refused;
    }
    new_form(&state, &session, json!({"timeout": 30}), StatusCode::OK, &Flash::default())
}

fn new_form(state: &AppState, session: &Session, form: Value, status: StatusCode, flash: &Flash) -> Response {
    let data = json!({"csrf": session.csrf, "form": form});
    page(state, status, Some(session), "Add plugin", "plugin_new", data, flash)
}

/// Registers a program: the command, its arguments one per line, its environment.
pub async fn add(State(state): State<AppState>, form: PageForm) -> Response {
    if let Some(refused) = admin_only(&state, &form.session) {
        return refused;
    }
    let echo = json!({
        "id": form.get("id"),
        "command": form.get("command"),
        "arguments": form.get("arguments"),
        "environment": form.get("environment"),
        "timeout": form.get("timeout"),
    });
    let added = process_definition(&form).and_then(|(id, definition)| {
        let added = add_plugin(&state, NewPlugin { id: id.clone(), definition, enable: false });
        Ok((id, added.map_err(|error| error.message)?))
    });
    match added {
        Ok((id, Added::Registered(_))) => done(&format!("/plugins/{id}"), "added"),
        // An npx plugin: its install's progress, then the way to its review.
        Ok((_, Added::Installing(job))) => Redirect::to(&format!("/jobs/{}", job.id)).into_response(),
        Err(why) => new_form(&state, &form.session, echo, StatusCode::BAD_REQUEST, &Flash::error(why)),
    }
}

fn process_definition(form: &PageForm) -> Result<(String, PluginDefinition), String> {
    let id = form.required("id", "The id")?;
    let command = form.required("command", "The command")?;
    if command.contains(char::is_whitespace) {
        return Err(format!(
            "the command {command:?} holds a space: give the program alone, and its arguments one per line below"
        ));
    }
    let args = argument_lines(form.get("arguments").unwrap_or_default())?;
    let mut definition = PluginDefinition::new(Launch::Process { command, args });
    for (number, line) in form.get("environment").unwrap_or_default().lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .filter(|(name, _)| !name.is_empty())
            .ok_or_else(|| format!("environment line {}, {line:?}, is not KEY=VALUE", number + 1))?;
        definition.env.insert(name.to_owned(), value.to_owned());
    }
    if let Some(seconds) = form.get("timeout").map(str::trim).filter(|text| !text.is_empty()) {
        let seconds: f64 = seconds.parse().map_err(|_| format!("the timeout {seconds:?} is not a number"))?;
        if !(seconds.is_finite() && (0.001..=3600.0).contains(&seconds)) {
            return Err("the timeout must be between 0.001 and 3600 seconds".into());
        }
        definition.request_timeout_ms = (seconds * 1000.0).round() as u64;
    }
    Ok((id, definition))
}

/// Registers an uploaded component, kept in the data directory.
pub async fn add_component(State(state): State<AppState>, session: Session, multipart: Multipart) -> Response {
    if let Some(refused) = admin_only(&state, &session) {
        return refused;
    }
    let added = match read_component(multipart, &session).await {
        Ok((id, bytes)) => store_component(&state, &id, bytes).await.map(|()| id),
        Err(why) => Err(why),
    };
    match added {
        Ok(id) => done(&format!("/plugins/{id}"), "added"),
        Err(why) => new_form(&state, &session, json!({"timeout": 30}), StatusCode::BAD_REQUEST, &Flash::error(why)),
    }
}

async fn read_component(mut multipart: Multipart, session: &Session) -> Result<(String, Vec<u8>), String> {
    let (mut csrf, mut id, mut bytes) = (None, None, None);
    while let Some(field) = multipart.next_field().await.map_err(|error| format!("the upload broke off: {error}"))? {
        match field.name() {
            Some("csrf") => csrf = Some(field.text().await.map_err(|error| error.to_string())?),
            Some("id") => id = Some(field.text().await.map_err(|error| error.to_string())?),
            Some("component") => {
                let data =
                    field.bytes().await.map_err(|error| format!("the component did not arrive whole: {error}"))?;
                bytes = Some(data.to_vec());
            }
            _ => {}
        }
    }
    let matches =
        csrf.is_some_and(|csrf| subtle::ConstantTimeEq::ct_eq(csrf.as_bytes(), session.csrf.as_bytes()).into());
    if !matches {
        return Err("this form did not come from this session's page; reload it and send it again".into());
    }
    let id = id.map(|id| id.trim().to_owned()).filter(|id| !id.is_empty()).ok_or("the id is missing")?;
    let bytes = bytes.filter(|bytes| !bytes.is_empty()).ok_or("choose a component file (.wasm)")?;
    if !bytes.starts_with(b"\0asm") {
        return Err("that file is not WebAssembly (it does not start with \\0asm)".into());
    }
    Ok((id, bytes))
}

async fn store_component(state: &AppState, id: &str, bytes: Vec<u8>) -> Result<(), String> {
    crate::plugin::PluginId::new(id)?;
    let dir = state.services().host.database_path().with_file_name("components");
    let file = dir.join(format!("{id}.wasm"));
    let (written, stored) = (file.clone(), dir.clone());
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&stored)?;
        if written.exists() {
            return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a component of that id is kept"));
        }
        std::fs::write(&written, bytes)
    })
    .await
    .map_err(|error| error.to_string())?
    .map_err(|error| format!("the component could not be kept: {error}"))?;
    let definition = PluginDefinition::new(Launch::Wasm { file: file.clone() });
    add_plugin(state, NewPlugin { id: id.to_owned(), definition, enable: false }).map(|_| ()).map_err(|error| {
        let _ = std::fs::remove_file(&file);
        error.message
    })
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<Done>,
) -> Response {
    if let Some(refused) = admin_only(&state, &session) {
        return refused;
    }
    plugin_page(&state, &session, &id, StatusCode::OK, &notice(query.done.as_deref()))
}

fn plugin_page(state: &AppState, session: &Session, id: &str, status: StatusCode, flash: &Flash) -> Response {
    let plugin = match show_record(state, id) {
        Ok(plugin) => plugin,
        Err(error) => return super::render::refused_page(state, error.status, &error.message),
    };
    let settings = &plugin["metadataSettings"];
    let granted: Vec<&str> =
        settings["permissions"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let permissions: Vec<Value> = crate::metadata::permissions::all()
        .into_iter()
        .map(|name| json!({"granted": granted.contains(&name.as_str()), "name": name}))
        .collect();
    let libraries: Vec<&str> =
        settings["libraryIds"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let manifest = &plugin["manifest"];
    let schema = ConfigSchema::read(&manifest["configSchema"]).map(|schema| {
        json!({"description": schema.description, "fields": form_fields(&schema, plugin["definition"]["adminConfig"].as_object())})
    });
    let data = json!({
        "csrf": session.csrf,
        "runs": runs(&plugin["definition"]["launch"]),
        "provides": provides(manifest),
        "permissions": permissions,
        "libraries": libraries.join("\n"),
        "schema": schema,
        "settings": settings,
        "credential_fields": manifest["requiredCredentials"],
        "metrics": metric_rows(&plugin["metrics"]),
        "plugin": plugin,
    });
    page(state, status, Some(session), &format!("Plugin {id}"), "plugin", data, flash)
}

/// A plugin's form: `permissions`, `config`, `search-settings`, `credentials`, `enable`,
/// `disable`, `reset`, `test` or `remove`.
pub async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    form: PageForm,
) -> Response {
    if let Some(refused) = admin_only(&state, &form.session) {
        return refused;
    }
    let outcome: Result<&str, ApiError> = match action.as_str() {
        "permissions" => permissions(&state, &id, &form).await,
        "config" => configure(&state, &id, &form).await,
        "search-settings" => search_settings(&state, &id, &form),
        "credentials" => credentials(&state, &id, &form),
        "enable" => enable(&state, &id).await,
        "disable" => state.services().host.disable(&id).await.map(|()| "disabled").map_err(Into::into),
        "reset" => reset_plugin(&state, &id).await.map(|()| "reset"),
        "test" => test_plugin(&state, &id).await.map(|_| "tested"),
        "remove" => state.services().host.remove(&id).await.map(|()| "removed").map_err(Into::into),
        _ => Err(ApiError::not_found(format!("plugins have no action `{action}`"))),
    };
    match outcome {
        Ok("removed") => done("/plugins", "removed"),
        Ok(key) => done(&format!("/plugins/{id}"), key),
        Err(error) => {
            let status = super::form_status(&error);
            plugin_page(&state, &form.session, &id, status, &Flash::error(error.message))
        }
    }
}

/// Enables and starts it (a test), so that its manifest, and its configuration form, show.
async fn enable(state: &AppState, id: &str) -> Result<&'static str, ApiError> {
    enable_plugin(state, id)?;
    test_plugin(state, id).await.map(|_| "enabled")
}

async fn permissions(state: &AppState, id: &str, form: &PageForm) -> Result<&'static str, ApiError> {
    let permissions =
        form.fields.iter().filter(|(key, _)| key == "permission").map(|(_, value)| value.clone()).collect();
    let library_ids = form
        .get("libraries")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    grant_permissions(state, id, Permissions { permissions, library_ids })?;
    match form.get("enable") {
        Some(_) => enable(state, id).await,
        None => Ok("granted"),
    }
}

/// The schema's fields from the form, the rest of the admin config kept as it is; or the
/// whole config as JSON for a plugin without a schema.
async fn configure(state: &AppState, id: &str, form: &PageForm) -> Result<&'static str, ApiError> {
    let record = state.services().host.registry().get(id)?;
    let schema = record.manifest.as_ref().and_then(|manifest| ConfigSchema::read(&manifest["configSchema"]));
    let config = match (schema, form.get("json")) {
        (_, Some(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(config)) => config,
            Ok(_) => return Err(ApiError::bad_request("the admin configuration must be a JSON object")),
            Err(error) => return Err(ApiError::bad_request(format!("the admin configuration is not JSON: {error}"))),
        },
        (Some(schema), None) => {
            let from_form = schema.from_form(&form.fields).map_err(|faults| {
                let faults: Vec<String> = faults.iter().map(ToString::to_string).collect();
                ApiError::bad_request(format!("the configuration was not saved: {}", faults.join("; ")))
            })?;
            let mut config = record.definition.admin_config.clone();
            for field in &schema.fields {
                config.remove(&field.key);
            }
            config.extend(from_form);
            config
        }
        (None, None) => return Err(ApiError::bad_request("the form sent no configuration")),
    };
    configure_plugin(state, id, config).await.map(|()| "configured")
}

fn search_settings(state: &AppState, id: &str, form: &PageForm) -> Result<&'static str, ApiError> {
    let text = |name: &str| form.get(name).map(str::trim).filter(|text| !text.is_empty());
    let json_field = |name: &str, label: &str| -> Result<Option<Value>, ApiError> {
        text(name)
            .map(|text| serde_json::from_str(text).map_err(|error| ApiError::bad_request(format!("{label}: {error}"))))
            .transpose()
    };
    let number = |name: &str, label: &str| -> Result<Option<f64>, ApiError> {
        text(name)
            .map(|text| {
                text.parse::<f64>().map_err(|_| ApiError::bad_request(format!("{label}: {text:?} is not a number")))
            })
            .transpose()
    };
    let current = state.services().host.registry().metadata_settings(id)?;
    let rules = json_field("titleRules", "title rules")?.unwrap_or_else(|| json!([]));
    let conditions = json_field("autoMatchConditions", "auto-match conditions")?;
    let settings = SearchSettings {
        search_template: text("searchTemplate").map(str::to_owned),
        title_rules: serde_json::from_value(rules)
            .map_err(|error| ApiError::bad_request(format!("title rules: {error}")))?,
        auto_match_conditions: conditions
            .map(serde_json::from_value)
            .transpose()
            .map_err(|error| ApiError::bad_request(format!("auto-match conditions: {error}")))?,
        confidence_threshold: number("confidenceThreshold", "the confidence threshold")?,
        reuse_external_id: Some(form.get("reuseExternalId").is_some()),
        accept_unscored: Some(form.get("acceptUnscored").is_some()),
        targets: current.targets,
        requests_per_minute: number("requestsPerMinute", "requests per minute")?.map(|rate| rate.max(0.0) as u32),
    };
    save_search_settings(state, id, settings).map(|_| "searched")
}

fn credentials(state: &AppState, id: &str, form: &PageForm) -> Result<&'static str, ApiError> {
    let mut values = BTreeMap::new();
    for (key, value) in &form.fields {
        if let Some(name) = key.strip_prefix("credential:")
            && !value.trim().is_empty()
        {
            values.insert(name.to_owned(), value.trim().to_owned());
        }
    }
    match (form.get("name").map(str::trim), form.get("value").map(str::trim)) {
        (Some(name), Some(value)) if !name.is_empty() && !value.is_empty() => {
            values.insert(name.to_owned(), value.to_owned());
        }
        (Some(name), _) if !name.is_empty() => {
            return Err(ApiError::bad_request(format!("credential `{name}` has no value")));
        }
        _ => {}
    }
    store_credentials(state, id, NewCredentials { credentials: values, user: None }).map(|_| "credentials")
}

/// The form's fields of a schema, with the configuration's values.
pub fn form_fields(schema: &ConfigSchema, config: Option<&Map<String, Value>>) -> Vec<Value> {
    schema
        .fields
        .iter()
        .map(|field| {
            let value = config.and_then(|config| config.get(&field.key)).or(field.default.as_ref());
            let (kind, shown) = match &field.kind {
                FieldKind::Boolean => ("boolean", String::new()),
                FieldKind::Number => ("number", value.map(|value| value.to_string()).unwrap_or_default()),
                FieldKind::String => ("text", value.and_then(Value::as_str).unwrap_or_default().to_owned()),
                FieldKind::StringArray => (
                    "list",
                    value
                        .and_then(Value::as_array)
                        .map(|items| items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
                        .unwrap_or_default(),
                ),
                FieldKind::Object | FieldKind::Other(_) => (
                    "json",
                    value.map(|value| serde_json::to_string_pretty(value).unwrap_or_default()).unwrap_or_default(),
                ),
            };
            json!({
                "key": field.key,
                "label": field.label,
                "description": field.description,
                "required": field.required,
                "kind": kind,
                "value": shown,
                "checked": value == Some(&Value::Bool(true)),
            })
        })
        .collect()
}

/// How a plugin runs, as one line: its command and arguments, or its component.
fn runs(launch: &Value) -> String {
    match launch["mode"].as_str() {
        Some("wasm") => format!("component {}", launch["file"].as_str().unwrap_or_default()),
        _ => {
            let args = launch["args"].as_array().into_iter().flatten().filter_map(Value::as_str);
            std::iter::once(launch["command"].as_str().unwrap_or_default()).chain(args).collect::<Vec<_>>().join(" ")
        }
    }
}

/// What a manifest's capabilities offer, in words.
fn provides(manifest: &Value) -> String {
    let capabilities = &manifest["capabilities"];
    let mut offered = Vec::new();
    if let Some(targets) = capabilities["metadataProvider"].as_array().filter(|targets| !targets.is_empty()) {
        let targets: Vec<&str> = targets.iter().filter_map(Value::as_str).collect();
        offered.push(format!("metadata for {}", targets.join(" and ")));
    }
    if capabilities["userReadSync"] == true {
        offered.push("reading-progress sync".into());
    }
    if capabilities["userRecommendationProvider"] == true {
        offered.push("recommendations".into());
    }
    if !capabilities["releaseSource"].is_null() {
        offered.push("release sources".into());
    }
    offered.join(", ")
}

/// The metrics' rows: each method's calls, answers and failures by kind.
fn metric_rows(metrics: &Value) -> Vec<Value> {
    let methods = metrics["methods"].as_object().into_iter().flatten();
    methods
        .map(|(method, counts)| {
            let failures: Vec<String> = counts["failures"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(kind, count)| format!("{kind} {count}"))
                .collect();
            json!({"method": method, "calls": counts["requests"], "succeeded": counts["successes"], "failures": failures.join(", ")})
        })
        .collect()
}

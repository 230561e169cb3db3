//! npx plugins added over HTTP: the seeds' command (`npx`, then `-y` and
//! `@scope/name@1.2.3`, one per line) has the host install the package as `plugin add`
//! does on the command line (npm in the plugin's sandbox, scripts off, the result sealed
//! read-only), from the registry the operator chose with `serve --npm-registry`, never one
//! a token names. The install is a job; the plugin is registered once it is sealed, and
//! a failed install registers nothing.

use serde_json::{Value, json};
use std::time::Instant;

use super::super::AppState;
use super::super::error::ApiError;
use super::super::jobs::{JobState, Progress};
use super::plugins::{show_record, start_release_source};
use crate::access::Principal;
use crate::install::npx::NpxCommand;
use crate::install::{InstallError, Installs};
use crate::plugin::PluginId;
use crate::registry::{PluginDefinition, RegistryError};

/// What an install job needs.
pub struct NpxPlugin {
    pub id: PluginId,
    pub definition: PluginDefinition,
    pub command: NpxCommand,
    /// Enabled once installed, without a review of its permissions.
    pub enable: bool,
}

/// Starts installing `plugin`'s package as an admin's job; a plugin already registered
/// under its id is refused at once.
pub fn start_install(state: &AppState, plugin: NpxPlugin) -> Result<JobState, ApiError> {
    refuse_registered(state, &plugin.id)?;
    let subject = json!({
        "plugin": plugin.id.as_str(),
        "package": plugin.command.package.to_string(),
        "registry": state.services().npm_registry,
    });
    let job_state = state.clone();
    Ok(state.jobs().start("install", &Principal::Admin, subject, move |progress| async move {
        install(&job_state, plugin, progress).await
    }))
}

/// The install, on a blocking thread: the wait for the install lock, the install's walk
/// of its files and the registration are blocking work that must not hold a worker; npm
/// itself runs on the runtime.
async fn install(state: &AppState, plugin: NpxPlugin, progress: Progress) -> Result<Value, ApiError> {
    let (worker_state, runtime) = (state.clone(), tokio::runtime::Handle::current());
    let id = plugin.id.clone();
    let installed = tokio::task::spawn_blocking(move || {
        let state = &worker_state;
        let services = state.services();
        progress.report(json!({"stage": "waiting for the plugin's install lock"}));
        let installs = Installs::lock(services.install_sandbox.clone(), plugin.id.as_str()).map_err(failed)?;
        // Another install may have registered it while this one waited.
        refuse_registered(state, &plugin.id)?;
        let package = plugin.command.package.to_string();
        progress.report(json!({"stage": "installing", "package": package, "registry": services.npm_registry}));
        let started = Instant::now();
        let confinement = plugin.definition.confinement;
        let registry = services.npm_registry.clone();
        let installed =
            runtime.block_on(installs.install(&plugin.command, confinement, registry, None)).map_err(failed)?;
        let seconds = started.elapsed().as_secs_f64();
        let registry = services.host.registry();
        if let Err(error) = registry.add_installed(&plugin.id, &plugin.definition, &installed, plugin.enable) {
            installs.abandon();
            return Err(ApiError::from(error));
        }
        Ok((seconds, plugin.enable))
    })
    .await
    .map_err(|error| ApiError::internal(format!("the install stopped: {error}")))?;
    let (seconds, enabled) = installed?;
    if enabled {
        start_release_source(state, id.as_str());
    }
    // Registered: a failure to show it now does not make the install a failure.
    let shown = show_record(state, id.as_str()).unwrap_or_else(|_| json!({"id": id.as_str()}));
    Ok(json!({"plugin": shown, "seconds": seconds}))
}

fn refuse_registered(state: &AppState, id: &PluginId) -> Result<(), ApiError> {
    match state.services().host.registry().get(id.as_str()) {
        Ok(_) => Err(RegistryError::AlreadyRegistered(id.to_string()).into()),
        Err(RegistryError::NotRegistered(_)) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

fn failed(error: InstallError) -> ApiError {
    ApiError::internal(error.to_string())
}

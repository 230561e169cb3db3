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
        install(&job_state, &plugin, &progress).await
    }))
}

async fn install(state: &AppState, plugin: &NpxPlugin, progress: &Progress) -> Result<Value, ApiError> {
    let services = state.services();
    progress.report(json!({"stage": "waiting for the plugin's install lock"}));
    let (sandbox, id) = (services.install_sandbox.clone(), plugin.id.to_string());
    let installs = tokio::task::spawn_blocking(move || Installs::lock(sandbox, &id))
        .await
        .map_err(|error| ApiError::internal(format!("the install lock could not be taken: {error}")))?
        .map_err(failed)?;
    // Another install may have registered it while this one waited.
    refuse_registered(state, &plugin.id)?;
    let package = plugin.command.package.to_string();
    progress.report(json!({"stage": "installing", "package": package, "registry": services.npm_registry}));
    let started = Instant::now();
    let installed = installs
        .install(&plugin.command, plugin.definition.confinement, services.npm_registry.clone(), None)
        .await
        .map_err(failed)?;
    let seconds = started.elapsed().as_secs_f64();
    if let Err(error) =
        services.host.registry().add_installed(&plugin.id, &plugin.definition, &installed, plugin.enable)
    {
        installs.abandon();
        return Err(error.into());
    }
    drop(installs);
    if plugin.enable {
        start_release_source(state, plugin.id.as_str());
    }
    Ok(json!({"plugin": show_record(state, plugin.id.as_str())?, "seconds": seconds}))
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

//! What the library and metadata commands share: where the host's data is, a host over it
//! with the library and the pipeline, and how their errors become exit codes.

use clap::Args;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;

use super::Failure;
use super::input::absolute;
use crate::host::{HostConfig, HostError, PluginHost};
use crate::integrations::{IntegrationError, Integrations};
use crate::library::{LibraryError, SqliteLibrary};
use crate::pipeline::{Pipeline, PipelineError};
use crate::plugin::PluginError;
use crate::registry::RegistryError;
use crate::transport::process::CommandAllowlist;

/// Where the host's data is, and what its process plugins may run.
#[derive(Debug, Args)]
pub struct HostArgs {
    /// The host's data directory (the database is in it).
    #[arg(long, value_name = "DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
    /// The vault key's file (base64 of 32 bytes); by default `CODEX_ENCRYPTION_KEY`.
    #[arg(long, value_name = "FILE", global = true)]
    pub key_file: Option<PathBuf>,
    /// Let process plugins run executables inside this directory.
    #[arg(long, value_name = "DIR", global = true)]
    pub plugins_dir: Option<PathBuf>,
    /// Add a bare command name to the allowlist (repeatable).
    #[arg(long = "allow-command", value_name = "NAME", global = true)]
    pub allow_commands: Vec<String>,
}

impl HostArgs {
    /// A host over the data directory, its library and the pipeline. Inside a runtime.
    pub fn open(&self) -> Result<(Arc<PluginHost>, Pipeline), Failure> {
        let (host, library) = self.open_with_library()?;
        let pipeline = Pipeline::new(host.clone(), library).map_err(pipeline_failure)?;
        Ok((host, pipeline))
    }

    /// A host over the data directory, with users' integrations over its library.
    pub fn open_integrations(&self) -> Result<(Arc<PluginHost>, Integrations), Failure> {
        let (host, library) = self.open_with_library()?;
        let integrations = Integrations::new(host.clone(), library).map_err(integration_failure)?;
        Ok((host, integrations))
    }

    /// A host over the data directory, with its release tracker.
    pub fn open_releases(&self) -> Result<crate::release_tracking::ReleaseTracker, Failure> {
        let (host, library) = self.open_with_library()?;
        let config = crate::release_tracking::TrackerConfig::default();
        crate::release_tracking::ReleaseTracker::new(host, library, config).map_err(release_failure)
    }

    /// The host's configuration from these arguments.
    pub fn host_config(&self) -> Result<HostConfig, Failure> {
        let mut config = HostConfig::new(absolute(&self.data_dir)?);
        config.key_file = self.key_file.as_deref().map(absolute).transpose()?;
        let mut allowlist = CommandAllowlist::default();
        for name in &self.allow_commands {
            allowlist = allowlist.allow(name);
        }
        if let Some(dir) = &self.plugins_dir {
            allowlist = allowlist.with_plugins_dir(absolute(dir)?);
        }
        config.allowlist = allowlist;
        Ok(config)
    }

    fn open_with_library(&self) -> Result<(Arc<PluginHost>, Arc<SqliteLibrary>), Failure> {
        let config = self.host_config()?;
        let host = PluginHost::open(config).map_err(|error| match error {
            HostError::Vault(error) => Failure::usage(error.to_string()),
            other => host_failure(other.to_string()),
        })?;
        let host = Arc::new(host);
        let library = SqliteLibrary::open(&host.database_path()).map_err(library_failure)?;
        Ok((host, Arc::new(library)))
    }
}

/// The runtime of one command (two workers: plugins answer while the job runs).
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| host_failure(format!("could not start the async runtime: {error}")))
}

/// A JSON argument, given inline or as `@FILE`.
pub fn read_json_argument<T: DeserializeOwned>(flag: &str, text: &str) -> Result<T, Failure> {
    let text = match text.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file)
            .map_err(|error| Failure::usage(format!("{flag}: could not read {file}: {error}")))?,
        None => text.to_owned(),
    };
    serde_json::from_str(&text).map_err(|error| Failure::usage(format!("{flag}: {error}")))
}

pub fn host_failure(message: String) -> Failure {
    Failure { message, exit_code: 3 }
}

/// Unknown ids and invalid input exit 2; the rest 3.
pub fn library_failure(error: LibraryError) -> Failure {
    match error {
        LibraryError::NoLibrary(_)
        | LibraryError::NoSeries(_)
        | LibraryError::NoBook(_)
        | LibraryError::Invalid(_)
        | LibraryError::Changed { .. } => Failure::usage(error.to_string()),
        other => host_failure(other.to_string()),
    }
}

/// Unknown plugins and users, and invalid registrations, exit 2; the rest 3.
fn registry_failure(error: RegistryError) -> Failure {
    match error {
        RegistryError::NotRegistered(_) | RegistryError::Invalid { .. } | RegistryError::NotConnected { .. } => {
            Failure::usage(error.to_string())
        }
        other => host_failure(other.to_string()),
    }
}

/// A plugin's error answer exits 1, an unknown plugin 2, the rest (not started, timed out,
/// died) 3.
fn plugin_failure(error: PluginError) -> Failure {
    match error {
        PluginError::Answered { .. } => Failure { message: error.to_string(), exit_code: 1 },
        PluginError::NotRegistered { .. } => Failure::usage(error.to_string()),
        other => host_failure(other.to_string()),
    }
}

/// Unknown sources and bad input exit 2, a plugin's error answer 1, the rest 3.
pub fn release_failure(error: crate::release_tracking::ReleaseError) -> Failure {
    use crate::release_tracking::ReleaseError;
    match error {
        ReleaseError::Library(error) => library_failure(error),
        ReleaseError::Plugin(error) => plugin_failure(error),
        error @ (ReleaseError::UnknownSource(_) | ReleaseError::Invalid(_)) => Failure::usage(error.to_string()),
        other => host_failure(other.to_string()),
    }
}

/// Bad input exits 2, a plugin's error answer 1, the host's failures 3.
pub fn pipeline_failure(error: PipelineError) -> Failure {
    match error {
        PipelineError::Library(error) => library_failure(error),
        PipelineError::Registry(error) => registry_failure(error),
        PipelineError::Plugin(error) => plugin_failure(error),
        error @ (PipelineError::NotProvider { .. }
        | PipelineError::Settings { .. }
        | PipelineError::OutOfScope { .. }
        | PipelineError::UnknownField(..)) => Failure::usage(error.to_string()),
        other => host_failure(other.to_string()),
    }
}

/// Bad input exits 2 (unknown plugin or user, a plugin without the capability, a sync
/// already running elsewhere), a plugin's error answer 1, the host's failures 3.
pub fn integration_failure(error: IntegrationError) -> Failure {
    match error {
        IntegrationError::Library(error) => library_failure(error),
        IntegrationError::Registry(error) => registry_failure(error),
        IntegrationError::Plugin(error) => plugin_failure(error),
        error @ (IntegrationError::NotCapable { .. }
        | IntegrationError::NoRecommenders(_)
        | IntegrationError::Invalid(_)
        | IntegrationError::Settings { .. }) => Failure::usage(error.to_string()),
        other => host_failure(other.to_string()),
    }
}

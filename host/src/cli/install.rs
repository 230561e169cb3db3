//! `plugin add` of an npx plugin, and `plugin install`: the host installs the package the
//! npx command names (see [`crate::install`]), showing what it does on stderr.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::Failure;
use super::input::absolute;
use crate::install::npx::NpxCommand;
use crate::install::package::InstalledPackage;
use crate::install::{DEFAULT_REGISTRY, InstallError, registry_url};
use crate::registry::PluginDefinition;
use crate::sandbox::install_dir::InstallDirError;
use crate::sandbox::{Sandbox, SandboxConfig};

/// The npx command of a definition the host should install for, if it is one.
pub fn npx_command(definition: &PluginDefinition) -> Result<Option<NpxCommand>, Failure> {
    crate::install::npx_command(definition).map_err(Failure::usage)
}

/// One plugin's installs, under its install lock (see [`crate::install::Installs`]).
pub struct Installs(crate::install::Installs);

impl Installs {
    /// Takes `plugin`'s install lock in the host's data directory, waiting for an install
    /// under way.
    pub fn lock(data_dir: &Path, key_file: Option<&Path>, plugin: &str) -> Result<Self, Failure> {
        let data_dir = absolute(data_dir)?;
        crate::host::create_private_dir(&data_dir).map_err(|error| host_failure(error.to_string()))?;
        let protected: Vec<PathBuf> = key_file.map(absolute).transpose()?.into_iter().collect();
        let sandbox = Sandbox::new(SandboxConfig::default(), &data_dir, protected);
        crate::install::Installs::lock(sandbox, plugin).map(Self).map_err(|error| host_failure(error.to_string()))
    }

    /// Installs `command`'s package, saying what it does on stderr.
    pub fn install(
        &self,
        plugin: &str,
        command: &NpxCommand,
        definition: &PluginDefinition,
        registry: Option<&str>,
        seed_cache: Option<&Path>,
    ) -> Result<InstalledPackage, Failure> {
        let registry =
            registry_url(registry.unwrap_or(DEFAULT_REGISTRY)).map_err(|error| Failure::usage(error.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| host_failure(format!("could not start the async runtime: {error}")))?;
        if !command.package.is_pinned() {
            eprintln!(
                "warning: {} is not pinned to a version: the version installed now is kept until `plugin install {plugin}`",
                command.package
            );
        }
        let seed_cache = seed_cache.map(absolute).transpose()?;
        if let Some(cache) = &seed_cache {
            eprintln!("copying the npm cache {} into the install's own cache…", cache.display());
        }
        eprintln!("installing {} from {registry} for plugin `{plugin}`, in its sandbox, scripts off…", command.package);
        let started = Instant::now();
        let installed = runtime.block_on(self.0.install(command, definition.confinement, registry, seed_cache));
        let installed = installed.map_err(|error| match error {
            InstallError::Registry { .. }
            | InstallError::Command(_)
            | InstallError::Seal(
                InstallDirError::NotACache { .. }
                | InstallDirError::UntrustedSeed { .. }
                | InstallDirError::SeedTooLarge { .. },
            ) => Failure::usage(error.to_string()),
            other => host_failure(other.to_string()),
        })?;
        eprintln!(
            "installed {}@{} ({}) in {:.1} s; it starts with `node {}`, offline",
            installed.name,
            installed.version,
            installed.integrity,
            started.elapsed().as_secs_f64(),
            installed.bin
        );
        Ok(installed)
    }

    /// The install's registration failed: the install goes.
    pub fn abandon(self) {
        self.0.abandon();
    }
}

fn host_failure(message: String) -> Failure {
    Failure { message, exit_code: 3 }
}

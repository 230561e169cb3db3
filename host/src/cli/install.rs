//! `plugin add` of an npx plugin, and `plugin install`: the host installs the package the
//! npx command names (see [`crate::install`]), showing what it does on stderr.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::Failure;
use super::input::absolute;
use crate::install::npx::{self, NpxCommand};
use crate::install::package::InstalledPackage;
use crate::install::{DEFAULT_REGISTRY, INSTALL_DEADLINE, InstallError, NpmInstaller, registry_url};
use crate::registry::{Launch, PluginDefinition};
use crate::sandbox::install_dir::{InstallDirError, InstallLock};
use crate::sandbox::{Sandbox, SandboxConfig};

/// The npx command of a definition the host should install for, if it is one.
pub fn npx_command(definition: &PluginDefinition) -> Result<Option<NpxCommand>, Failure> {
    match &definition.launch {
        Launch::Process { command, args } if npx::is_npx(command) => {
            NpxCommand::parse(args).map(Some).map_err(Failure::usage)
        }
        _ => Ok(None),
    }
}

/// Installs of one plugin's package, under its install lock: taken before the caller
/// checks the registry and held until it has registered the install (or abandoned it), so
/// no other install of the plugin runs in between.
pub struct Installs {
    sandbox: Sandbox,
    plugin: String,
    _lock: InstallLock,
}

impl Installs {
    /// Takes `plugin`'s install lock in the host's data directory, waiting for an install
    /// under way.
    pub fn lock(data_dir: &Path, key_file: Option<&Path>, plugin: &str) -> Result<Self, Failure> {
        let data_dir = absolute(data_dir)?;
        crate::host::create_private_dir(&data_dir).map_err(|error| host_failure(error.to_string()))?;
        let protected: Vec<PathBuf> = key_file.map(absolute).transpose()?.into_iter().collect();
        let sandbox = Sandbox::new(SandboxConfig::default(), &data_dir, protected);
        let lock = sandbox.lock_installs(plugin).map_err(|error| host_failure(error.to_string()))?;
        Ok(Self { sandbox, plugin: plugin.to_owned(), _lock: lock })
    }

    /// Installs `command`'s package, saying what it does on stderr.
    pub fn install(
        &self,
        command: &NpxCommand,
        definition: &PluginDefinition,
        registry: Option<&str>,
        seed_cache: Option<&Path>,
    ) -> Result<InstalledPackage, Failure> {
        let plugin = self.plugin.as_str();
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
        let installer = NpmInstaller { sandbox: &self.sandbox, registry, deadline: INSTALL_DEADLINE, seed_cache };
        let installed = runtime.block_on(installer.install(plugin, command, definition.confinement));
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
        self.sandbox.remove_install(&self.plugin);
    }
}

fn host_failure(message: String) -> Failure {
    Failure { message, exit_code: 3 }
}

//! One plugin's installs, under its install lock: taken before the caller checks the
//! registry and held until it has registered the install (or abandoned it), so no other
//! install of the plugin runs in between, whether from the command line or a server.

use std::path::PathBuf;

use super::npx::NpxCommand;
use super::package::InstalledPackage;
use super::{INSTALL_DEADLINE, InstallError, NpmInstaller};
use crate::registry::{Launch, PluginDefinition};
use crate::sandbox::install_dir::InstallLock;
use crate::sandbox::{Confinement, Sandbox};

/// The npx command of a definition the host should install for, if it is one.
pub fn npx_command(definition: &PluginDefinition) -> Result<Option<NpxCommand>, String> {
    match &definition.launch {
        Launch::Process { command, args } if super::npx::is_npx(command) => NpxCommand::parse(args).map(Some),
        _ => Ok(None),
    }
}

/// The install lock of one plugin, and its installs.
pub struct Installs {
    sandbox: Sandbox,
    plugin: String,
    _lock: InstallLock,
}

impl Installs {
    /// Takes `plugin`'s install lock in `sandbox`'s data directory, waiting (blocking) for
    /// an install under way.
    pub fn lock(sandbox: Sandbox, plugin: &str) -> Result<Self, InstallError> {
        let lock = sandbox.lock_installs(plugin)?;
        Ok(Self { sandbox, plugin: plugin.to_owned(), _lock: lock })
    }

    /// Installs `command`'s package from `registry` (checked by [`super::registry_url`]),
    /// with an operator's warmed npm cache if given.
    pub async fn install(
        &self,
        command: &NpxCommand,
        confinement: Confinement,
        registry: String,
        seed_cache: Option<PathBuf>,
    ) -> Result<InstalledPackage, InstallError> {
        let installer = NpmInstaller { sandbox: &self.sandbox, registry, deadline: INSTALL_DEADLINE, seed_cache };
        installer.install(&self.plugin, command, confinement).await
    }

    /// The install's registration failed: the install goes.
    pub fn abandon(self) {
        self.sandbox.remove_install(&self.plugin);
    }
}

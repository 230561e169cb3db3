//! `plugin add` of an npx plugin, and `plugin install`: the host installs the package the
//! npx command names (see [`crate::install`]), showing what it does on stderr.

use std::path::PathBuf;
use std::time::Instant;

use super::Failure;
use super::input::absolute;
use crate::install::npx::{self, NpxCommand};
use crate::install::package::InstalledPackage;
use crate::install::{DEFAULT_REGISTRY, INSTALL_DEADLINE, InstallError, NpmInstaller, registry_url};
use crate::registry::{Launch, PluginDefinition};
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

/// Installs `command`'s package for `plugin`, saying what it does on stderr.
pub fn install(
    data_dir: &std::path::Path,
    key_file: Option<&std::path::Path>,
    plugin: &str,
    command: &NpxCommand,
    definition: &PluginDefinition,
    registry: Option<&str>,
    seed_cache: Option<&std::path::Path>,
) -> Result<InstalledPackage, Failure> {
    let registry =
        registry_url(registry.unwrap_or(DEFAULT_REGISTRY)).map_err(|error| Failure::usage(error.to_string()))?;
    let data_dir = absolute(data_dir)?;
    crate::host::create_private_dir(&data_dir).map_err(|error| host_failure(error.to_string()))?;
    let protected: Vec<PathBuf> = key_file.map(absolute).transpose()?.into_iter().collect();
    let sandbox = Sandbox::new(SandboxConfig::default(), &data_dir, protected);
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
    eprintln!("installing {} from {registry} for plugin `{plugin}`, in its sandbox, scripts off…", command.package);
    let started = Instant::now();
    let seed_cache = seed_cache.map(absolute).transpose()?;
    if let Some(cache) = &seed_cache {
        eprintln!("copying the npm cache {} into the install's own cache…", cache.display());
    }
    let installer = NpmInstaller { sandbox: &sandbox, registry, deadline: INSTALL_DEADLINE, seed_cache };
    let installed = runtime.block_on(installer.install(plugin, command, definition.confinement));
    let installed = installed.map_err(|error| match error {
        InstallError::Registry { .. } | InstallError::Command(_) => Failure::usage(error.to_string()),
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

fn host_failure(message: String) -> Failure {
    Failure { message, exit_code: 3 }
}

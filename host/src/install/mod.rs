//! npx plugins, installed by the host: at `plugin add`, npm fetches the package the npx
//! command names (scripts off, in the plugin's own sandbox, as its uid), and the host seals
//! the result read-only in the plugin's folder and records its version and integrity. Each
//! start runs the package's program with `node`, offline, from that install: no npx, no
//! cache a plugin could write, no registry needed (the seeds' container deployment).
//!
//! [`npx`] reads the command line, [`package`] what the install left; both pure. The
//! install itself is [`NpmInstaller::install`], made under a plugin's install lock by
//! [`Installs`].

mod installs;
pub mod npx;
pub mod package;

pub use installs::{Installs, npx_command};

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::sandbox::install_dir::{InstallDirError, STAGED_PACKAGE_FOLDER};
use crate::sandbox::{Confinement, Sandbox, SandboxError};
use crate::transport::process::{CommandAllowlist, ProcessError, ProcessSpec, run_to_completion};
use npx::NpxCommand;
use package::InstalledPackage;

/// npm's public registry, where the seeds' packages are.
pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org/";
/// How long an install may take before it is stopped.
pub const INSTALL_DEADLINE: Duration = Duration::from_secs(600);
/// npm's cache, in the staging folder: private to this install, removed with it.
const CACHE_FOLDER: &str = ".npm";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Command(String),
    #[error("the npm registry {url:?} is not usable: {why}")]
    Registry { url: String, why: String },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("npm could not install {package} from {registry}: it {outcome}; nothing was installed. npm said:\n{said}")]
    Npm { package: String, registry: String, outcome: String, said: String },
    #[error(transparent)]
    Seal(#[from] InstallDirError),
    #[error("{package}: {why}; nothing was installed")]
    Package { package: String, why: String },
}

/// Checks a registry URL: http or https, no credentials in it (they would show in the
/// process list), no query. Returns it with a trailing `/`.
pub fn registry_url(url: &str) -> Result<String, InstallError> {
    let refused = |why: &str| InstallError::Registry { url: url.to_owned(), why: why.to_owned() };
    let uri: http::Uri = url.parse().map_err(|_| refused("it is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(refused("it must start with http:// or https://"));
    }
    let authority = uri.authority().ok_or_else(|| refused("it names no host"))?;
    if authority.as_str().contains('@') {
        return Err(refused(
            "credentials in the URL would be on npm's command line; a registry that needs them is not supported yet",
        ));
    }
    if uri.query().is_some() {
        return Err(refused("it has a query"));
    }
    Ok(if url.ends_with('/') { url.to_owned() } else { format!("{url}/") })
}

/// Installs npx plugins' packages with npm, in their sandboxes.
pub struct NpmInstaller<'a> {
    pub sandbox: &'a Sandbox,
    /// Checked by [`registry_url`].
    pub registry: String,
    pub deadline: Duration,
    /// An operator's warmed npm cache (`~/.npm`, as the seeds' `npx … --version` at image
    /// build leaves it): copied into the install's own cache, and npm told to prefer it to
    /// the registry, so an install needs no network for what it holds.
    pub seed_cache: Option<PathBuf>,
}

/// The cache folder inside an npm cache directory.
const CACACHE: &str = "_cacache";

impl NpmInstaller<'_> {
    /// Fetches and installs the package `command` names for `plugin`, replacing the last
    /// install only once the new one is complete and checked.
    pub async fn install(
        &self,
        plugin: &str,
        command: &NpxCommand,
        confinement: Confinement,
    ) -> Result<InstalledPackage, InstallError> {
        let spec = &command.package;
        let sandbox = self.sandbox.prepare_install(plugin, confinement)?;
        let staging = sandbox.data_dir().to_path_buf();
        if let Some(source) = &self.seed_cache {
            let seeded = sandbox.seed_cache(&Path::new(CACHE_FOLDER).join(CACACHE), source);
            let bytes = seeded.inspect_err(|_| self.discard(plugin))?;
            tracing::info!(plugin, "copied {bytes} bytes of the npm cache {}", source.display());
        }
        let prefix = staging.join(STAGED_PACKAGE_FOLDER).to_string_lossy().into_owned();
        let cache = staging.join(CACHE_FOLDER).to_string_lossy().into_owned();
        let mut args = vec![
            "install",
            "--prefix",
            &prefix,
            "--cache",
            &cache,
            "--registry",
            &self.registry,
            "--ignore-scripts",
            "--omit=dev",
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            // npm's defaults wait up to two minutes for a registry that refuses connections.
            "--fetch-retries=2",
            "--fetch-retry-mintimeout=1000",
            "--fetch-retry-maxtimeout=5000",
            "--loglevel=warn",
        ];
        if self.seed_cache.is_some() {
            args.push("--prefer-offline");
        }
        let package = spec.to_string();
        args.push(&package);
        let process = ProcessSpec {
            command: "npm".into(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            env: Vec::new(),
            sandbox,
            working_dir: Some(staging),
            memory_limit_bytes: None,
        };
        let allowlist = CommandAllowlist::default().allow("npm");
        let finished = run_to_completion(&process, &allowlist, plugin, self.deadline).await;
        let finished = finished.inspect_err(|_| self.discard(plugin))?;
        if !finished.success {
            self.discard(plugin);
            let said = if finished.stderr.trim().is_empty() { finished.stdout } else { finished.stderr };
            return Err(InstallError::Npm {
                package: spec.to_string(),
                registry: self.registry.clone(),
                outcome: finished.outcome,
                said: said.trim().to_owned(),
            });
        }
        let staged = self.sandbox.seal_staged_install(plugin).inspect_err(|_| self.discard(plugin))?;
        let installed = self.describe(command, &staged).inspect_err(|_| self.discard(plugin))?;
        self.sandbox.commit_staged_install(plugin)?;
        Ok(installed)
    }

    /// What was installed, checked: the package's own folder, its program a Node script
    /// inside it, the integrity npm verified. Links are not followed.
    fn describe(&self, command: &NpxCommand, staged: &Path) -> Result<InstalledPackage, InstallError> {
        let spec = &command.package;
        let refused = |why: String| InstallError::Package { package: spec.to_string(), why };
        let package_dir = Path::new("node_modules").join(&spec.name);
        let manifest = read_json(staged, &package_dir.join("package.json")).map_err(refused)?;
        let lock = read_json(staged, Path::new("package-lock.json")).map_err(refused)?;
        let bin = package::choose_bin(spec, &manifest).map_err(refused)?;
        let program = regular_file_within(staged, &package_dir.join(&bin)).map_err(refused)?;
        let mut head = Vec::new();
        let read = std::fs::File::open(&program)
            .and_then(|file| std::io::Read::read_to_end(&mut std::io::Read::take(file, 256), &mut head));
        read.map_err(|error| refused(format!("its program {bin} could not be read: {error}")))?;
        if !package::runs_with_node(&head) {
            return Err(refused(format!("its program {bin} is not a Node script; register it with `--no-install`")));
        }
        let version = manifest.get("version").and_then(|version| version.as_str()).unwrap_or_default();
        Ok(InstalledPackage {
            name: spec.name.clone(),
            requested: spec.to_string(),
            version: version.to_owned(),
            integrity: package::locked_integrity(spec, &lock).map_err(refused)?,
            bin,
            registry: self.registry.clone(),
            installed_at: chrono::Utc::now().timestamp(),
        })
    }

    fn discard(&self, plugin: &str) {
        self.sandbox.discard_staged_install(plugin);
    }
}

/// The command line that runs an installed package's program in place of `npx ARGS`:
/// `node PROGRAM [what npx would have passed it]`.
pub fn node_command(
    install: &InstalledPackage,
    install_dir: &Path,
    npx_args: &[String],
) -> Result<Vec<String>, String> {
    let command = NpxCommand::parse(npx_args)?;
    if command.package.name != install.name {
        return Err(format!(
            "the install is of {}, but the command names {}: run `plugin install` again",
            install.name, command.package.name
        ));
    }
    let mut args = vec![install.program(install_dir).to_string_lossy().into_owned()];
    args.extend(command.program_args);
    Ok(args)
}

/// `relative` under `base`, a regular file reached through real folders only.
fn regular_file_within(base: &Path, relative: &Path) -> Result<PathBuf, String> {
    let mut path = base.to_path_buf();
    for component in relative.components() {
        let Component::Normal(name) = component else {
            return Err(format!("{} leaves its folder", relative.display()));
        };
        path.push(name);
        let metadata = std::fs::symlink_metadata(&path).map_err(|error| format!("{}: {error}", relative.display()))?;
        if metadata.file_type().is_symlink() {
            return Err(format!("{} goes through a link, which the host does not follow", relative.display()));
        }
    }
    match std::fs::symlink_metadata(&path) {
        Ok(metadata) if metadata.is_file() => Ok(path),
        _ => Err(format!("{} is not a file", relative.display())),
    }
}

fn read_json(base: &Path, relative: &Path) -> Result<serde_json::Value, String> {
    let path = regular_file_within(base, relative)?;
    let text = std::fs::read_to_string(&path).map_err(|error| format!("{}: {error}", relative.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("{} is not JSON: {error}", relative.display()))
}

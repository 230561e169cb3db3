//! Confinement shared by both transports: where each instance's data lives and who owns
//! it ([`data_dir`]), and for process plugins the layers a plugin runs under ([`plan`]),
//! what it may touch ([`policy`]) and the launcher that applies it ([`confine`]).
//!
//! One place decides ([`Sandbox::prepare_process`]), one place applies (the launcher), and
//! what was applied is reported ([`plan::Plan::describe`]) in the log at every start and in
//! `plugin show`.

pub mod confine;
pub mod data_dir;
pub mod install_dir;
mod pid_namespace;
pub mod plan;
pub mod policy;
pub mod uids;

use std::collections::BTreeSet;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use data_dir::{DataDirError, Traversal};
pub use data_dir::{InstanceDir, Owner};
pub use plan::{Confinement, Layer, Machine, NotConfinable, Plan};
use policy::{ExposesHostFiles, FsRules, LaunchPolicy};
use uids::UidError;

/// The launcher's subcommand of the host's binary.
pub const LAUNCHER_SUBCOMMAND: &str = "sandbox-exec";
/// The host's binary, which is also the launcher.
pub const LAUNCHER_BINARY: &str = "codex-plugin-host";
/// The uid table's key of a plugin's installer, beside the plugin's own: no plugin id has
/// a `:`.
const INSTALLER_UID_SUFFIX: &str = ":install";
/// The uid table's key of a plugin under `check` (see [`SandboxConfig::check_uids_from`]).
const CHECK_UID_SUFFIX: &str = ":check";

/// How a host confines its plugins.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The launcher (the `codex-plugin-host` binary); by default this process's own binary,
    /// or one beside it (a test or a benchmark runs from `target/<profile>/deps`).
    pub launcher: Option<PathBuf>,
    /// Where plugins' uids come from, when the host runs as root.
    pub uid_range: Range<u32>,
    /// Layers the admin turned off.
    pub disabled: BTreeSet<Layer>,
    /// For `check`, whose data root is thrown away: the data directory whose uid table
    /// hands out the plugins' uids, under `<plugin>:check`, so a plugin under check never
    /// gets the uid (and so the files) of a plugin registered there.
    pub check_uids_from: Option<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self { launcher: None, uid_range: uids::DEFAULT_UID_RANGE, disabled: BTreeSet::new(), check_uids_from: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    NotConfinable(#[from] NotConfinable),
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Uid(#[from] UidError),
    #[error(transparent)]
    Exposes(#[from] ExposesHostFiles),
    #[error(
        "the plugin's uid {uid} cannot reach its data directory: {blocking} is not searchable by other users; give it o+x (`chmod o+x {blocking}`) or use a data directory outside private folders such as /root"
    )]
    Unreachable { uid: u32, blocking: String },
    #[error(
        "the sandbox launcher was not found (looked for {looked_for}); install `codex-plugin-host` beside this program or set the launcher's path in the host's sandbox settings"
    )]
    NoLauncher { looked_for: String },
}

/// The confinement of one host: its settings, what the machine offers, and the files a
/// plugin must never reach.
#[derive(Debug, Clone)]
pub struct Sandbox {
    config: SandboxConfig,
    machine: Machine,
    data_root: PathBuf,
    protected: Vec<PathBuf>,
}

/// A process plugin's sandbox, decided: the layers, its directory, its uid.
#[derive(Debug)]
pub struct ProcessSandbox {
    plan: Plan,
    uid: Option<u32>,
    data_dir: InstanceDir,
    launcher: PathBuf,
    protected: Vec<PathBuf>,
    /// The package the host installed for it, which it may read and run.
    installed: Option<PathBuf>,
    /// No network at all for the plugin (`check` runs plugins this way).
    deny_network: bool,
}

/// What [`Sandbox::decide`] decided for a plugin.
struct Decided {
    plan: Plan,
    launcher: PathBuf,
    uid: Option<u32>,
    owner: Owner,
}

impl Sandbox {
    /// The sandbox of a host whose data (database, plugin directories) is in `data_root`.
    /// `protected` adds files a plugin must never read (the vault's key file).
    pub fn new(config: SandboxConfig, data_root: &Path, protected: Vec<PathBuf>) -> Self {
        let machine = Machine { landlock_abi: confine::landlock_abi(), root: nix::unistd::Uid::effective().is_root() };
        let mut protected = protected;
        protected.push(data_root.to_path_buf());
        Self { config, machine, data_root: data_root.to_path_buf(), protected }
    }

    pub fn machine(&self) -> Machine {
        self.machine
    }

    /// The host's data directory.
    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    /// The layers a plugin of `confinement` would get here, or why it would not start.
    pub fn plan(&self, confinement: Confinement) -> Result<Plan, NotConfinable> {
        plan::plan(confinement, self.machine, &self.config.disabled)
    }

    /// Whether plugins may run as uids of their own here, so the folders above their
    /// directories must let them pass.
    fn traversal(&self) -> Traversal {
        if self.machine.root && !self.config.disabled.contains(&Layer::SeparateUid) {
            Traversal::PassThrough
        } else {
            Traversal::HostOnly
        }
    }

    /// A wasm instance's directory: owned by the host, opened without following links.
    pub fn wasm_dir(&self, plugin: &str, user: Option<&str>) -> Result<InstanceDir, SandboxError> {
        Ok(data_dir::open_instance_dir(&self.data_root, plugin, user, Owner::HOST, self.traversal())?)
    }

    /// Decides a process plugin's layers and prepares its directory, owned by its own uid
    /// when it gets one.
    pub fn prepare_process(
        &self,
        plugin: &str,
        user: Option<&str>,
        confinement: Confinement,
    ) -> Result<ProcessSandbox, SandboxError> {
        let decided = self.decide(plugin, plugin, confinement)?;
        let data_dir = data_dir::open_instance_dir(&self.data_root, plugin, user, decided.owner, self.traversal())?;
        self.process_sandbox(decided, data_dir)
    }

    /// The sandbox an install of the plugin's package runs in: the plugin's layers (never
    /// unconfined: the package is not trusted yet), a fresh staging folder for its only
    /// writable directory (see [`install_dir`]), and under a root host a uid of the
    /// installer's own, so no running instance of the plugin (its uid, perhaps without
    /// Landlock) can touch what npm writes before the host seals it.
    pub fn prepare_install(&self, plugin: &str, confinement: Confinement) -> Result<ProcessSandbox, SandboxError> {
        let confinement = match confinement {
            Confinement::Unconfined => Confinement::Required,
            other => other,
        };
        let decided = self.decide(plugin, &format!("{plugin}{INSTALLER_UID_SUFFIX}"), confinement)?;
        let staging = install_dir::fresh_staging_dir(&self.data_root, plugin, decided.owner, self.traversal())?;
        self.process_sandbox(decided, staging)
    }

    /// Seals what an install staged (see [`install_dir::seal_staged`]); returns its path.
    pub fn seal_staged_install(&self, plugin: &str) -> Result<PathBuf, install_dir::InstallDirError> {
        install_dir::seal_staged(&self.data_root, plugin, self.traversal())
    }

    /// Puts a sealed install in place of the plugin's last one.
    pub fn commit_staged_install(&self, plugin: &str) -> Result<PathBuf, install_dir::InstallDirError> {
        install_dir::commit_staged(&self.data_root, plugin, self.traversal())
    }

    /// Takes the plugin's install lock: held from the start of an install to its
    /// registration, it makes a second install of the same plugin wait.
    pub fn lock_installs(&self, plugin: &str) -> Result<install_dir::InstallLock, SandboxError> {
        Ok(install_dir::lock_installs(&self.data_root, plugin, self.traversal())?)
    }

    /// Removes the plugin's install, whose registration failed (the lock held).
    pub fn remove_install(&self, plugin: &str) {
        if let Err(error) = install_dir::remove_install(&self.data_root, plugin, self.traversal()) {
            tracing::warn!(plugin, "could not remove an install nobody registered: {error}");
        }
    }

    /// Throws away an install that failed; the one in place is kept.
    pub fn discard_staged_install(&self, plugin: &str) {
        if let Err(error) = install_dir::discard_staged(&self.data_root, plugin, self.traversal()) {
            tracing::warn!(plugin, "could not remove a failed install's staging folder: {error}");
        }
    }

    /// The plugin's install, checked to be the host's all the way from the data root, so
    /// it may be opened to the plugin; `None` when the host installed nothing for it.
    pub fn installed(&self, plugin: &str) -> Result<Option<PathBuf>, SandboxError> {
        Ok(install_dir::open_install_dir(&self.data_root, plugin, self.traversal())?)
    }

    /// The plugin's layers, the uid it runs as (the one `uid_key` has in the uid table) and
    /// who owns its directories.
    fn decide(&self, plugin: &str, uid_key: &str, confinement: Confinement) -> Result<Decided, SandboxError> {
        let plan = plan::plan(confinement, self.machine, &self.config.disabled)?;
        let launcher = self.launcher()?;
        let plugins_dir = data_dir::ensure_plugins_folder(&self.data_root, self.traversal())?;
        let uid = match (plan.separate_uid, &self.config.check_uids_from) {
            (true, None) => Some(uids::plugin_uid(&plugins_dir, uid_key, &self.config.uid_range)?),
            (true, Some(data_root)) => {
                let table = data_dir::ensure_plugins_folder(data_root, self.traversal())?;
                let key = format!("{uid_key}{CHECK_UID_SUFFIX}");
                Some(uids::plugin_uid(&table, &key, &self.config.uid_range)?)
            }
            (false, _) => None,
        };
        let owner = match uid {
            Some(uid) => Owner::Plugin(uid),
            None => Owner::Host { formerly: uids::recorded_uid(&plugins_dir, plugin) },
        };
        if !plan.confines() {
            tracing::warn!(
                plugin,
                "plugin `{plugin}` runs UNCONFINED, as the host's user: it can read the host's database, key file and environment; its admin chose this"
            );
        }
        Ok(Decided { plan, launcher, uid, owner })
    }

    fn process_sandbox(&self, decided: Decided, data_dir: InstanceDir) -> Result<ProcessSandbox, SandboxError> {
        if let Some(uid) = decided.uid {
            check_reachable(data_dir.path(), uid)?;
        }
        let Decided { plan, launcher, uid, .. } = decided;
        Ok(ProcessSandbox {
            plan,
            uid,
            data_dir,
            launcher,
            protected: self.protected.clone(),
            installed: None,
            deny_network: false,
        })
    }

    fn launcher(&self) -> Result<PathBuf, SandboxError> {
        if let Some(launcher) = &self.config.launcher {
            return Ok(launcher.clone());
        }
        let current =
            std::env::current_exe().map_err(|error| SandboxError::NoLauncher { looked_for: error.to_string() })?;
        if current.file_name().is_some_and(|name| name == LAUNCHER_BINARY) {
            return Ok(current);
        }
        let candidates: Vec<PathBuf> =
            current.ancestors().skip(1).take(2).map(|dir| dir.join(LAUNCHER_BINARY)).collect();
        candidates.iter().find(|candidate| candidate.is_file()).cloned().ok_or_else(|| SandboxError::NoLauncher {
            looked_for: candidates.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", "),
        })
    }
}

/// Every folder above `dir` must let other users pass for `uid` to reach it by path.
fn check_reachable(dir: &Path, uid: u32) -> Result<(), SandboxError> {
    for ancestor in dir.ancestors().skip(1) {
        let Ok(metadata) = std::fs::metadata(ancestor) else { continue };
        if metadata.permissions().mode() & 0o001 == 0 {
            return Err(SandboxError::Unreachable { uid, blocking: ancestor.display().to_string() });
        }
    }
    Ok(())
}

impl ProcessSandbox {
    /// The layers it runs under.
    pub fn plan(&self) -> Plan {
        self.plan
    }

    /// The plugin's data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The plugin's private temporary directory, made by the launcher.
    pub fn temp_dir(&self) -> PathBuf {
        self.data_dir.path().join("tmp")
    }

    /// Lets the plugin read and run the package the host installed for it (a path from
    /// [`Sandbox::installed`], checked there).
    pub fn with_installed(mut self, install_dir: PathBuf) -> Self {
        self.installed = Some(install_dir);
        self
    }

    /// Takes the network away from the plugin: a network namespace of its own (only a
    /// loopback that is down) on a root host, Landlock's TCP rules (no connection, no bind)
    /// otherwise. The launcher refuses to start the plugin when neither applies.
    pub fn without_network(mut self) -> Self {
        self.deny_network = true;
        self
    }

    /// Copies an operator's npm cache into this install sandbox's private folder, at
    /// `folder` (see [`install_dir::seed_cache`]); returns the bytes copied.
    pub fn seed_cache(&self, folder: &Path, source: &Path) -> Result<u64, install_dir::InstallDirError> {
        install_dir::seed_cache(&self.data_dir, folder, source, self.uid)
    }

    /// The uid the plugin runs as, when not the host's.
    pub fn uid(&self) -> Option<u32> {
        self.uid
    }

    pub fn launcher(&self) -> &Path {
        &self.launcher
    }

    /// The launcher's instructions for running `program` with `args` from `working_dir`.
    pub fn launch_policy(
        &self,
        program: &Path,
        args: &[String],
        working_dir: &Path,
        memory_limit_bytes: Option<u64>,
    ) -> Result<LaunchPolicy, SandboxError> {
        let landlock = match self.plan.landlock_abi {
            Some(_) => Some(policy::fs_rules(
                program,
                args,
                working_dir,
                self.data_dir(),
                self.installed.as_deref(),
                &self.protected,
            )?),
            None => None::<FsRules>,
        };
        Ok(LaunchPolicy {
            program: program.to_path_buf(),
            args: args.to_vec(),
            working_dir: working_dir.to_path_buf(),
            data_dir: self.data_dir().to_path_buf(),
            uid: self.uid,
            // Without a uid of its own, a root plugin could leave its network namespace with
            // CAP_SYS_ADMIN (setns): a plugin denied the network keeps no capability either.
            drop_capabilities: self.uid.is_none()
                && (self.plan.confines() || self.deny_network)
                && nix::unistd::Uid::effective().is_root(),
            landlock,
            memory_limit_bytes,
            host_pid: std::process::id() as i32,
            deny_network: self.deny_network,
        })
    }
}

/// How a plugin run without network is kept from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkIsolation {
    /// A network namespace of its own: no interface but a loopback that is down.
    Namespace,
    /// Landlock: no TCP connection and no TCP bind (UDP is not covered).
    LandlockTcp,
}

impl NetworkIsolation {
    /// How a plugin started by this process is kept from the network: what the launcher
    /// applies (it refuses to start the plugin when it cannot).
    pub fn on_this_host() -> Self {
        if nix::unistd::Uid::effective().is_root() { Self::Namespace } else { Self::LandlockTcp }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Namespace => "a network namespace of its own (no interface up)",
            Self::LandlockTcp => "Landlock (no TCP connection or bind; UDP is not covered)",
        }
    }
}

/// Makes this process undumpable: a process of the same user without `CAP_SYS_PTRACE` can
/// then neither read its memory nor its `/proc/<pid>/environ`. Called before the host
/// starts any plugin.
pub fn protect_host_process() {
    if let Err(error) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!("could not make the host undumpable: {error}");
    }
}

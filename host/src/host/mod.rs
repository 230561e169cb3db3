//! The library API for an embedding server: a host of registered plugins, each started on
//! first use, supervised, and stopped cleanly.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use codex_plugin_host::host::{HostConfig, PluginHost};
//! use codex_plugin_host::registry::{Launch, PluginDefinition};
//! use codex_plugin_host::plugin::PluginId;
//!
//! let host = PluginHost::open(HostConfig::new("/var/lib/codex/plugins"))?;
//! let definition = PluginDefinition::new(Launch::Wasm { file: "/opt/plugins/echo.wasm".into() });
//! host.registry().add(&PluginId::new("echo")?, &definition)?;
//! let found = host.call("echo", None, "metadata/series/search", serde_json::json!({"query": "dune"})).await?;
//! println!("{found}");
//! host.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod admin_changes;
pub mod capacity;
mod instance_requests;
mod launcher;

pub use instance_requests::{MANIFEST_WAIT, ReleaseService};

use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::limits::quota::Sweeper;
use crate::limits::{StorageLimits, StorageQuota};
use crate::metrics::{Metrics, PluginMetrics};
use crate::plugin::PluginError;
use crate::registry::{Registry, RegistryError};
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::storage::SqliteStorage;
use crate::supervisor::{HealthPolicy, HealthState, Session, Supervisor};
use crate::transport::ShutdownPolicy;
use crate::transport::process::CommandAllowlist;
use crate::transport::wasm::LoadedComponents;
use crate::vault::{EncryptionKey, Vault, VaultError};
use admin_changes::AdminWatch;
use capacity::Capacity;
pub use launcher::Detached;
use launcher::{Layout, RegistryLauncher};

/// The database file in the data directory: storage and registry.
pub const DATABASE_FILE: &str = "codex-plugin-host.sqlite3";
/// Process instances of one plugin at once unless told otherwise.
pub const DEFAULT_PROCESS_INSTANCES_PER_PLUGIN: u32 = 32;
/// Compiled components, in the data directory.
pub const WASM_CACHE_DIR: &str = "wasm-cache";

/// How a host is set up. [`HostConfig::new`] gives the protocol's defaults.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The database, plugin data directories and the component cache live here.
    pub data_dir: PathBuf,
    /// The vault key's file; when `None`, `CODEX_ENCRYPTION_KEY`. Without either, plugins
    /// with credentials do not start, and the error says why.
    pub key_file: Option<PathBuf>,
    pub allowlist: CommandAllowlist,
    pub health: HealthPolicy,
    pub storage_limits: StorageLimits,
    pub shutdown: ShutdownPolicy,
    /// How often the host looks for admin changes made by another process (the
    /// command-line tool): a changed plugin's instances restart on their next call.
    pub admin_changes_interval: Duration,
    /// How process plugins are confined.
    pub sandbox: SandboxConfig,
    /// Wasm instances held at once; `None`: what the machine allows, at most 1,000
    /// ([`capacity::default_wasm_capacity`]).
    pub wasm_capacity: Option<u32>,
    /// How long a start waits for a place when every instance is busy, before it is
    /// refused as "at capacity".
    pub capacity_wait: Duration,
    /// The linear memory every wasm instance has room for (its pool slot); `None`: the
    /// largest limit registered when the first wasm plugin starts, at least 64 MiB. A
    /// plugin registered later with a larger limit needs a restart of the host.
    pub wasm_max_memory_bytes: Option<u64>,
    /// Process instances one plugin may have at once, its users' included: a Node plugin
    /// with 500 users is not 500 resident Node processes. Idle ones are evicted to make room.
    pub process_instances_per_plugin: u32,
}

impl HostConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            key_file: None,
            allowlist: CommandAllowlist::default(),
            health: HealthPolicy::default(),
            storage_limits: StorageLimits::default(),
            shutdown: ShutdownPolicy::default(),
            admin_changes_interval: Duration::from_secs(2),
            sandbox: SandboxConfig::default(),
            wasm_capacity: None,
            capacity_wait: Duration::from_secs(5),
            process_instances_per_plugin: DEFAULT_PROCESS_INSTANCES_PER_PLUGIN,
            wasm_max_memory_bytes: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("could not create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Asked before a user's instance of a plugin starts: a chance to make their credentials
/// usable (an OAuth token refreshed). An error stops the start, with its message.
pub trait BeforeUserStart: Send + Sync {
    fn before_user_start<'a>(
        &'a self,
        plugin: &'a str,
        user: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), String>>;
}

pub(crate) type BeforeUserStartSlot = Arc<std::sync::RwLock<Option<Arc<dyn BeforeUserStart>>>>;

/// Registered plugins, started on first use and kept healthy.
pub struct PluginHost {
    data_dir: PathBuf,
    components: Arc<LoadedComponents>,
    wasm_capacity: Capacity,
    registry: Arc<Registry>,
    vault: Option<Vault>,
    supervisor: Arc<Supervisor>,
    admin_watch: AdminWatch,
    before_user_start: BeforeUserStartSlot,
    release_service: instance_requests::ReleaseServiceSlot,
    launcher: Arc<RegistryLauncher>,
    _sweeper: Sweeper,
}

/// Deletes a removed plugin's data directory (its users' directories are inside it).
pub fn remove_plugin_files(data_dir: &std::path::Path, plugin: &str) {
    let dir = data_dir.join("plugins").join(plugin);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(plugin, "could not delete {}: {error}", dir.display()),
    }
}

/// Creates the host's data directory, only its owner may enter it (0700; the sandbox
/// opens it to other users for passing through, 0711, when plugins run as their own uids).
pub fn create_private_dir(dir: &std::path::Path) -> Result<(), HostError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let created = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
    created.map_err(|source| HostError::DataDir { path: dir.display().to_string(), source })
}

/// How often expired storage keys are deleted.
const SWEEP_INTERVAL: Duration = Duration::from_secs(600);

impl PluginHost {
    /// Opens the host's database in `config.data_dir` (creating it) and reads the vault
    /// key. A key that is given but malformed is an error; a missing key is not, until a
    /// plugin with credentials starts. Must be called inside a tokio runtime.
    pub fn open(config: HostConfig) -> Result<Self, HostError> {
        crate::sandbox::protect_host_process();
        crate::limits::open_files::raise_to_hard_limit();
        let data_dir = &config.data_dir;
        create_private_dir(data_dir)?;
        let database = data_dir.join(DATABASE_FILE);
        let quota = StorageQuota::new(Arc::new(SqliteStorage::open(&database)?), config.storage_limits);
        let registry = Arc::new(Registry::open(&database)?);
        let vault = match EncryptionKey::from_environment(config.key_file.as_deref()) {
            Ok(key) => Some(Vault::new(key)),
            Err(VaultError::MissingKey) => None,
            Err(error) => return Err(error.into()),
        };
        let protected = config.key_file.iter().cloned().collect();
        let sandbox = Sandbox::new(config.sandbox, data_dir, protected);
        let launcher = RegistryLauncher {
            registry: registry.clone(),
            vault: vault.clone(),
            quota: quota.clone(),
            allowlist: config.allowlist,
            shutdown: config.shutdown,
            layout: Layout { sandbox, wasm_cache_dir: data_dir.join(WASM_CACHE_DIR) },
            wasm: OnceLock::new(),
            components: Arc::default(),
            wasm_capacity: Capacity::new(config.wasm_capacity.unwrap_or_else(capacity::default_wasm_capacity)),
            capacity_wait: config.capacity_wait,
            process_cap: config.process_instances_per_plugin.max(1),
            wasm_max_memory_bytes: config.wasm_max_memory_bytes,
            process_capacity: Default::default(),
            evictor: OnceLock::new(),
            before_user_start: BeforeUserStartSlot::default(),
            release_service: Default::default(),
        };
        let before_user_start = launcher.before_user_start.clone();
        let release_service = launcher.release_service.clone();
        let components = launcher.components.clone();
        let wasm_capacity = launcher.wasm_capacity.clone();
        let launcher = Arc::new(launcher);
        let supervisor = Arc::new(Supervisor::new(launcher.clone(), config.health, Arc::new(Metrics::default())));
        let _ = launcher.evictor.set(Arc::downgrade(&supervisor));
        let admin_watch =
            AdminWatch::spawn(registry.clone(), Arc::downgrade(&supervisor), config.admin_changes_interval);
        Ok(Self {
            data_dir: data_dir.clone(),
            components,
            wasm_capacity,
            registry,
            vault,
            supervisor,
            admin_watch,
            before_user_start,
            release_service,
            launcher,
            _sweeper: quota.spawn_sweeper(SWEEP_INTERVAL),
        })
    }

    /// Starts the registered `plugin` apart from this host's instances (for `check`): see
    /// [`Detached`]. Its health, metrics and capacity are not the host's.
    pub async fn start_detached(
        &self,
        plugin: &str,
        detached: Detached<'_>,
    ) -> Result<crate::plugin::Plugin, PluginError> {
        self.launcher.start_detached(plugin, detached).await
    }

    /// Restarts `user`'s instance of `plugin` (once its sessions end): its next call starts
    /// one with what the registry holds now (a refreshed token).
    pub async fn restart_user(&self, plugin: &str, user: &str) {
        self.supervisor.restart_user(plugin, user).await;
    }

    /// Sets what is asked before each user's instance starts (the last one set).
    pub fn set_before_user_start(&self, hook: Arc<dyn BeforeUserStart>) {
        *self.before_user_start.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(hook);
    }

    /// Sets what serves release sources' `releases/*` requests (the last one set; held
    /// weakly, so it must be kept alive by its owner).
    pub fn set_release_service(&self, service: std::sync::Weak<dyn ReleaseService>) {
        *self.release_service.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(service);
    }

    /// Wasm instances this host may hold at once, and how many it holds now.
    pub fn wasm_capacity(&self) -> (u32, u32) {
        (self.wasm_capacity.total(), self.wasm_capacity.in_use())
    }

    /// How many components this host loaded from the disk cache or compiled: one per
    /// content of a `.wasm`, however many instances and users share it.
    pub fn component_loads(&self) -> u64 {
        self.components.loads()
    }

    /// The host's database file (registry, storage, library).
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The vault, when a key was found.
    pub fn vault(&self) -> Result<&Vault, VaultError> {
        self.vault.as_ref().ok_or(VaultError::MissingKey)
    }

    /// Calls `method` on the registered plugin `plugin`, as `user` when given (the user
    /// must be connected to it), with the plugin's timeout.
    pub async fn call(
        &self,
        plugin: &str,
        user: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, PluginError> {
        self.supervisor.call(plugin, user, method, params, None).await
    }

    /// A session on the instance of `plugin` for `user`: a job that needs one instance
    /// across several calls (a sync: `getUserInfo`, every pull page, every push batch)
    /// holds it, so the instance is not evicted nor stopped for idleness meanwhile, and an
    /// admin's change restarts it only after the session ends (see [`Session`]).
    pub fn session(&self, plugin: &str, user: Option<&str>) -> Session<'_> {
        self.supervisor.session(plugin, user)
    }

    /// [`PluginHost::call`] with a deadline of its own.
    pub async fn call_with_timeout(
        &self,
        plugin: &str,
        user: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, PluginError> {
        self.supervisor.call(plugin, user, method, params, Some(timeout)).await
    }

    /// [`PluginHost::call_with_timeout`] when a deadline is given, else [`PluginHost::call`].
    pub async fn call_with_deadline(
        &self,
        plugin: &str,
        user: Option<&str>,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, PluginError> {
        self.supervisor.call(plugin, user, method, params, timeout).await
    }

    /// The plugin's health in this host; a plugin disabled in the registry shows as such.
    pub fn health(&self, plugin: &str) -> Result<HealthState, RegistryError> {
        let record = self.registry.get(plugin)?;
        if !record.enabled {
            let reason = record.disabled_reason.unwrap_or_else(|| "disabled by an admin".into());
            return Ok(HealthState::Disabled(crate::supervisor::Disabled {
                reason,
                recent_faults: record.recent_faults,
            }));
        }
        Ok(self.supervisor.health(plugin))
    }

    /// Instance tasks running in this host: one for each plugin, and each user's connection
    /// to one, called since it was last stopped. A call for an unregistered plugin or an
    /// unconnected user leaves none.
    pub fn instance_tasks(&self) -> usize {
        self.supervisor.instance_tasks()
    }

    /// The plugin's call counts: those of earlier hosts, kept in the registry, plus this
    /// host's.
    pub fn metrics(&self, plugin: &str) -> Result<PluginMetrics, RegistryError> {
        let stored = self.registry.get(plugin)?.metrics;
        let mut metrics: PluginMetrics = serde_json::from_value(stored).unwrap_or_default();
        metrics.merge(&self.supervisor.metrics().plugin(plugin));
        Ok(metrics)
    }

    /// Replaces the plugin's admin configuration; its running instances stop (a session's
    /// once it ends, see [`PluginHost::session`]), and the next call starts one with the new
    /// configuration.
    pub async fn configure(
        &self,
        plugin: &str,
        admin_config: serde_json::Map<String, Value>,
    ) -> Result<(), RegistryError> {
        self.registry.set_admin_config(plugin, admin_config)?;
        self.supervisor.restart_plugin(plugin).await;
        Ok(())
    }

    /// Enables the plugin again and forgets its faults.
    pub async fn reset(&self, plugin: &str) -> Result<(), RegistryError> {
        self.registry.set_enabled(plugin, true)?;
        self.supervisor.reset(plugin);
        Ok(())
    }

    /// Disables the plugin by an admin's hand, stopping its instances.
    pub async fn disable(&self, plugin: &str) -> Result<(), RegistryError> {
        self.registry.set_enabled(plugin, false)?;
        self.supervisor.stop_plugin(plugin).await;
        Ok(())
    }

    /// Removes the plugin, with its users, credentials, storage and data directory, and
    /// stops its instances (removed first, so no call can start it again meanwhile).
    pub async fn remove(&self, plugin: &str) -> Result<(), RegistryError> {
        self.registry.remove(plugin)?;
        self.supervisor.stop_plugin(plugin).await;
        remove_plugin_files(&self.data_dir, plugin);
        Ok(())
    }

    /// An admin's test of the plugin: its instances stop (once their sessions end), a new
    /// one starts and is initialized, answers `ping`, and stops. Answers how long the start
    /// and the ping took; the manifest it gave is in the registry.
    pub async fn test(&self, plugin: &str) -> Result<Duration, PluginError> {
        self.registry.get(plugin).map_err(|error| PluginError::NotRegistered {
            plugin: plugin.to_owned(),
            user: None,
            why: error.to_string(),
        })?;
        self.supervisor.restart_plugin(plugin).await;
        let started = std::time::Instant::now();
        let answered = self.supervisor.call(plugin, None, "ping", Value::Null, None).await;
        let took = started.elapsed();
        self.supervisor.stop_plugin(plugin).await;
        answered.map(|_| took)
    }

    /// Stops every plugin gracefully and keeps this host's call counts in the registry.
    pub async fn shutdown(self) {
        drop(self.admin_watch);
        self.supervisor.shutdown().await;
        for (plugin, counts) in self.supervisor.metrics().take() {
            let Ok(record) = self.registry.get(&plugin) else { continue };
            let mut merged: PluginMetrics = serde_json::from_value(record.metrics).unwrap_or_default();
            merged.merge(&counts);
            let json = serde_json::to_value(&merged).expect("metrics serialize");
            if let Err(error) = self.registry.record_metrics(&plugin, &json) {
                tracing::warn!(plugin, "could not keep the call counts: {error}");
            }
        }
    }
}

//! Starts registered plugins: what the registry says, with the vault's credentials, on the
//! transport the plugin was registered for.

use futures::future::BoxFuture;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use super::BeforeUserStartSlot;
use super::capacity::{Capacity, Place};
use super::instance_requests::{InstanceRequests, ReleaseServiceSlot, release_service};
use crate::install::npx;
use crate::limits::{StorageQuota, Timeouts};
use crate::plugin::{Plugin, PluginError, PluginId, PluginSettings};
use crate::protocol::types::initialize::InitializeParams;
use crate::registry::{CredentialDelivery, InstanceRevision, Launch, PluginRecord, Registry, RegistryError, Revision};
use crate::sandbox::Sandbox;
use crate::storage::StorageScope;
use crate::storage::handler::StorageHandler;
use crate::supervisor::{Disabled, LaunchOutcome, Launcher, Supervisor};
use crate::transport::process::{self, CommandAllowlist, ProcessSpec};
use crate::transport::wasm::http::HttpPolicy;
use crate::transport::wasm::{self, ComponentCache, LoadedComponents, WasmRuntime, WasmSpec};
use crate::transport::{Launched, LineTap, ShutdownPolicy};
use crate::vault::{Secret, Vault, VaultError};

/// Where plugin data and compiled components live, and how plugins are confined.
pub(super) struct Layout {
    pub sandbox: Sandbox,
    pub wasm_cache_dir: PathBuf,
}

pub(super) struct RegistryLauncher {
    pub registry: Arc<Registry>,
    pub vault: Option<Vault>,
    pub quota: Arc<StorageQuota>,
    pub allowlist: CommandAllowlist,
    pub shutdown: ShutdownPolicy,
    pub layout: Layout,
    /// Made on the first wasm plugin's start.
    pub wasm: OnceLock<Result<(WasmRuntime, ComponentCache), String>>,
    /// Every component loaded, kept for the next start.
    pub components: Arc<LoadedComponents>,
    /// The wasm instances this host admits at once; the pool has a few slots more.
    pub wasm_capacity: Capacity,
    /// The memory every wasm instance has room for, when the host was told.
    pub wasm_max_memory_bytes: Option<u64>,
    /// The process instances one plugin may have at once (its users' and its own).
    pub process_cap: u32,
    /// Each plugin's process places, made on its first process start.
    pub process_capacity: Mutex<FxHashMap<String, Capacity>>,
    /// How long a start waits for a place while every instance is busy.
    pub capacity_wait: Duration,
    /// Stops idle instances to make room; set once the supervisor exists.
    pub evictor: OnceLock<Weak<Supervisor>>,
    /// Asked before a user's instance starts (their OAuth token refreshed if due).
    pub before_user_start: BeforeUserStartSlot,
    /// Serves release sources' requests, once a release tracker runs.
    pub release_service: ReleaseServiceSlot,
}

impl Launcher for RegistryLauncher {
    fn launch<'a>(&'a self, plugin: &'a str, user: Option<&'a str>) -> BoxFuture<'a, LaunchOutcome> {
        Box::pin(async move {
            let mut revision = None;
            let started = self.start(plugin, user, &mut revision).await;
            LaunchOutcome { started, revision }
        })
    }

    fn record_disabled(&self, plugin: &str, disabled: &Disabled) -> Option<Revision> {
        if let Err(error) = self.registry.record_disabled(plugin, &disabled.reason, &disabled.recent_faults) {
            tracing::error!(plugin, "could not record that the plugin was disabled: {error}");
        }
        self.registry.get(plugin).ok().map(|record| record.revision)
    }
}

/// A registry error on looking up what to start: an unknown plugin or user, or a failure
/// to read what is registered.
fn not_registered(error: RegistryError, plugin: &str, user: Option<&str>) -> PluginError {
    let why = error.to_string();
    match error {
        RegistryError::NotRegistered(_) => PluginError::NotRegistered { plugin: plugin.to_owned(), user: None, why },
        RegistryError::NotConnected { .. } => {
            PluginError::NotRegistered { plugin: plugin.to_owned(), user: user.map(str::to_owned), why }
        }
        _ => PluginError::Launch { plugin: plugin.to_owned(), why },
    }
}

impl RegistryLauncher {
    /// Starts the plugin as registered; `revision` tells what was read, once it was.
    async fn start(
        &self,
        plugin: &str,
        user: Option<&str>,
        revision: &mut Option<InstanceRevision>,
    ) -> Result<Plugin, PluginError> {
        if let Some(user) = user {
            let hook = self.before_user_start.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            if let Some(hook) = hook {
                hook.before_user_start(plugin, user)
                    .await
                    .map_err(|why| PluginError::Launch { plugin: plugin.to_owned(), why })?;
            }
        }
        let record = self.registry.get(plugin).map_err(|error| not_registered(error, plugin, None))?;
        if !record.enabled {
            let reason = record.disabled_reason.clone().unwrap_or_else(|| "disabled by an admin".into());
            return Err(PluginError::Disabled { plugin: plugin.to_owned(), reason });
        }
        let connection = match user {
            Some(user) => Some(
                self.registry
                    .user_connection(plugin, user)
                    .map_err(|error| not_registered(error, plugin, Some(user)))?,
            ),
            None => None,
        };
        *revision = Some(InstanceRevision {
            plugin: record.revision,
            user: connection.as_ref().map(|connection| connection.revision),
        });
        let user_config = connection.map(|connection| connection.config).unwrap_or_default();
        let credentials = self.credentials(plugin, user)?;
        let scope = match user {
            Some(user) => StorageScope::user_plugin(&format!("{plugin}:{user}")),
            None => StorageScope::plugin(plugin),
        };
        let mut settings = self.settings(&record, user, user_config, &credentials, &self.layout.sandbox);
        settings.shutdown = self.shutdown;
        let id = record.id.clone();
        let spawn_in = SpawnIn {
            sandbox: &self.layout.sandbox,
            take_place: true,
            deny_network: false,
            stderr_tap: None,
            request_deadline: None,
        };
        let (launched, place) = self.spawn(&record, &id, user, &credentials, spawn_in).await?;
        let (manifest_sender, manifest) = tokio::sync::watch::channel(None);
        let requests = Arc::new(InstanceRequests {
            storage: StorageHandler::new(self.quota.scoped(scope)),
            plugin: plugin.to_owned(),
            for_user: user.is_some(),
            manifest,
            releases: self.release_service.clone(),
        });
        let started = Plugin::start(launched, settings, requests).await?;
        // Counted as started before its waiting registration is let through.
        if user.is_none()
            && started.manifest().capabilities.release_source.is_some()
            && let Some(service) = release_service(&self.release_service)
        {
            service.instance_started(plugin);
        }
        manifest_sender.send_replace(Some(Arc::new(started.manifest().clone())));
        let started = match place {
            Some(place) => started.holding(place),
            None => started,
        };
        // Written only when it changed: a start writes nothing to the database otherwise.
        let manifest = serde_json::to_value(started.manifest()).expect("a manifest serializes");
        if record.manifest.as_ref() != Some(&manifest)
            && let Err(error) = self.registry.record_manifest(plugin, &manifest)
        {
            tracing::warn!(plugin, "could not cache the manifest: {error}");
        }
        Ok(started)
    }

    /// What an instance of `record` (for `user`, if any) is started with: its `initialize`
    /// params and deadlines, its data directory under `sandbox`'s root.
    fn settings(
        &self,
        record: &PluginRecord,
        user: Option<&str>,
        user_config: serde_json::Map<String, serde_json::Value>,
        credentials: &BTreeMap<String, Secret>,
        sandbox: &Sandbox,
    ) -> PluginSettings {
        let plugin = record.id.as_str();
        let data_dir = crate::sandbox::data_dir::instance_path(sandbox.data_root(), plugin, user);
        let wasm = matches!(record.definition.launch, Launch::Wasm { .. });
        let seen_data_dir = if wasm { "/data".to_owned() } else { data_dir.to_string_lossy().into_owned() };
        let exposed = credentials.iter().map(|(name, value)| (name.clone(), value.expose().to_owned())).collect();
        let mut initialize = InitializeParams::new(record.definition.admin_config.clone(), user_config, exposed)
            .with_data_dir(seen_data_dir);
        if let Some(user) = user {
            initialize = initialize.with_user(user, format!("{plugin}:{user}"));
        }
        let mut settings = PluginSettings::new(record.id.clone(), initialize);
        settings.timeouts = Timeouts::new(record.definition.request_timeout());
        settings
    }

    /// Starts the registered `plugin` apart from this host's instances, for `check`: under
    /// `sandbox` (a scratch data root), with no place in the host's capacity and no
    /// supervision (its faults are not the registered plugin's), its requests served by
    /// `requests`, its streams passed through `wrap` before it is initialized.
    pub(super) async fn start_detached(&self, plugin: &str, detached: Detached<'_>) -> Result<Plugin, PluginError> {
        let record = self.registry.get(plugin).map_err(|error| not_registered(error, plugin, None))?;
        let credentials = self.credentials(plugin, None)?;
        let mut settings = self.settings(&record, None, Default::default(), &credentials, detached.sandbox);
        settings.shutdown = self.shutdown;
        if let Some(timeout) = detached.timeout {
            settings.timeouts = Timeouts::new(timeout);
        }
        let spawn_in = SpawnIn {
            sandbox: detached.sandbox,
            take_place: false,
            deny_network: detached.deny_network,
            stderr_tap: detached.stderr_tap,
            request_deadline: detached.timeout,
        };
        let (launched, _) = self.spawn(&record, &record.id, None, &credentials, spawn_in).await?;
        Plugin::start((detached.wrap)(launched), settings, detached.requests).await
    }

    /// The plugin's credentials, merged with the user's; none needs no key.
    fn credentials(&self, plugin: &str, user: Option<&str>) -> Result<BTreeMap<String, Secret>, PluginError> {
        let refused = |why: String| PluginError::Launch { plugin: plugin.to_owned(), why };
        let mut names = self.registry.credential_names(plugin, None).map_err(|error| refused(error.to_string()))?;
        if let Some(user) = user {
            let user_names = self.registry.credential_names(plugin, Some(user));
            names.extend(user_names.map_err(|error| refused(error.to_string()))?);
        }
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        let vault = self.vault.as_ref().ok_or_else(|| PluginError::NeedsKey {
            plugin: plugin.to_owned(),
            why: VaultError::MissingKey.to_string(),
        })?;
        self.registry.credentials(vault, plugin, user).map_err(|error| refused(error.to_string()))
    }

    async fn spawn(
        &self,
        record: &PluginRecord,
        id: &PluginId,
        user: Option<&str>,
        credentials: &BTreeMap<String, Secret>,
        spawn_in: SpawnIn<'_>,
    ) -> Result<(Launched, Option<Place>), PluginError> {
        let refused = |why: String| PluginError::Launch { plugin: id.to_string(), why };
        let definition = &record.definition;
        match &definition.launch {
            Launch::Process { command, args } => {
                let mut env: Vec<(String, String)> = definition.env.clone().into_iter().collect();
                if definition.credential_delivery == CredentialDelivery::Environment {
                    let delivered =
                        credentials.iter().map(|(name, value)| (name.to_uppercase(), value.expose().into()));
                    env.extend(delivered);
                }
                let sandbox = spawn_in
                    .sandbox
                    .prepare_process(id.as_str(), user, definition.confinement)
                    .map_err(|error| refused(error.to_string()))?;
                let sandbox = if spawn_in.deny_network { sandbox.without_network() } else { sandbox };
                let place = match spawn_in.take_place {
                    true => Some(self.place(&self.process_places(id.as_str()), id.as_str(), process::TRANSPORT).await?),
                    false => None,
                };
                let (sandbox, command, args) = match &record.install {
                    Some(install) if npx::is_npx(command) => {
                        let installed =
                            self.layout.sandbox.installed(id.as_str()).map_err(|error| refused(error.to_string()))?;
                        let installed = installed.ok_or_else(|| {
                            refused(format!(
                                "its package {} is not installed any more; run `plugin install {id}`",
                                install.requested
                            ))
                        })?;
                        let args = crate::install::node_command(install, &installed, args).map_err(refused)?;
                        (sandbox.with_installed(installed), "node".to_owned(), args)
                    }
                    _ => (sandbox, command.clone(), args.clone()),
                };
                let spec = ProcessSpec {
                    command,
                    args,
                    env,
                    sandbox,
                    working_dir: None,
                    memory_limit_bytes: definition.memory_limit_bytes,
                };
                let launched =
                    process::spawn_with_stderr_tap(&spec, &self.allowlist, id.as_str(), spawn_in.stderr_tap)?;
                Ok((launched, place))
            }
            Launch::Wasm { file } => {
                let (runtime, cache) = self
                    .wasm
                    .get_or_init(|| {
                        let runtime =
                            WasmRuntime::with_capacity(pool_slots(self.wasm_capacity.total()), self.slot_memory())
                                .map_err(|error| error.to_string())?;
                        let cache = ComponentCache::open(&self.layout.wasm_cache_dir).map_err(|error| {
                            format!(
                                "could not open the component cache {}: {error}",
                                self.layout.wasm_cache_dir.display()
                            )
                        })?;
                        Ok((runtime, cache))
                    })
                    .as_ref()
                    .map_err(|why| refused(why.clone()))?;
                let component = match self.components.cached(file) {
                    Some(component) => component,
                    None => {
                        // Reading and compiling take a while: off the async workers.
                        let (runtime, cache, file) = (runtime.clone(), cache.clone(), file.clone());
                        let components = self.components.clone();
                        let loaded = tokio::task::spawn_blocking(move || components.get(&runtime, &cache, &file)).await;
                        let loaded =
                            loaded.map_err(|error| refused(format!("loading the component failed: {error}")))?;
                        loaded.map_err(|error| refused(error.to_string()))?
                    }
                };
                let memory = definition.memory_limit_bytes.map(|limit| usize::try_from(limit).unwrap_or(usize::MAX));
                let slot = runtime.max_memory_bytes();
                if definition.memory_limit_bytes.is_some_and(|limit| limit > slot) {
                    return Err(refused(format!(
                        "its memory limit is above the {} MiB every wasm instance of this host has room for (its largest registered limit when it started); restart the host to make room",
                        slot >> 20
                    )));
                }
                let data_dir =
                    spawn_in.sandbox.wasm_dir(id.as_str(), user).map_err(|error| refused(error.to_string()))?;
                let http = match spawn_in.deny_network {
                    true => HttpPolicy::default(),
                    false => definition.http_policy().map_err(refused)?,
                };
                let spec = WasmSpec {
                    data_dir: Some(Arc::new(data_dir)),
                    memory_limit_bytes: memory.unwrap_or(wasm::DEFAULT_MEMORY_LIMIT_BYTES),
                    request_deadline: spawn_in.request_deadline.unwrap_or_else(|| definition.request_timeout()),
                    http: Arc::new(http),
                    disk: definition.disk_limits(),
                };
                let place = match spawn_in.take_place {
                    true => Some(self.place(&self.wasm_capacity, id.as_str(), wasm::TRANSPORT).await?),
                    false => None,
                };
                let launched = wasm::spawn_with_stderr_tap(&component, &spec, id.as_str(), spawn_in.stderr_tap)
                    .map_err(|error| refused(error.to_string()))?;
                Ok((launched, place))
            }
        }
    }
}

/// Where and how [`RegistryLauncher::spawn`] starts an instance.
struct SpawnIn<'a> {
    /// Its data directory's root and its confinement.
    sandbox: &'a Sandbox,
    /// Whether it takes a place in the host's capacity (a detached one does not).
    take_place: bool,
    /// No network: a process's own network namespace (or Landlock), a wasm guest's HTTP
    /// allowed nowhere.
    deny_network: bool,
    stderr_tap: Option<LineTap>,
    /// A wasm guest's deadline, instead of the registered timeout.
    request_deadline: Option<Duration>,
}

/// A detached start (see [`RegistryLauncher::start_detached`]).
pub struct Detached<'a> {
    pub sandbox: &'a Sandbox,
    pub deny_network: bool,
    /// The per-answer deadline, instead of the registered one.
    pub timeout: Option<Duration>,
    pub stderr_tap: Option<LineTap>,
    pub wrap: Box<dyn FnOnce(Launched) -> Launched + Send + 'a>,
    pub requests: Arc<dyn crate::dispatch::ReverseHandler>,
}

impl RegistryLauncher {
    /// A place for an instance of `plugin` on `transport`: a free one; else one an idle
    /// instance leaves, evicted (least recently used first; for process places, one of the
    /// plugin's own); else, while every instance is busy, one that comes free within the
    /// wait; else the host is at capacity, which is not the plugin's fault.
    async fn place(&self, capacity: &Capacity, plugin: &str, transport: &str) -> Result<Place, PluginError> {
        let deadline = tokio::time::Instant::now() + self.capacity_wait;
        let only = (transport == process::TRANSPORT).then_some(plugin);
        // In the queue from the start: places that come free go to waiting starts in the
        // order they came, and a later start cannot take one first.
        let mut queued = std::pin::pin!(capacity.take());
        loop {
            let make_room = async {
                let supervisor = self.evictor.get().and_then(Weak::upgrade);
                let evicted = match supervisor {
                    Some(supervisor) => supervisor.evict_idle(transport, only).await,
                    None => false,
                };
                if !evicted {
                    tokio::time::sleep(CAPACITY_POLL).await;
                }
            };
            tokio::select! {
                biased;
                place = &mut queued => return Ok(place),
                // An eviction is a graceful shutdown: it too must end within the wait.
                () = tokio::time::sleep_until(deadline) => break,
                () = make_room => {}
            }
        }
        let total = capacity.total();
        let whose =
            if only.is_some() { format!("plugin `{plugin}`'s {total} process") } else { format!("all {total} wasm") };
        let why =
            format!("{whose} instances are busy and none came free within {} s", self.capacity_wait.as_secs_f64());
        Err(PluginError::AtCapacity { plugin: plugin.to_owned(), why })
    }

    /// The memory every wasm instance has room for: the largest limit registered when the
    /// engine is made, at least the default, or what the host was told.
    fn slot_memory(&self) -> u64 {
        let registered = self.registry.list().unwrap_or_default().into_iter().filter_map(|record| {
            matches!(record.definition.launch, Launch::Wasm { .. }).then_some(record.definition.memory_limit_bytes)?
        });
        let largest = registered.chain(self.wasm_max_memory_bytes).max();
        largest.unwrap_or(0).max(wasm::DEFAULT_MEMORY_LIMIT_BYTES as u64)
    }

    /// The process places of `plugin`.
    fn process_places(&self, plugin: &str) -> Capacity {
        let mut places = self.process_capacity.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        places.entry(plugin.to_owned()).or_insert_with(|| Capacity::new(self.process_cap)).clone()
    }
}

/// How often a start waiting for a place looks again.
const CAPACITY_POLL: Duration = Duration::from_millis(20);

/// The engine's pool: the host's capacity, and a few slots more for instances whose store
/// is still being torn down after their place was let go.
fn pool_slots(capacity: u32) -> u32 {
    capacity.saturating_add((capacity / 32).max(8))
}

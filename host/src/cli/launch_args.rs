//! A plugin given on the command line (`-- COMMAND [ARGS…]` or `--wasm FILE`) and how it
//! is started: the flags `call` and `check` share, checked, and turned into a launch (a
//! confined process or a wasm component) and the plugin's settings before anything starts.

use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::Failure;
use super::input::{absolute, parse_object, parse_pair, parse_timeout};
use crate::host::WASM_CACHE_DIR;
use crate::limits::Timeouts;
use crate::plugin::{PluginError, PluginId, PluginSettings};
use crate::protocol::codec::DEFAULT_MAX_MESSAGE_BYTES;
use crate::protocol::types::initialize::{InitializeParams, LogLevel};
use crate::sandbox::{Confinement, Layer, ProcessSandbox, Sandbox, SandboxConfig};
use crate::transport::process::{self, CommandAllowlist, ProcessSpec};
use crate::transport::wasm::disk_quota::DiskLimits;
use crate::transport::wasm::http::{AllowedHost, HttpPolicy};
use crate::transport::wasm::{self, ComponentCache, WasmRuntime, WasmSpec};
use crate::transport::{Launched, LineTap};

/// The default per-answer deadline, in seconds.
pub const DEFAULT_TIMEOUT_SECS: f64 = 30.0;

/// The plugin to start and how to confine it.
#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// Admin configuration (JSON object), sent as `adminConfig` without its `_codex` key.
    #[arg(long, value_name = "JSON")]
    pub admin_config: Option<String>,
    /// User configuration (JSON object), sent as `userConfig` without its `_codex` key.
    #[arg(long, value_name = "JSON")]
    pub user_config: Option<String>,
    /// Where plugin storage and plugin data directories live.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Seconds to wait for each answer, `initialize` included (default 30, or what is
    /// registered for `--plugin`).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// An environment variable for the plugin (repeatable); blocked names are dropped.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A command name to add to the allowlist (repeatable).
    #[arg(long = "allow-command", value_name = "NAME")]
    pub allow_commands: Vec<String>,
    /// Executables under this directory may run as plugins.
    #[arg(long, value_name = "DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Cap on the plugin's address space, in MiB (for native plugins; not for Node).
    #[arg(long, value_name = "MIB")]
    pub memory_limit_mib: Option<u64>,
    /// Cap on one message from the plugin, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// Run a WebAssembly component (wasm32-wasip2) in this process instead of a command.
    #[arg(long, value_name = "FILE", conflicts_with = "command")]
    pub wasm: Option<PathBuf>,
    /// A host a wasm plugin may send HTTP requests to, `name` or `name:port` (repeatable).
    #[arg(long = "allow-http-host", value_name = "HOST", requires = "wasm")]
    pub allow_http_hosts: Vec<String>,
    /// Let the allowed hosts resolve to loopback, private or link-local addresses.
    #[arg(long, requires = "wasm")]
    pub allow_internal_addresses: bool,
    /// What a wasm plugin's /data may hold, in MiB (default 64).
    #[arg(long, value_name = "MIB", requires = "wasm")]
    pub disk_quota_mib: Option<u64>,
    /// How many files, folders and links a wasm plugin's /data may hold (default 10000).
    #[arg(long, value_name = "N", requires = "wasm")]
    pub disk_quota_entries: Option<u64>,
    /// How strictly a process plugin is confined: `required` (Landlock or a uid of its own,
    /// the default), `strict` (every layer), or `unconfined` (you trust it; a warning says so).
    #[arg(long, value_name = "LEVEL", value_parser = Confinement::parse, conflicts_with_all = ["wasm", "plugin"])]
    pub confinement: Option<Confinement>,
    /// Turn a confinement layer off, `landlock` or `separate-uid` (repeatable): where it
    /// misbehaves, or to see what the others hold. The plugin still starts only if what is
    /// left meets its confinement.
    #[arg(long = "disable-layer", value_name = "LAYER", value_parser = Layer::parse, conflicts_with = "wasm")]
    pub disabled_layers: Vec<Layer>,
    /// The plugin's command and its arguments, after `--`.
    #[arg(last = true, required_unless_present_any = ["wasm", "plugin"], value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// How the plugin is started.
pub enum Launch {
    Process { spec: ProcessSpec, allowlist: CommandAllowlist },
    Wasm { component: PathBuf, spec: WasmSpec, cache: PathBuf },
}

/// A plugin ready to start: how, and with what settings.
pub struct Prepared {
    pub settings: PluginSettings,
    pub launch: Launch,
}

/// What the caller decides beyond the flags: who the plugin is and what it is given.
pub struct Identity {
    pub id: PluginId,
    pub credentials: BTreeMap<String, String>,
    pub log_level: LogLevel,
    /// Its own wasm HTTP hosts (`--allow-http-host`), or none at all.
    pub http_allowed: bool,
    /// No network for a process plugin.
    pub deny_network: bool,
}

impl Launch {
    /// Starts the plugin; every stderr line also goes to `stderr_tap`, if given.
    pub fn start(&self, plugin_id: &str, stderr_tap: Option<LineTap>) -> Result<Launched, Failure> {
        match self {
            Self::Process { spec, allowlist } => process::spawn_with_stderr_tap(spec, allowlist, plugin_id, stderr_tap)
                .map_err(|error| not_started(&PluginError::from(error))),
            Self::Wasm { component, spec, cache } => {
                let runtime = WasmRuntime::with_capacity(1, spec.memory_limit_bytes as u64)
                    .map_err(|error| host_failure(error.to_string()))?;
                let cache = ComponentCache::open(cache).map_err(|error| {
                    host_failure(format!("could not open the component cache {}: {error}", cache.display()))
                })?;
                let (component, outcome) =
                    runtime.load_cached(component, &cache).map_err(|error| host_failure(error.to_string()))?;
                tracing::debug!("component cache: {outcome:?}");
                wasm::spawn_with_stderr_tap(&component, spec, plugin_id, stderr_tap)
                    .map_err(|error| host_failure(error.to_string()))
            }
        }
    }

    /// The transport's name: "process", "wasm".
    pub fn transport(&self) -> &'static str {
        match self {
            Self::Process { .. } => process::TRANSPORT,
            Self::Wasm { .. } => wasm::TRANSPORT,
        }
    }
}

impl LaunchArgs {
    /// The id a plugin started from these flags has when none is given: derived from the
    /// command line, so the same plugin started the same way finds its data again.
    pub fn derived_id(&self) -> Result<PluginId, Failure> {
        match (&self.wasm, self.command.split_first()) {
            (Some(component), _) => Ok(PluginId::derived_from(&component.to_string_lossy(), &[])),
            (None, Some((command, command_args))) => Ok(PluginId::derived_from(command, command_args)),
            (None, None) => Err(Failure::usage("no plugin: give `--wasm FILE` or a command after `--`")),
        }
    }

    pub fn allowlist(&self) -> Result<CommandAllowlist, Failure> {
        let mut allowlist = CommandAllowlist::default();
        for name in &self.allow_commands {
            allowlist = allowlist.allow(name);
        }
        if let Some(dir) = &self.plugins_dir {
            allowlist = allowlist.with_plugins_dir(absolute(dir)?);
        }
        Ok(allowlist)
    }

    pub fn sandbox_config(&self) -> SandboxConfig {
        SandboxConfig { disabled: self.disabled_layers.iter().copied().collect(), ..SandboxConfig::default() }
    }

    /// The per-answer deadline the flags give.
    pub fn timeout(&self) -> Result<std::time::Duration, Failure> {
        parse_timeout(self.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS))
    }

    /// Checks every flag and prepares the plugin's start in `sandbox` (its data
    /// directories, and for a process its uid and layers). Nothing starts yet.
    pub fn prepare(&self, sandbox: &Sandbox, identity: Identity) -> Result<Prepared, Failure> {
        let admin_config = parse_object("--admin-config", self.admin_config.as_deref())?;
        let user_config = parse_object("--user-config", self.user_config.as_deref())?;
        let timeout = self.timeout()?;
        let id = identity.id;
        let plugin_dir = crate::sandbox::data_dir::instance_path(sandbox.data_root(), id.as_str(), None);
        let memory_limit_bytes = self.memory_limit_mib.map(|mebibytes| mebibytes.saturating_mul(1 << 20));
        let launch = match &self.wasm {
            Some(component) => Launch::Wasm {
                component: absolute(component)?,
                spec: WasmSpec {
                    data_dir: Some(Arc::new(
                        sandbox.wasm_dir(id.as_str(), None).map_err(|error| host_failure(error.to_string()))?,
                    )),
                    memory_limit_bytes: memory_limit_bytes
                        .map_or(wasm::DEFAULT_MEMORY_LIMIT_BYTES, |limit| usize::try_from(limit).unwrap_or(usize::MAX)),
                    request_deadline: timeout,
                    http: Arc::new(if identity.http_allowed { self.http_policy()? } else { HttpPolicy::default() }),
                    disk: DiskLimits::from_settings(
                        self.disk_quota_mib.map(|mebibytes| mebibytes.saturating_mul(1 << 20)),
                        self.disk_quota_entries,
                    ),
                },
                cache: sandbox.data_root().join(WASM_CACHE_DIR),
            },
            None => {
                let confinement = self.confinement.unwrap_or_default();
                let prepared = sandbox.prepare_process(id.as_str(), None, confinement).map_err(|error| {
                    not_started(&PluginError::Launch { plugin: id.to_string(), why: error.to_string() })
                })?;
                let prepared = if identity.deny_network { prepared.without_network() } else { prepared };
                self.process_launch(prepared, memory_limit_bytes)?
            }
        };
        // A wasm guest sees its data directory as `/data`.
        let data_dir_seen = match launch {
            Launch::Wasm { .. } => "/data".to_owned(),
            Launch::Process { .. } => plugin_dir.to_string_lossy().into_owned(),
        };
        let initialize = InitializeParams::new(admin_config, user_config, identity.credentials)
            .with_data_dir(data_dir_seen)
            .with_log_level(identity.log_level);
        let mut settings = PluginSettings::new(id, initialize);
        settings.timeouts = Timeouts::new(timeout);
        settings.max_message_bytes = self.max_message_bytes;
        Ok(Prepared { settings, launch })
    }

    fn http_policy(&self) -> Result<HttpPolicy, Failure> {
        let hosts = self.allow_http_hosts.iter().map(|entry| entry.parse::<AllowedHost>());
        let hosts = hosts.collect::<Result<Vec<_>, _>>().map_err(|error| Failure::usage(error.to_string()))?;
        Ok(HttpPolicy::allow(hosts).with_internal_addresses(self.allow_internal_addresses))
    }

    fn process_launch(&self, sandbox: ProcessSandbox, memory_limit_bytes: Option<u64>) -> Result<Launch, Failure> {
        let (command, command_args) =
            self.command.split_first().ok_or_else(|| Failure::usage("no plugin command after `--`"))?;
        let working_dir =
            std::env::current_dir().map_err(|error| Failure::usage(format!("no working directory: {error}")))?;
        let env = self.env.iter().map(|pair| parse_pair("--env", pair)).collect::<Result<_, _>>()?;
        let spec = ProcessSpec {
            command: command.clone(),
            args: command_args.to_vec(),
            env,
            sandbox,
            working_dir: Some(working_dir),
            memory_limit_bytes,
        };
        Ok(Launch::Process { spec, allowlist: self.allowlist()? })
    }
}

/// The exit code and message of a plugin that could not be started or answered: one
/// place for `call` and `check`.
pub fn not_started(error: &PluginError) -> Failure {
    let exit_code = match error {
        PluginError::Answered { .. } => 1,
        PluginError::UnknownMethod { .. }
        | PluginError::InvalidParams { .. }
        | PluginError::NotRegistered { .. }
        | PluginError::NeedsKey { .. }
        | PluginError::CapabilityNotDeclared { .. } => 2,
        _ => 3,
    };
    Failure { message: format!("{error} [{}]", error.code().code()), exit_code }
}

/// A failure of the host itself (exit 3).
pub fn host_failure(message: String) -> Failure {
    Failure { message, exit_code: 3 }
}

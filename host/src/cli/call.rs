//! `codex-plugin-host call`: start one plugin, initialize it, send one method, print the
//! result, shut it down.

use clap::{Args, ValueEnum};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Failure;
use crate::host::{HostConfig, HostError, PluginHost};
use crate::limits::{StorageLimits, StorageQuota, Timeouts};
use crate::plugin::{Plugin, PluginError, PluginId, PluginSettings};
use crate::protocol::HostMethod;
use crate::protocol::codec::DEFAULT_MAX_MESSAGE_BYTES;
use crate::protocol::types::initialize::{InitializeParams, LogLevel};
use crate::sandbox::{Confinement, Layer, ProcessSandbox, Sandbox, SandboxConfig};
use crate::storage::handler::StorageHandler;
use crate::storage::{SqliteStorage, StorageScope};
use crate::transport::Launched;
use crate::transport::process::{self, CommandAllowlist, ProcessSpec};
use crate::transport::wasm::disk_quota::DiskLimits;
use crate::transport::wasm::http::{AllowedHost, HttpPolicy};
use crate::transport::wasm::{self, ComponentCache, WasmRuntime, WasmSpec};
use tokio::signal::unix::{Signal, SignalKind, signal};

pub use crate::host::{DATABASE_FILE, WASM_CACHE_DIR};

/// Start a plugin, send it one method, print the JSON result.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The method, e.g. `ping` or `metadata/series/search`.
    method: String,
    /// The method's params as JSON.
    params: Option<String>,
    /// Admin configuration (JSON object), sent as `adminConfig`.
    #[arg(long, value_name = "JSON")]
    admin_config: Option<String>,
    /// User configuration (JSON object), sent as `userConfig` without its `_codex` key.
    #[arg(long, value_name = "JSON")]
    user_config: Option<String>,
    /// Credentials, a JSON object of strings sent in `initialize` only, read from FILE, or
    /// from stdin with `-`: never given on the command line, where every user can read it.
    #[arg(long, value_name = "FILE|-")]
    credentials: Option<PathBuf>,
    /// Where plugin storage and plugin data directories live.
    #[arg(long, value_name = "DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Seconds to wait for each answer, `initialize` included (default 30, or what is
    /// registered for `--plugin`).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// The storage scope; by default derived from the command line, so the same plugin
    /// started the same way finds its data again.
    #[arg(long, value_name = "ID")]
    plugin_id: Option<String>,
    /// An environment variable for the plugin (repeatable); blocked names are dropped.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// A command name to add to the allowlist (repeatable).
    #[arg(long = "allow-command", value_name = "NAME")]
    allow_commands: Vec<String>,
    /// Executables under this directory may run as plugins.
    #[arg(long, value_name = "DIR")]
    plugins_dir: Option<PathBuf>,
    /// Cap on the plugin's address space, in MiB (for native plugins; not for Node).
    #[arg(long, value_name = "MIB")]
    memory_limit_mib: Option<u64>,
    /// Cap on one message from the plugin, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,
    /// Log level of the host and of the plugin.
    #[arg(long, value_enum, default_value_t = Level::Info)]
    log_level: Level,
    /// Run a WebAssembly component (wasm32-wasip2) in this process instead of a command.
    #[arg(long, value_name = "FILE", conflicts_with = "command")]
    wasm: Option<PathBuf>,
    /// Call a registered plugin, with what is registered for it (`plugin add`).
    #[arg(
        long,
        value_name = "ID",
        conflicts_with_all = [
            "command", "wasm", "plugin_id", "admin_config", "user_config", "credentials", "env",
            "memory_limit_mib", "allow_http_hosts", "allow_internal_addresses",
        ]
    )]
    plugin: Option<String>,
    /// The user to call a registered plugin as (connected with `plugin connect`).
    #[arg(long, value_name = "USER", requires = "plugin")]
    user: Option<String>,
    /// The vault key's file for a registered plugin's credentials; by default
    /// `CODEX_ENCRYPTION_KEY`.
    #[arg(long, value_name = "FILE", requires = "plugin")]
    key_file: Option<PathBuf>,
    /// A host a wasm plugin may send HTTP requests to, `name` or `name:port` (repeatable).
    #[arg(long = "allow-http-host", value_name = "HOST", requires = "wasm")]
    allow_http_hosts: Vec<String>,
    /// Let the allowed hosts resolve to loopback, private or link-local addresses.
    #[arg(long, requires = "wasm")]
    allow_internal_addresses: bool,
    /// What a wasm plugin's /data may hold, in MiB (default 64).
    #[arg(long, value_name = "MIB", requires = "wasm")]
    disk_quota_mib: Option<u64>,
    /// How many files, folders and links a wasm plugin's /data may hold (default 10000).
    #[arg(long, value_name = "N", requires = "wasm")]
    disk_quota_entries: Option<u64>,
    /// How strictly a process plugin is confined: `required` (Landlock or a uid of its own,
    /// the default), `strict` (every layer), or `unconfined` (you trust it; a warning says so).
    #[arg(long, value_name = "LEVEL", value_parser = Confinement::parse, conflicts_with_all = ["wasm", "plugin"])]
    confinement: Option<Confinement>,
    /// Turn a confinement layer off, `landlock` or `separate-uid` (repeatable): where it
    /// misbehaves, or to see what the others hold. The plugin still starts only if what is
    /// left meets its confinement.
    #[arg(long = "disable-layer", value_name = "LAYER", value_parser = Layer::parse, conflicts_with = "wasm")]
    disabled_layers: Vec<Layer>,
    /// The plugin's command and its arguments, after `--`.
    #[arg(last = true, required_unless_present_any = ["wasm", "plugin"], value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl CallArgs {
    pub fn log_level(&self) -> LogLevel {
        match self.log_level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        }
    }
}

/// Everything `call` needs, checked before anything starts.
struct Request {
    method: HostMethod,
    params: Value,
    settings: PluginSettings,
    launch: Launch,
    database: PathBuf,
}

/// How the plugin is started.
enum Launch {
    Process { spec: ProcessSpec, allowlist: CommandAllowlist },
    Wasm { component: PathBuf, spec: WasmSpec, cache: PathBuf },
}

impl Launch {
    fn start(&self, plugin_id: &str) -> Result<Launched, Failure> {
        match self {
            Self::Process { spec, allowlist } => {
                process::spawn(spec, allowlist, plugin_id).map_err(|error| refusal(&PluginError::from(error)))
            }
            Self::Wasm { component, spec, cache } => {
                let runtime = WasmRuntime::new().map_err(|error| host_failure(error.to_string()))?;
                let cache = ComponentCache::open(cache).map_err(|error| {
                    host_failure(format!("could not open the component cache {}: {error}", cache.display()))
                })?;
                let (component, outcome) =
                    runtime.load_cached(component, &cache).map_err(|error| host_failure(error.to_string()))?;
                tracing::debug!("component cache: {outcome:?}");
                wasm::spawn(&component, spec, plugin_id).map_err(|error| host_failure(error.to_string()))
            }
        }
    }
}

pub fn run(args: CallArgs) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure { message: format!("could not start the async runtime: {error}"), exit_code: 3 })?;
    let result = match &args.plugin {
        Some(plugin) => runtime.block_on(call_registered(&args, plugin))?,
        None => runtime.block_on(execute(prepare(&args)?))?,
    };
    let text = serde_json::to_string_pretty(&result).expect("a JSON value always serializes");
    super::print_line(&text);
    Ok(())
}

/// `call --plugin ID`: the plugin as registered, through the supervisor.
async fn call_registered(args: &CallArgs, plugin: &str) -> Result<Value, Failure> {
    let (method, params) = method_and_params(args)?;
    if method == HostMethod::Initialize {
        return Err(Failure::usage("`initialize` is sent by the host; `plugin show` has the cached manifest"));
    }
    let mut config = HostConfig::new(absolute(&args.data_dir)?);
    config.key_file = args.key_file.as_deref().map(absolute).transpose()?;
    config.allowlist = allowlist(args)?;
    config.sandbox = sandbox_config(args);
    let host = PluginHost::open(config).map_err(|error| match error {
        HostError::Vault(error) => Failure::usage(error.to_string()),
        other => host_failure(other.to_string()),
    })?;
    let mut termination = Termination::listen();
    let timeout = args.timeout.map(parse_timeout).transpose()?;
    let calling = host.call_with_deadline(plugin, args.user.as_deref(), method.name(), params, timeout);
    let answered = tokio::select! {
        answered = calling => Ok(answered),
        signal = termination.recv() => Err(signal),
    };
    match answered {
        Ok(answered) => {
            host.shutdown().await;
            answered.map_err(|error| refusal(&error))
        }
        // Dropping the host kills its plugins at once.
        Err(signal) => Err(interrupted(signal)),
    }
}

/// The method and its params, checked against the method's type.
fn method_and_params(args: &CallArgs) -> Result<(HostMethod, Value), Failure> {
    let method = HostMethod::from_name(&args.method)
        .ok_or_else(|| refusal(&PluginError::UnknownMethod { method: args.method.clone() }))?;
    let params = match (&args.params, method) {
        (Some(_), HostMethod::Initialize) => {
            return Err(Failure::usage(
                "`initialize` takes its params from --admin-config, --user-config and --credentials",
            ));
        }
        (Some(text), _) => parse_json("PARAMS_JSON", text)?,
        (None, _) => default_params(method),
    };
    if method != HostMethod::Initialize {
        let checked = method.prepare_params(params.clone());
        checked.map_err(|why| refusal(&PluginError::InvalidParams { method: args.method.clone(), why }))?;
    }
    Ok((method, params))
}

fn allowlist(args: &CallArgs) -> Result<CommandAllowlist, Failure> {
    let mut allowlist = CommandAllowlist::default();
    for name in &args.allow_commands {
        allowlist = allowlist.allow(name);
    }
    if let Some(dir) = &args.plugins_dir {
        allowlist = allowlist.with_plugins_dir(absolute(dir)?);
    }
    Ok(allowlist)
}

fn http_policy(args: &CallArgs) -> Result<HttpPolicy, Failure> {
    let hosts = args.allow_http_hosts.iter().map(|entry| entry.parse::<AllowedHost>());
    let hosts = hosts.collect::<Result<Vec<_>, _>>().map_err(|error| Failure::usage(error.to_string()))?;
    Ok(HttpPolicy::allow(hosts).with_internal_addresses(args.allow_internal_addresses))
}

fn prepare(args: &CallArgs) -> Result<Request, Failure> {
    let (method, params) = method_and_params(args)?;
    let admin_config = parse_object("--admin-config", args.admin_config.as_deref())?;
    let user_config = parse_object("--user-config", args.user_config.as_deref())?;
    let credentials = read_credentials(args.credentials.as_deref())?;
    let timeout = parse_timeout(args.timeout.unwrap_or(30.0))?;
    let id = match (&args.plugin_id, &args.wasm, args.command.split_first()) {
        (Some(id), _, _) => PluginId::new(id).map_err(Failure::usage)?,
        (None, Some(component), _) => PluginId::derived_from(&component.to_string_lossy(), &[]),
        (None, None, Some((command, command_args))) => PluginId::derived_from(command, command_args),
        (None, None, None) => return Err(Failure::usage("no plugin: give `--wasm FILE` or a command after `--`")),
    };
    let data_dir = absolute(&args.data_dir)?;
    crate::host::create_private_dir(&data_dir).map_err(|error| host_failure(error.to_string()))?;
    let sandbox = Sandbox::new(sandbox_config(args), &data_dir, Vec::new());
    let plugin_dir = crate::sandbox::data_dir::instance_path(&data_dir, id.as_str(), None);
    let memory_limit_bytes = args.memory_limit_mib.map(|mebibytes| mebibytes.saturating_mul(1 << 20));
    let launch = match &args.wasm {
        Some(component) => Launch::Wasm {
            component: absolute(component)?,
            spec: WasmSpec {
                data_dir: Some(Arc::new(
                    sandbox.wasm_dir(id.as_str(), None).map_err(|error| host_failure(error.to_string()))?,
                )),
                memory_limit_bytes: memory_limit_bytes
                    .map_or(wasm::DEFAULT_MEMORY_LIMIT_BYTES, |limit| usize::try_from(limit).unwrap_or(usize::MAX)),
                request_deadline: timeout,
                http: Arc::new(http_policy(args)?),
                disk: DiskLimits::from_settings(
                    args.disk_quota_mib.map(|mebibytes| mebibytes.saturating_mul(1 << 20)),
                    args.disk_quota_entries,
                ),
            },
            cache: data_dir.join(WASM_CACHE_DIR),
        },
        None => {
            let confinement = args.confinement.unwrap_or_default();
            let prepared = sandbox.prepare_process(id.as_str(), None, confinement);
            let prepared = prepared
                .map_err(|error| refusal(&PluginError::Launch { plugin: id.to_string(), why: error.to_string() }))?;
            process_launch(args, prepared, memory_limit_bytes)?
        }
    };
    // A wasm guest sees its data directory as `/data`.
    let data_dir_seen = match launch {
        Launch::Wasm { .. } => "/data".to_owned(),
        Launch::Process { .. } => plugin_dir.to_string_lossy().into_owned(),
    };
    let initialize = InitializeParams::new(admin_config, user_config, credentials)
        .with_data_dir(data_dir_seen)
        .with_log_level(args.log_level());
    let mut settings = PluginSettings::new(id, initialize);
    settings.timeouts = Timeouts::new(timeout);
    settings.max_message_bytes = args.max_message_bytes;
    Ok(Request { method, params, settings, launch, database: data_dir.join(DATABASE_FILE) })
}

fn sandbox_config(args: &CallArgs) -> SandboxConfig {
    SandboxConfig { disabled: args.disabled_layers.iter().copied().collect(), ..SandboxConfig::default() }
}

fn process_launch(
    args: &CallArgs,
    sandbox: ProcessSandbox,
    memory_limit_bytes: Option<u64>,
) -> Result<Launch, Failure> {
    let (command, command_args) =
        args.command.split_first().ok_or_else(|| Failure::usage("no plugin command after `--`"))?;
    let working_dir =
        std::env::current_dir().map_err(|error| Failure::usage(format!("no working directory: {error}")))?;
    let env = args.env.iter().map(|pair| parse_pair("--env", pair)).collect::<Result<_, _>>()?;
    let spec = ProcessSpec {
        command: command.clone(),
        args: command_args.to_vec(),
        env,
        sandbox,
        working_dir: Some(working_dir),
        memory_limit_bytes,
    };
    Ok(Launch::Process { spec, allowlist: allowlist(args)? })
}

async fn execute(request: Request) -> Result<Value, Failure> {
    if let Some(parent) = request.database.parent() {
        std::fs::create_dir_all(parent).map_err(|error| {
            host_failure(format!("could not create the data directory {}: {error}", parent.display()))
        })?;
    }
    let backend = SqliteStorage::open(&request.database).map_err(|error| host_failure(error.to_string()))?;
    let quota = StorageQuota::new(Arc::new(backend), StorageLimits::default());
    if let Err(error) = quota.sweep_expired().await {
        tracing::warn!("sweeping expired storage keys failed: {error}");
    }
    let storage = StorageHandler::new(quota.scoped(StorageScope::plugin(request.settings.id.as_str())));
    let mut termination = Termination::listen();
    let launched = request.launch.start(request.settings.id.as_str())?;
    let starting = Plugin::start(launched, request.settings, Arc::new(storage));
    let plugin = tokio::select! {
        started = starting => started.map_err(|error| refusal(&error))?,
        signal = termination.recv() => return Err(interrupted(signal)),
    };
    let answered = tokio::select! {
        outcome = answer(&plugin, request.method, request.params) => Ok(outcome),
        signal = termination.recv() => Err(signal),
    };
    match answered {
        Ok(outcome) => {
            if request.method != HostMethod::Shutdown {
                plugin.shutdown().await;
            }
            outcome
        }
        Err(signal) => {
            // No polite `shutdown` for an operator who wants out; a second signal stops the
            // escalation and drops the plugin, which kills its process group at once.
            tokio::select! {
                () = plugin.kill() => {}
                _ = termination.recv() => {}
            }
            Err(interrupted(signal))
        }
    }
}

async fn answer(plugin: &Plugin, method: HostMethod, params: Value) -> Result<Value, Failure> {
    match method {
        HostMethod::Initialize => {
            serde_json::to_value(plugin.manifest()).map_err(|error| host_failure(error.to_string()))
        }
        method => plugin.call_raw(method.name(), params, None).await.map_err(|error| refusal(&error)),
    }
}

/// SIGINT, SIGTERM, SIGHUP and SIGQUIT, listened for from the start. The plugin leads its own process
/// group, so a terminal's Ctrl-C never reaches it: the command must stop it itself.
struct Termination {
    signals: Vec<(&'static str, Signal)>,
}

impl Termination {
    const SIGNALS: [(&'static str, SignalKind); 4] = [
        ("SIGINT", SignalKind::interrupt()),
        ("SIGTERM", SignalKind::terminate()),
        ("SIGHUP", SignalKind::hangup()),
        ("SIGQUIT", SignalKind::quit()),
    ];

    fn listen() -> Self {
        let mut signals = Vec::new();
        for (name, kind) in Self::SIGNALS {
            match signal(kind) {
                Ok(listener) => signals.push((name, listener)),
                Err(error) => tracing::warn!("could not listen for {name}: {error}"),
            }
        }
        Self { signals }
    }

    /// The name of the next signal received.
    async fn recv(&mut self) -> &'static str {
        if self.signals.is_empty() {
            return std::future::pending().await;
        }
        std::future::poll_fn(|context| {
            for (name, listener) in &mut self.signals {
                if listener.poll_recv(context).is_ready() {
                    return std::task::Poll::Ready(*name);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

pub(super) fn interrupted(signal: &str) -> Failure {
    Failure { message: format!("interrupted by {signal}; the plugin was stopped"), exit_code: 130 }
}

/// The exit code and message for an error: one place.
pub(super) fn refusal(error: &PluginError) -> Failure {
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

/// Between a millisecond and a day.
fn parse_timeout(seconds: f64) -> Result<Duration, Failure> {
    let allowed = Duration::from_millis(1)..=Duration::from_secs(24 * 3600);
    match Duration::try_from_secs_f64(seconds) {
        Ok(timeout) if allowed.contains(&timeout) => Ok(timeout),
        _ => Err(Failure::usage(format!("--timeout must be between 0.001 and 86400 seconds, got {seconds}"))),
    }
}

pub(super) fn host_failure(message: String) -> Failure {
    Failure { message, exit_code: 3 }
}

fn default_params(method: HostMethod) -> Value {
    match method {
        HostMethod::Initialize | HostMethod::Ping | HostMethod::Shutdown => Value::Null,
        _ => Value::Object(Map::new()),
    }
}

pub(super) fn parse_json(what: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|error| Failure::usage(format!("{what} is not valid JSON: {error}")))
}

pub(super) fn parse_object(flag: &str, text: Option<&str>) -> Result<Map<String, Value>, Failure> {
    match text.map(|text| parse_json(flag, text)).transpose()? {
        None => Ok(Map::new()),
        Some(Value::Object(object)) => Ok(object),
        Some(other) => Err(Failure::usage(format!("{flag} must be a JSON object, got {other}"))),
    }
}

/// `--credentials FILE`, or `-` for stdin.
fn read_credentials(source: Option<&Path>) -> Result<BTreeMap<String, String>, Failure> {
    let text =
        match source {
            None => None,
            Some(path) if path == Path::new("-") => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), 1 << 20), &mut text)
                    .map_err(|error| Failure::usage(format!("--credentials: could not read stdin: {error}")))?;
                Some(text)
            }
            Some(path) => Some(std::fs::read_to_string(path).map_err(|error| {
                Failure::usage(format!("--credentials: could not read {}: {error}", path.display()))
            })?),
        };
    let object = parse_object("--credentials", text.as_deref())?;
    object
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(secret) => Ok((key, secret)),
            _ => Err(Failure::usage(format!("--credentials: the value of `{key}` must be a string"))),
        })
        .collect()
}

/// `KEY=VALUE` of `flag`.
pub(super) fn parse_pair(flag: &str, pair: &str) -> Result<(String, String), Failure> {
    match pair.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(Failure::usage(format!("{flag} takes KEY=VALUE, got {pair:?}"))),
    }
}

pub(super) fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path).map_err(|error| Failure::usage(format!("bad path {}: {error}", path.display())))
}

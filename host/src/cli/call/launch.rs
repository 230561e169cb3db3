//! From `call`'s arguments to a plugin ready to start: its launch (a confined process or a
//! wasm component), its settings and its storage, all checked before anything starts.

use std::path::PathBuf;
use std::sync::Arc;

use super::steps::{self, Step};
use super::{CallArgs, host_failure, refusal};
use crate::cli::Failure;
use crate::cli::input::{absolute, parse_object, parse_pair, parse_timeout, read_credentials};
use crate::host::{DATABASE_FILE, WASM_CACHE_DIR};
use crate::limits::Timeouts;
use crate::plugin::{PluginError, PluginId, PluginSettings};
use crate::protocol::types::initialize::InitializeParams;
use crate::sandbox::{ProcessSandbox, Sandbox, SandboxConfig};
use crate::transport::Launched;
use crate::transport::process::{self, CommandAllowlist, ProcessSpec};
use crate::transport::wasm::disk_quota::DiskLimits;
use crate::transport::wasm::http::{AllowedHost, HttpPolicy};
use crate::transport::wasm::{self, ComponentCache, WasmRuntime, WasmSpec};

/// Everything `call` needs, checked before anything starts.
pub(super) struct Request {
    pub steps: Vec<Step>,
    pub settings: PluginSettings,
    pub launch: Launch,
    pub database: PathBuf,
}

/// How the plugin is started.
pub(super) enum Launch {
    Process { spec: ProcessSpec, allowlist: CommandAllowlist },
    Wasm { component: PathBuf, spec: WasmSpec, cache: PathBuf },
}

impl Launch {
    pub fn start(&self, plugin_id: &str) -> Result<Launched, Failure> {
        match self {
            Self::Process { spec, allowlist } => {
                process::spawn(spec, allowlist, plugin_id).map_err(|error| refusal(&PluginError::from(error)))
            }
            Self::Wasm { component, spec, cache } => {
                let runtime = WasmRuntime::with_capacity(1, spec.memory_limit_bytes as u64)
                    .map_err(|error| host_failure(error.to_string()))?;
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

pub(super) fn allowlist(args: &CallArgs) -> Result<CommandAllowlist, Failure> {
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

pub(super) fn prepare(args: &CallArgs) -> Result<Request, Failure> {
    let steps = steps::steps(args)?;
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
    Ok(Request { steps, settings, launch, database: data_dir.join(DATABASE_FILE) })
}

pub(super) fn sandbox_config(args: &CallArgs) -> SandboxConfig {
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

//! `codex-plugin-host call`: start one plugin, initialize it, send it one method or several
//! in order (`--then`), print each result, shut it down.

mod launch;
mod steps;

use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;

use super::Failure;
use super::input::{absolute, parse_timeout};
use super::launch_args::{LaunchArgs, host_failure, not_started as refusal};
use super::termination::Termination;
use crate::host::{HostConfig, HostError, PluginHost};
use crate::limits::{StorageLimits, StorageQuota};
use crate::plugin::Plugin;
use crate::protocol::HostMethod;
use crate::protocol::types::initialize::LogLevel;
use crate::storage::handler::StorageHandler;
use crate::storage::{SqliteStorage, StorageScope};
use launch::Request;
use steps::Output;

/// Start a plugin, send it one method (or several, with `--then`), print each JSON result.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The method, e.g. `ping` or `metadata/series/search`.
    method: String,
    /// The method's params as JSON.
    params: Option<String>,
    /// Then send another method to the same instance, with its params as JSON (repeatable,
    /// sent in order; `--then 'METHOD PARAMS_JSON'` in one argument works too): for plugins
    /// that keep state between calls, like a sync plugin that needs `sync/getUserInfo`
    /// before `sync/pullProgress`. Each result is printed as `{"method", "result"}` as it
    /// comes; the first error stops the rest.
    #[arg(long = "then", value_names = ["METHOD", "PARAMS_JSON"], num_args = 1..=2, action = clap::ArgAction::Append)]
    then: Vec<String>,
    #[command(flatten)]
    launch: LaunchArgs,
    /// Credentials, a JSON object of strings sent in `initialize` only, read from FILE, or
    /// from stdin with `-`: never given on the command line, where every user can read it.
    #[arg(long, value_name = "FILE|-")]
    credentials: Option<PathBuf>,
    /// The storage scope; by default derived from the command line, so the same plugin
    /// started the same way finds its data again.
    #[arg(long, value_name = "ID")]
    plugin_id: Option<String>,
    /// Log level of the host and of the plugin.
    #[arg(long, value_enum, default_value_t = Level::Info)]
    log_level: Level,
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
    /// Wasm instances the host holds at once (default: what the machine allows, at most
    /// 1000); idle ones are evicted to make room.
    #[arg(long, value_name = "N", requires = "plugin", value_parser = clap::value_parser!(u32).range(1..))]
    wasm_capacity: Option<u32>,
    /// The user to call a registered plugin as (connected with `plugin connect`).
    #[arg(long, value_name = "USER", requires = "plugin")]
    user: Option<String>,
    /// The vault key's file for a registered plugin's credentials; by default
    /// `CODEX_ENCRYPTION_KEY`.
    #[arg(long, value_name = "FILE", requires = "plugin")]
    key_file: Option<PathBuf>,
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

pub fn run(args: CallArgs) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure { message: format!("could not start the async runtime: {error}"), exit_code: 3 })?;
    match &args.plugin {
        Some(plugin) => runtime.block_on(call_registered(&args, plugin)),
        None => runtime.block_on(execute(launch::prepare(&args)?)),
    }
}

/// `call --plugin ID`: the plugin as registered, through the supervisor, which keeps one
/// instance for every step.
async fn call_registered(args: &CallArgs, plugin: &str) -> Result<(), Failure> {
    let steps = steps::steps(args)?;
    if steps.iter().any(|step| step.method == HostMethod::Initialize) {
        return Err(Failure::usage("`initialize` is sent by the host; `plugin show` has the cached manifest"));
    }
    let mut config = HostConfig::new(absolute(&args.launch.data_dir)?);
    config.key_file = args.key_file.as_deref().map(absolute).transpose()?;
    config.allowlist = args.launch.allowlist()?;
    config.sandbox = args.launch.sandbox_config();
    config.wasm_capacity = args.wasm_capacity;
    let host = PluginHost::open(config).map_err(|error| match error {
        HostError::Vault(error) => Failure::usage(error.to_string()),
        other => host_failure(other.to_string()),
    })?;
    let host = Arc::new(host);
    // A user's OAuth token is refreshed before their instance starts, if it is due.
    let integrations = match &args.user {
        Some(_) => {
            let library = crate::library::SqliteLibrary::open(&host.database_path())
                .map_err(|error| host_failure(error.to_string()))?;
            let integrations = crate::integrations::Integrations::new(host.clone(), Arc::new(library))
                .map_err(|error| host_failure(error.to_string()))?;
            Some(integrations)
        }
        None => None,
    };
    let mut termination = Termination::listen();
    let timeout = args.launch.timeout.map(parse_timeout).transpose()?;
    let output = Output::for_steps(&steps);
    // One session for every step: one instance, which no admin change restarts under it.
    let session = host.session(plugin, args.user.as_deref());
    let mut failed = None;
    for (index, step) in steps.iter().enumerate() {
        let calling = session.call(step.method.name(), step.params.clone(), timeout);
        let answered = tokio::select! {
            answered = calling => answered,
            // Dropping the host kills its plugins at once.
            signal = termination.recv() => return Err(interrupted(signal)),
        };
        match answered {
            Ok(result) => output.print(step, result),
            Err(error) => {
                failed = Some(output.failed(&steps, index, refusal(&error)));
                break;
            }
        }
    }
    drop(session);
    drop(integrations);
    if let Ok(host) = Arc::try_unwrap(host) {
        host.shutdown().await;
    }
    failed.map_or(Ok(()), Err)
}

async fn execute(request: Request) -> Result<(), Failure> {
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
    let launched = request.launch.start(request.settings.id.as_str(), None)?;
    let starting = Plugin::start(launched, request.settings, Arc::new(storage));
    let plugin = tokio::select! {
        started = starting => started.map_err(|error| refusal(&error))?,
        signal = termination.recv() => return Err(interrupted(signal)),
    };
    let output = Output::for_steps(&request.steps);
    for (index, step) in request.steps.iter().enumerate() {
        let answered = tokio::select! {
            outcome = steps::answer(&plugin, step.clone()) => outcome,
            signal = termination.recv() => {
                // No polite `shutdown` for an operator who wants out; a second signal stops
                // the escalation and drops the plugin, which kills its process group at once.
                tokio::select! {
                    () = plugin.kill() => {}
                    _ = termination.recv() => {}
                }
                return Err(interrupted(signal));
            }
        };
        match answered {
            Ok(result) => output.print(step, result),
            Err(failure) => {
                plugin.shutdown().await;
                return Err(output.failed(&request.steps, index, failure));
            }
        }
    }
    if request.steps.last().is_none_or(|step| step.method != HostMethod::Shutdown) {
        plugin.shutdown().await;
    }
    Ok(())
}

fn interrupted(signal: &str) -> Failure {
    Failure { message: format!("interrupted by {signal}; the plugin was stopped"), exit_code: 130 }
}

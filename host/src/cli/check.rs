//! `codex-plugin-host check`: runs a plugin through the whole contract, in a throwaway data
//! directory and storage scope, without network by default, and prints the report.

use clap::Args;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::input::{absolute, read_credentials};
use super::launch_args::{Identity, LaunchArgs, host_failure, not_started};
use super::termination::Termination;
use super::{Failure, print_line};
use crate::checker::{self, CheckRequests, Options, PluginTarget};
use crate::conformance::judge::Conditions;
use crate::conformance::report::{Report, Subject};
use crate::host::{Detached, HostConfig, HostError, PluginHost};
use crate::plugin::{Plugin, PluginError};
use crate::protocol::types::initialize::LogLevel;
use crate::sandbox::{NetworkIsolation, Sandbox, SandboxConfig};
use crate::transport::recorder::WireRecorder;

/// Check a plugin against the contract: start it as `call` would, but in a throwaway data
/// directory and storage scope and without network, send it every request its manifest
/// calls for, and print a report (pass, warn, fail, not run) with what to fix. Exit 0 when
/// nothing failed, 1 when something did, 2 for bad input, 3 when the plugin did not start.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    launch: LaunchArgs,
    /// Print the report as JSON, for CI.
    #[arg(long)]
    json: bool,
    /// Also send the methods that change something outside the plugin:
    /// `sync/pushProgress`, `recommendations/dismiss`, `updateProfile` and `clear`.
    #[arg(long)]
    allow_writes: bool,
    /// Let a process plugin use the network; by default it has none (a network namespace
    /// of its own as root, Landlock's TCP rules otherwise), so the report does not depend
    /// on the internet. A wasm plugin reaches only the hosts given with `--allow-http-host`.
    #[arg(long)]
    allow_network: bool,
    /// Credentials, a JSON object of strings sent in `initialize` only, read from FILE, or
    /// from stdin with `-`: never given on the command line, where every user can read it.
    #[arg(long, value_name = "FILE|-")]
    credentials_file: Option<PathBuf>,
    /// Check a registered plugin, started as registered but apart from it: its own
    /// throwaway storage and data directory, its health and metrics untouched.
    #[arg(long, value_name = "ID", conflicts_with_all = ["command", "wasm", "credentials_file"])]
    plugin: Option<String>,
    /// The vault key's file for a registered plugin's credentials; by default
    /// `CODEX_ENCRYPTION_KEY`.
    #[arg(long, value_name = "FILE", requires = "plugin")]
    key_file: Option<PathBuf>,
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| host_failure(format!("could not start the async runtime: {error}")))?;
    let report = runtime.block_on(check(&args))?;
    if args.json {
        print_line(&serde_json::to_string_pretty(&report).expect("a report serializes"));
    } else {
        print_line(report.to_text().trim_end());
    }
    match report.exit_code() {
        0 => Ok(()),
        _ => Err(Failure {
            message: format!("{} of {} checks failed", report.summary.failed, report.checks.len()),
            exit_code: 1,
        }),
    }
}

async fn check(args: &CheckArgs) -> Result<Report, Failure> {
    let data_dir = absolute(&args.launch.data_dir)?;
    crate::host::create_private_dir(&data_dir).map_err(|error| host_failure(error.to_string()))?;
    let scratch = scratch_dir()?;
    let config = SandboxConfig { check_uids_from: Some(data_dir.clone()), ..args.launch.sandbox_config() };
    // The real data directory, and the vault's key file, are the plugin's to never touch.
    let key_file = args.key_file.as_deref().map(absolute).transpose()?;
    let protected = std::iter::once(data_dir.clone()).chain(key_file).collect();
    let sandbox = Sandbox::new(config, scratch.path(), protected);
    let recorder = WireRecorder::new();
    let mut termination = Termination::listen();
    let (id, transport, started, requests) = match &args.plugin {
        Some(plugin) => {
            let host = open_host(args, &data_dir)?;
            let record = host.registry().get(plugin).map_err(|error| Failure::usage(error.to_string()))?;
            let transport = match record.definition.launch {
                crate::registry::Launch::Wasm { .. } => crate::transport::wasm::TRANSPORT,
                crate::registry::Launch::Process { .. } => crate::transport::process::TRANSPORT,
            };
            let requests = CheckRequests::new(plugin);
            let around = recorder.clone();
            let detached = Detached {
                sandbox: &sandbox,
                deny_network: !args.allow_network,
                timeout: args.launch.timeout.map(crate::cli::input::parse_timeout).transpose()?,
                stderr_tap: Some(recorder.stderr_tap()),
                wrap: Box::new(move |launched| around.around(launched)),
                requests: requests.clone(),
            };
            let started = tokio::select! {
                started = host.start_detached(plugin, detached) => started,
                signal = termination.recv() => return Err(interrupted(signal)),
            };
            (record.id.to_string(), transport, started, requests)
        }
        None => {
            let credentials = read_credentials("--credentials-file", args.credentials_file.as_deref())?;
            let id = args.launch.derived_id()?;
            let identity = Identity {
                id: id.clone(),
                credentials,
                log_level: LogLevel::Info,
                http_allowed: true,
                deny_network: !args.allow_network,
            };
            let prepared = args.launch.prepare(&sandbox, identity)?;
            let requests = CheckRequests::new(id.as_str());
            let launched = prepared.launch.start(id.as_str(), Some(recorder.stderr_tap()))?;
            let transport = prepared.launch.transport();
            let starting = Plugin::start(recorder.around(launched), prepared.settings, requests.clone());
            let started = tokio::select! {
                started = starting => started,
                signal = termination.recv() => return Err(interrupted(signal)),
            };
            (id.to_string(), transport, started, requests)
        }
    };
    let conditions =
        Conditions { network_denied: !args.allow_network || transport == crate::transport::wasm::TRANSPORT };
    let network = network(transport, args.allow_network, &args.launch.allow_http_hosts);
    let mut subject = Subject { id, name: None, version: None, transport: transport.into(), network };
    let plugin = match started {
        Ok(plugin) => plugin,
        Err(PluginError::Initialize { source, .. }) if matches!(*source, PluginError::InvalidManifest { .. }) => {
            let PluginError::InvalidManifest { answer, .. } = *source else { unreachable!("matched above") };
            name_subject(&mut subject, &answer);
            return Ok(Report::new(subject, checker::refused_manifest(&answer, &recorder.snapshot())));
        }
        Err(error) => return Err(not_started(&error)),
    };
    let manifest = plugin.manifest().clone();
    let answer = serde_json::to_value(&manifest).expect("a manifest serializes");
    name_subject(&mut subject, &answer);
    let timeout = Some(plugin.timeout_for(crate::protocol::HostMethod::SeriesSearch.name()));
    let options = Options { allow_writes: args.allow_writes, conditions, timeout };
    let target = PluginTarget { plugin, recorder, requests, transport };
    let checks = tokio::select! {
        checks = checker::run(Box::new(target), &manifest, &answer, options) => checks,
        // Dropping the run drops the plugin, which kills it at once.
        signal = termination.recv() => return Err(interrupted(signal)),
    };
    drop(scratch);
    Ok(Report::new(subject, checks))
}

/// The host, for a registered plugin's record, credentials and start.
fn open_host(args: &CheckArgs, data_dir: &Path) -> Result<PluginHost, Failure> {
    let mut config = HostConfig::new(data_dir);
    config.key_file = args.key_file.as_deref().map(absolute).transpose()?;
    config.allowlist = args.launch.allowlist()?;
    config.sandbox = args.launch.sandbox_config();
    PluginHost::open(config).map_err(|error| match error {
        HostError::Vault(error) => Failure::usage(error.to_string()),
        other => host_failure(other.to_string()),
    })
}

fn name_subject(subject: &mut Subject, answer: &serde_json::Value) {
    let text = |key: &str| answer.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
    subject.name = text("name");
    subject.version = text("version");
}

/// How the plugin is kept from the network, in the report's words.
fn network(transport: &str, allow_network: bool, wasm_hosts: &[String]) -> String {
    match (transport == crate::transport::wasm::TRANSPORT, allow_network) {
        (true, false) if wasm_hosts.is_empty() => "none: a wasm plugin reaches no host unless allowed".into(),
        (true, false) => format!("only {}", wasm_hosts.join(", ")),
        (true, true) => "its allowed hosts (--allow-network)".into(),
        (false, false) => format!("none: {}", NetworkIsolation::on_this_host().describe()),
        (false, true) => "allowed (--allow-network)".into(),
    }
}

/// A fresh data root the plugin's own uid can pass through; removed when dropped.
fn scratch_dir() -> Result<tempfile::TempDir, Failure> {
    let dir = tempfile::Builder::new()
        .prefix("codex-plugin-check-")
        .tempdir()
        .map_err(|error| host_failure(format!("could not make a scratch directory: {error}")))?;
    let passable = std::fs::Permissions::from_mode(0o711);
    std::fs::set_permissions(dir.path(), passable).map_err(|error| {
        host_failure(format!("could not open {} to the plugin: {error}", Path::display(dir.path())))
    })?;
    Ok(dir)
}

fn interrupted(signal: &str) -> Failure {
    Failure { message: format!("interrupted by {signal}; the plugin was stopped"), exit_code: 130 }
}

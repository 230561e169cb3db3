//! Process mode: today's Node, npx and Python plugins, unchanged, as child processes.
//!
//! Every plugin is checked against the [`CommandAllowlist`], gets its arguments as a list
//! (never through a shell), starts with an empty environment plus the minimal set of
//! [`environment`], and runs under the host's launcher ([`crate::sandbox::confine`]), which
//! confines it as its [`ProcessSandbox`] says and kills everything it started when it ends.
//! The launcher leads its own process group, which is killed on every exit path.
//! Its stderr goes to `tracing` ([`super::stderr`]); its exit is reported the moment it happens,
//! so pending calls fail at once with the exit status.

pub mod allowlist;
pub mod environment;
mod group;
mod run;

pub use run::{Finished, run_to_completion};

pub use allowlist::{CommandAllowlist, DEFAULT_ALLOWED_COMMANDS};

use nix::sys::signal::Signal;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::{Launched, LineTap, ShutdownPolicy, TransportHandle, stderr};
use crate::dispatch::{CloseReason, ExitSender, ExitSignal, exit_signal};
use crate::sandbox::policy::POLICY_VARIABLE;
use crate::sandbox::{LAUNCHER_SUBCOMMAND, ProcessSandbox, SandboxError};
use environment::HostProvided;
use group::ProcessGroup;

/// The transport's name in messages.
pub const TRANSPORT: &str = "process";

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("command `{command}` is not allowed: {why}; allowed: {allowed}")]
    NotAllowed { command: String, why: String, allowed: String },
    #[error("command `{command}` was not found")]
    NotFound { command: String },
    #[error("could not start `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("plugin `{plugin}` may not start: {source}")]
    Sandbox { plugin: String, source: SandboxError },
}

/// What to run, and where.
#[derive(Debug)]
pub struct ProcessSpec {
    pub command: String,
    /// One entry per argument, passed as they are.
    pub args: Vec<String>,
    /// Variables the admin configured; the blocklist still applies.
    pub env: Vec<(String, String)>,
    /// The plugin's confinement and its private directory (its `HOME`).
    pub sandbox: ProcessSandbox,
    /// Where relative paths in the command line resolve: the caller's directory for an
    /// ad-hoc `call`, the plugin's data directory when nothing else is given.
    pub working_dir: Option<PathBuf>,
    /// A cap on the process's address space (`RLIMIT_AS`), if any. Right for native
    /// plugins; a JavaScript engine reserves far more address space than it uses, so leave
    /// it unset for Node plugins.
    pub memory_limit_bytes: Option<u64>,
}

/// Starts a plugin process, through the launcher.
pub fn spawn(spec: &ProcessSpec, allowlist: &CommandAllowlist, plugin_id: &str) -> Result<Launched, ProcessError> {
    spawn_with_stderr_tap(spec, allowlist, plugin_id, None)
}

/// [`spawn`], with every stderr line also handed to `stderr_tap` as it is read.
pub fn spawn_with_stderr_tap(
    spec: &ProcessSpec,
    allowlist: &CommandAllowlist,
    plugin_id: &str,
    stderr_tap: Option<LineTap>,
) -> Result<Launched, ProcessError> {
    let (command, program) = launcher_command(spec, allowlist, plugin_id)?;
    let mut command = Command::from(command);
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| ProcessError::Spawn { command: spec.command.clone(), source })?;
    let group = child.id().and_then(ProcessGroup::led_by);
    let leftovers = group.clone();
    let (input, output, errors) = match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
        (Some(input), Some(output), Some(errors)) => (input, output, errors),
        _ => unreachable!("all three streams were configured as pipes"),
    };
    tracing::debug!(plugin = plugin_id, pid = child.id(), program = %program.display(), "started plugin process");
    let plugin_label = plugin_id.to_owned();
    let stderr = tokio::spawn(async move {
        stderr::forward(errors, plugin_label, stderr_tap).await;
    });
    let (exit_sender, exit) = exit_signal();
    let monitor = tokio::spawn(watch_exit(child, leftovers, exit_sender, plugin_id.to_owned()));
    let handle = ProcessHandle { group, exit: exit.clone(), monitor, stderr };
    Ok(Launched { input: Box::new(input), output: Box::new(output), exit, handle: TransportHandle::Process(handle) })
}

/// The launcher's command for `spec`, streams left to the caller: an empty environment plus
/// the plugin's, the policy, the working directory, a process group of its own. Returns the
/// program the launcher will run, resolved.
fn launcher_command(
    spec: &ProcessSpec,
    allowlist: &CommandAllowlist,
    plugin_id: &str,
) -> Result<(std::process::Command, PathBuf), ProcessError> {
    let program = allowlist.resolve(&spec.command)?;
    let sandbox = &spec.sandbox;
    let working_dir = spec.working_dir.clone().unwrap_or_else(|| sandbox.data_dir().to_path_buf());
    let refused = |source| ProcessError::Sandbox { plugin: plugin_id.to_owned(), source };
    let policy = sandbox.launch_policy(&program, &spec.args, &working_dir, spec.memory_limit_bytes).map_err(refused)?;
    let temp = sandbox.temp_dir();
    let provided = HostProvided { home: sandbox.data_dir(), temp: Some(&temp), command_dir: program.parent() };
    let environment = environment::plugin_environment(&spec.env, &provided);
    tracing::info!(plugin = plugin_id, uid = sandbox.uid(), "sandbox: {}", sandbox.plan().describe());
    let mut command = std::process::Command::new(sandbox.launcher());
    command
        .arg(LAUNCHER_SUBCOMMAND)
        .env_clear()
        .envs(environment)
        .env(POLICY_VARIABLE, serde_json::to_string(&policy).expect("a policy serializes"))
        .current_dir(&working_dir)
        .process_group(0);
    Ok((command, program))
}

/// Waits for the child, reports how it ended, then kills whatever is left of its group.
async fn watch_exit(mut child: Child, leftovers: Option<ProcessGroup>, exit: ExitSender, plugin: String) {
    let reason = match child.wait().await {
        Ok(status) => describe(status),
        Err(error) => format!("could not be waited for: {error}"),
    };
    // A grandchild holding the pipes open would hide the exit from the reader.
    if let Some(group) = &leftovers {
        group.kill_remains();
    }
    tracing::debug!(plugin = %plugin, "plugin process {reason}");
    exit.send_replace(Some(CloseReason::Exited(reason)));
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => {
            let name = Signal::try_from(signal).map(|signal| signal.as_str()).unwrap_or("unknown signal");
            format!("was killed by signal {signal} ({name})")
        }
        _ => format!("ended ({status})"),
    }
}

/// A running plugin process. Dropping it kills the whole process group.
pub struct ProcessHandle {
    group: Option<ProcessGroup>,
    exit: ExitSignal,
    monitor: JoinHandle<()>,
    stderr: JoinHandle<()>,
}

impl ProcessHandle {
    /// The process group id, which is also the plugin's pid.
    pub fn process_group(&self) -> Option<i32> {
        self.group.as_ref().map(ProcessGroup::id)
    }

    pub(crate) async fn wait_for_exit(&mut self, grace: Duration) -> bool {
        super::exited_within(&mut self.exit, grace).await
    }

    /// SIGTERM to the group, then SIGKILL after the policy's wait; then reaps. The input
    /// has already been closed by the caller.
    pub(crate) async fn terminate(&mut self, policy: &ShutdownPolicy) {
        if !self.wait_for_exit(Duration::ZERO).await {
            if let Some(group) = &self.group {
                group.signal(Signal::SIGTERM);
            }
            if !self.wait_for_exit(policy.after_terminate).await {
                if let Some(group) = &self.group {
                    group.signal(Signal::SIGKILL);
                }
                self.wait_for_exit(Duration::from_secs(5)).await;
            }
        }
        // The leader is gone; its grandchildren may not be.
        if let Some(group) = &self.group {
            group.signal(Signal::SIGKILL);
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.stderr).await;
    }
}

impl Drop for ProcessHandle {
    fn drop(&mut self) {
        // Every member gets SIGKILL, and the id is marked gone for the monitor's copy.
        if let Some(group) = self.group.take() {
            group.kill_remains();
        }
        self.monitor.abort();
        self.stderr.abort();
    }
}

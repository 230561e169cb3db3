//! A confined command run to its end, for the host's own work in a plugin's sandbox (an
//! npm install): no protocol, its output kept for the error message, a deadline.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::group::ProcessGroup;
use super::{CommandAllowlist, ProcessError, ProcessSpec, describe, launcher_command};

/// How much of each stream is kept: the end, where a tool says what went wrong.
const KEPT_BYTES: usize = 16 * 1024;

/// How a command run to its end ended.
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    /// `exited with status 1`, `was killed by signal 9 (SIGKILL)`, or that the deadline passed.
    pub outcome: String,
    /// The last 16 KiB of its stdout and stderr.
    pub stdout: String,
    pub stderr: String,
}

/// Runs `spec` through the launcher with no input until it ends, or kills it and
/// everything it started once `deadline` has passed.
pub async fn run_to_completion(
    spec: &ProcessSpec,
    allowlist: &CommandAllowlist,
    plugin_id: &str,
    deadline: Duration,
) -> Result<Finished, ProcessError> {
    let (command, _) = launcher_command(spec, allowlist, plugin_id)?;
    let mut command = Command::from(command);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| ProcessError::Spawn { command: spec.command.clone(), source })?;
    let group = child.id().and_then(ProcessGroup::led_by);
    let stdout = tokio::spawn(tail(child.stdout.take()));
    let stderr = tokio::spawn(tail(child.stderr.take()));
    let outcome = match tokio::time::timeout(deadline, child.wait()).await {
        Ok(Ok(status)) => (status.success(), describe(status)),
        Ok(Err(error)) => (false, format!("could not be waited for: {error}")),
        Err(_) => {
            if let Some(group) = &group {
                group.kill_remains();
            }
            let _ = child.wait().await;
            (false, format!("did not finish within {} s and was stopped", deadline.as_secs()))
        }
    };
    if let Some(group) = &group {
        group.kill_remains();
    }
    let stdout = stdout.await.unwrap_or_default();
    let stderr = stderr.await.unwrap_or_default();
    Ok(Finished { success: outcome.0, outcome: outcome.1, stdout, stderr })
}

/// Reads a stream to its end, keeping its last [`KEPT_BYTES`].
async fn tail(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else { return String::new() };
    let mut kept = Vec::new();
    let mut buffer = [0u8; 8192];
    while let Ok(read) = stream.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..read]);
        if kept.len() > KEPT_BYTES {
            kept.drain(..kept.len() - KEPT_BYTES);
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

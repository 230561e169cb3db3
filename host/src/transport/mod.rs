//! How a plugin is started and stopped: as a child process ([`process`]) or as a
//! WebAssembly component in this process ([`wasm`]). A transport yields the plugin's input
//! and output streams and an exit signal; everything else (framing, correlation, timeouts,
//! quotas, stderr logging) is shared and lives in [`crate::dispatch`], [`crate::limits`]
//! and [`stderr`].

pub mod process;
pub mod recorder;
pub mod stderr;
pub mod wasm;

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::dispatch::ExitSignal;

/// Sees each line of a plugin's stream as it is read, before anything else is done with it.
pub type LineTap = std::sync::Arc<dyn Fn(&[u8]) + Send + Sync>;

/// A started plugin: its byte streams, its exit signal, and the handle that stops it.
pub struct Launched {
    pub input: Box<dyn AsyncWrite + Send + Unpin>,
    pub output: Box<dyn AsyncRead + Send + Unpin>,
    pub exit: ExitSignal,
    pub handle: TransportHandle,
}

/// The transport-specific half of a running plugin. Dropping it kills the plugin.
pub enum TransportHandle {
    Process(process::ProcessHandle),
    Wasm(wasm::WasmHandle),
}

impl TransportHandle {
    /// What the dispatcher calls on each usable message: the wasm watchdog's progress (a
    /// process has no watchdog; its calls time out).
    pub fn progress_hook(&self) -> Option<crate::dispatch::ProgressHook> {
        match self {
            TransportHandle::Process(_) => None,
            TransportHandle::Wasm(handle) => Some(handle.progress_hook()),
        }
    }
}

impl TransportHandle {
    /// The transport's name in messages: "process", "wasm".
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Process(_) => process::TRANSPORT,
            Self::Wasm(_) => wasm::TRANSPORT,
        }
    }

    /// The operating-system process (and process group) id, for a process plugin.
    pub fn process_id(&self) -> Option<i32> {
        match self {
            Self::Process(process) => process.process_group(),
            Self::Wasm(_) => None,
        }
    }

    /// Waits up to `grace` for the plugin to end by itself; `true` if it did.
    pub async fn wait_for_exit(&mut self, grace: Duration) -> bool {
        match self {
            Self::Process(process) => process.wait_for_exit(grace).await,
            Self::Wasm(guest) => guest.wait_for_exit(grace).await,
        }
    }

    /// Ends the plugin by force, escalating as the transport can (SIGTERM, then SIGKILL of
    /// the whole process group), and waits until it is gone.
    pub async fn terminate(&mut self, policy: &ShutdownPolicy) {
        match self {
            Self::Process(process) => process.terminate(policy).await,
            Self::Wasm(guest) => guest.terminate().await,
        }
    }
}

/// Waits up to `grace` for the plugin to end; `true` if it has. One definition for every
/// transport: each reports its end through the same kind of signal.
pub(crate) async fn exited_within(exit: &mut ExitSignal, grace: Duration) -> bool {
    tokio::time::timeout(grace, exit.wait_for(Option::is_some)).await.is_ok()
}

/// How long each step of a shutdown may take: the `shutdown` request and the wait for a
/// voluntary exit (grace), then closing the input, then SIGTERM, then SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownPolicy {
    /// For the `shutdown` answer and the exit that follows it.
    pub grace: Duration,
    /// After the input is closed.
    pub after_close_input: Duration,
    /// After SIGTERM, before SIGKILL.
    pub after_terminate: Duration,
}

impl Default for ShutdownPolicy {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(5),
            after_close_input: Duration::from_secs(1),
            after_terminate: Duration::from_secs(2),
        }
    }
}

//! The plugin's own process group, killed on every exit path.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A process group led by the plugin's launcher ([`crate::sandbox::confine`]). "Kill" is
/// said to the launcher with SIGUSR1: it kills the plugin and every descendant (a `setsid`
/// child too) and ends; SIGKILL would end the launcher alone and leave them behind.
/// Dropping any handle to the group says "kill", so a grandchild (the `node` under `npx`)
/// never outlives the plugin.
///
/// Once every member has been killed (or a signal finds the group empty), the handles stop
/// signalling it: after its leader is reaped the id may one day lead an unrelated group,
/// which must never be hit.
#[derive(Debug, Clone)]
pub struct ProcessGroup {
    id: Pid,
    gone: Arc<AtomicBool>,
}

impl ProcessGroup {
    /// The group of a child started with `process_group(0)`: its id is the child's pid.
    pub fn led_by(pid: u32) -> Option<Self> {
        let id = i32::try_from(pid).ok().filter(|pid| *pid > 1)?;
        Some(Self { id: Pid::from_raw(id), gone: Arc::new(AtomicBool::new(false)) })
    }

    pub fn id(&self) -> i32 {
        self.id.as_raw()
    }

    /// Sends `signal` to every process of the group (SIGKILL is said as the launcher's
    /// SIGUSR1); a group already gone is not an error.
    pub fn signal(&self, signal: Signal) {
        if self.gone.load(Ordering::Acquire) {
            return;
        }
        let signal = if signal == Signal::SIGKILL { Signal::SIGUSR1 } else { signal };
        match killpg(self.id, signal) {
            Ok(()) => {}
            Err(nix::errno::Errno::ESRCH) => self.gone.store(true, Ordering::Release),
            Err(error) => {
                tracing::warn!(
                    group = self.id.as_raw(),
                    "sending {signal} to the plugin's process group failed: {error}"
                )
            }
        }
    }

    /// Kills what is left of the group after its leader ended. Every member gets SIGKILL,
    /// so the id is never signalled again.
    pub fn kill_remains(&self) {
        self.signal(Signal::SIGKILL);
        self.gone.store(true, Ordering::Release);
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

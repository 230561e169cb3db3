//! The plugin's own process group, killed on every exit path.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A process group led by the plugin. Dropping it sends SIGKILL to the whole group, so a
/// grandchild (the `node` under `npx`) never outlives the plugin.
#[derive(Debug)]
pub struct ProcessGroup {
    id: Pid,
}

impl ProcessGroup {
    /// The group of a child started with `process_group(0)`: its id is the child's pid.
    pub fn led_by(pid: u32) -> Option<Self> {
        i32::try_from(pid).ok().filter(|pid| *pid > 1).map(|pid| Self { id: Pid::from_raw(pid) })
    }

    pub fn id(&self) -> i32 {
        self.id.as_raw()
    }

    /// Sends `signal` to every process of the group; a group already gone is not an error.
    pub fn signal(&self, signal: Signal) {
        match killpg(self.id, signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(error) => tracing::warn!(
                group = self.id.as_raw(),
                "sending {signal} to the plugin's process group failed: {error}"
            ),
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

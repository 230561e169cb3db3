//! The plugin's own PID namespace, where the kernel allows one (a root host; a container's
//! seccomp profile may still refuse it, and then descendants are killed one by one).
//!
//! The launcher's child is the namespace's first process: a small init of ours that starts
//! the plugin as its own child, passes signals on to it, reaps what the kernel hands it, and
//! when the plugin ends sends the plugin's status to the launcher and ends. Its end ends the
//! namespace: the kernel kills every process left in it at once, however deep or fast they
//! fork. It also dies with the launcher (a parent-death signal), and so does the namespace.

use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal, killpg};
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Pid, fork, setpgid};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use super::confine::{reap, refuse};

/// Puts the launcher's next child in a new PID namespace; whether it could.
pub(super) fn enter() -> bool {
    match unshare(CloneFlags::CLONE_NEWPID) {
        Ok(()) => true,
        Err(error) => {
            eprintln!("sandbox: no PID namespace ({error}); the plugin's descendants are killed one by one");
            false
        }
    }
}

/// Runs the namespace's init: `start` confines and execs the plugin in a child, and returns
/// only with why it failed. The plugin's status goes to `status`.
pub(super) fn run_init(start: impl FnOnce() -> String, handled: &SigSet, status: OwnedFd) -> ! {
    if let Err(error) = prctl::set_pdeathsig(Signal::SIGKILL) {
        refuse(&format!("could not set the namespace's parent-death signal: {error}"));
    }
    // The launcher's parent is outside the namespace, so `getppid` cannot tell whether it
    // died before the line above: the status pipe can (no reader left).
    if launcher_gone(&status) {
        refuse("the launcher is gone");
    }
    // A group of its own: the host's signals to the launcher's group reach the plugin once,
    // through the launcher, not a second time through the init.
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // SAFETY: single-threaded, like the launcher it was forked from.
    let plugin = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(status);
            refuse(&start())
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(error) => refuse(&format!("could not fork: {error}")),
    };
    // Its group exists before any signal is passed on (the plugin also sets it itself).
    let _ = setpgid(plugin, plugin);
    super::confine::let_go_of_stdio();
    loop {
        match handled.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(ended) = reap(plugin) {
                    // The namespace's orphans are the init's children: what the plugin left.
                    // They are killed before the count is said, so none can write after it.
                    let left = std::fs::read_to_string("/proc/thread-self/children").unwrap_or_default();
                    let _ = nix::sys::signal::kill(Pid::from_raw(-1), Signal::SIGKILL);
                    super::confine::report_leftovers(left.split_whitespace().count());
                    send_status(status, ended);
                    std::process::exit(0);
                }
            }
            Ok(Signal::SIGUSR1) | Err(_) => {}
            Ok(other) => {
                if killpg(plugin, other).is_err() {
                    let _ = nix::sys::signal::kill(plugin, other);
                }
            }
        }
    }
}

/// Whether the status pipe has no reader: the launcher has ended.
fn launcher_gone(status: &OwnedFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut watched = [PollFd::new(status.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut watched, PollTimeout::ZERO) {
        Ok(_) => watched[0].revents().is_some_and(|events| events.contains(PollFlags::POLLERR)),
        Err(_) => false,
    }
}

fn send_status(status: OwnedFd, ended: WaitStatus) {
    let (kind, value) = match ended {
        WaitStatus::Exited(_, code) => (0i32, code),
        WaitStatus::Signaled(_, signal, _) => (1, signal as i32),
        _ => (0, super::confine::REFUSED),
    };
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&kind.to_le_bytes());
    bytes[4..].copy_from_slice(&value.to_le_bytes());
    let _ = std::fs::File::from(status).write_all(&bytes);
}

/// The plugin's status, as the namespace's init sent it, once that init has ended.
pub(super) fn received_status(status: &OwnedFd, plugin: Pid) -> Option<WaitStatus> {
    let mut bytes = [0u8; 8];
    let mut file = std::fs::File::from(status.try_clone().ok()?);
    file.read_exact(&mut bytes).ok()?;
    let kind = i32::from_le_bytes(bytes[..4].try_into().ok()?);
    let value = i32::from_le_bytes(bytes[4..].try_into().ok()?);
    match kind {
        0 => Some(WaitStatus::Exited(plugin, value)),
        _ => Signal::try_from(value).ok().map(|signal| WaitStatus::Signaled(plugin, signal, false)),
    }
}

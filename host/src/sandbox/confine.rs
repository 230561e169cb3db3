//! The launcher: `codex-plugin-host sandbox-exec`, the host's own binary run between the
//! host and each process plugin. Single-threaded, with nothing async in it, it applies the
//! layers to itself and to the plugin it forks, then stays as the plugin's parent:
//!
//! - itself: not dumpable, a child subreaper (orphaned descendants of the plugin become its
//!   children), ended with everything below it if the host goes away;
//! - the plugin, between fork and exec: its own process group, the launcher's working
//!   directory, then (as root) no supplementary groups and its own uid and gid, a parent-death
//!   signal, its private `tmp/`, the memory limit, `no_new_privs`, the Landlock ruleset;
//! - afterwards: SIGTERM, SIGINT, SIGHUP and SIGQUIT are passed on to the plugin's group;
//!   SIGUSR1 (the host's "kill") kills every descendant at once; when the plugin ends, every
//!   descendant left (a `setsid` child too) is killed, and the launcher ends as the plugin
//!   did, so the host sees the plugin's own exit status.
//!
//! A layer the plan asked for that cannot be applied stops the start: the plugin never runs
//! with less than was reported. Messages go to stderr, `sandbox: …`, and the exit status is
//! [`REFUSED`].

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope,
};
use nix::sys::prctl;
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, killpg, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork, getpid, getppid, setgroups, setpgid, setresgid, setresuid};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use super::policy::{FsRules, LaunchPolicy, POLICY_VARIABLE};

/// The launcher's exit status when the plugin could not be started as planned.
pub const REFUSED: i32 = 126;

/// The signals the launcher handles itself.
fn handled() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGCHLD] {
        set.add(signal);
    }
    set
}

/// Runs the launcher: never returns.
pub fn run() -> ! {
    let policy = match read_policy() {
        Ok(policy) => policy,
        Err(why) => refuse(&why),
    };
    let handled = handled();
    if let Err(error) = prepare_launcher(&policy, &handled) {
        refuse(&error);
    }
    let environment = plugin_environment();
    // SAFETY: the launcher is single-threaded (started by exec, no runtime), so the child
    // may allocate and run ordinary code before its exec.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let why = start_plugin(&policy, &handled, &environment);
            refuse(&why)
        }
        Ok(ForkResult::Parent { child }) => supervise(child, &handled),
        Err(error) => refuse(&format!("could not fork: {error}")),
    }
}

fn refuse(why: &str) -> ! {
    eprintln!("sandbox: {why}");
    std::process::exit(REFUSED)
}

fn read_policy() -> Result<LaunchPolicy, String> {
    let text = std::env::var(POLICY_VARIABLE)
        .map_err(|_| "this command is run by the host for each process plugin; it is not for direct use".to_owned())?;
    serde_json::from_str(&text).map_err(|error| format!("unreadable policy: {error}"))
}

/// The launcher's environment, less the policy: the plugin's.
fn plugin_environment() -> Vec<CString> {
    std::env::vars_os()
        .filter(|(name, _)| name != POLICY_VARIABLE)
        .filter_map(|(name, value)| {
            let mut pair = name.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            CString::new(pair).ok()
        })
        .collect()
}

fn prepare_launcher(policy: &LaunchPolicy, handled: &SigSet) -> Result<(), String> {
    prctl::set_dumpable(false).map_err(|error| format!("could not make the launcher undumpable: {error}"))?;
    prctl::set_child_subreaper(true).map_err(|error| format!("could not become a child subreaper: {error}"))?;
    prctl::set_pdeathsig(Signal::SIGUSR1).map_err(|error| format!("could not set a parent-death signal: {error}"))?;
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(handled), None)
        .map_err(|error| format!("could not block signals: {error}"))?;
    if getppid().as_raw() != policy.host_pid {
        return Err("the host is gone".into());
    }
    Ok(())
}

/// In the forked child: everything up to the plugin's exec. Returns only on failure.
fn start_plugin(policy: &LaunchPolicy, handled: &SigSet, environment: &[CString]) -> String {
    let launcher = getppid();
    if let Err(error) = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(handled), None) {
        return format!("could not unblock signals: {error}");
    }
    if let Err(error) = setpgid(Pid::from_raw(0), Pid::from_raw(0)) {
        return format!("could not start a process group: {error}");
    }
    if let Err(error) = std::env::set_current_dir(&policy.working_dir) {
        return format!("could not enter {}: {error}", policy.working_dir.display());
    }
    // Built as root, before the uid changes: the rules' paths are opened here.
    let ruleset = match &policy.landlock {
        Some(rules) => match ruleset(rules) {
            Ok(ruleset) => Some(ruleset),
            Err(why) => return why,
        },
        None => None,
    };
    if let Some(uid) = policy.uid {
        let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(uid));
        if let Err(error) =
            setgroups(&[]).and_then(|()| setresgid(gid, gid, gid)).and_then(|()| setresuid(uid, uid, uid))
        {
            return format!("could not switch to the plugin's uid {uid}: {error}");
        }
    }
    // Set after the uid change, which clears it.
    if let Err(error) = prctl::set_pdeathsig(Signal::SIGKILL) {
        return format!("could not set a parent-death signal: {error}");
    }
    if getppid() != launcher {
        return "the launcher is gone".into();
    }
    match std::fs::create_dir(policy.data_dir.join("tmp")) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return format!("could not create the plugin's tmp/ in {}: {error}", policy.data_dir.display()),
    }
    if let Some(limit) = policy.memory_limit_bytes
        && let Err(error) = setrlimit(Resource::RLIMIT_AS, limit, limit)
    {
        return format!("could not set the memory limit: {error}");
    }
    if let Err(error) = prctl::set_no_new_privs() {
        return format!("could not set no_new_privs: {error}");
    }
    if let Some(ruleset) = ruleset {
        match ruleset.restrict_self() {
            Ok(status) if status.ruleset != RulesetStatus::NotEnforced => {}
            Ok(_) => return "Landlock was planned but the kernel enforced none of it".into(),
            Err(error) => return format!("could not apply Landlock: {error}"),
        }
    }
    let program = match CString::new(policy.program.as_os_str().as_bytes()) {
        Ok(program) => program,
        Err(_) => return "the program's path contains NUL".into(),
    };
    let mut args = vec![program.clone()];
    for arg in &policy.args {
        match CString::new(arg.as_bytes()) {
            Ok(arg) => args.push(arg),
            Err(_) => return format!("argument {arg:?} contains NUL"),
        }
    }
    let error = nix::unistd::execve(&program, &args, environment).unwrap_err();
    let hint = match (error, policy.uid) {
        (nix::errno::Errno::EACCES, Some(uid)) => format!(
            " (the plugin's uid {uid} cannot reach it: install plugins where every user can read them, not under /root or another private directory)"
        ),
        _ => String::new(),
    };
    format!("could not run {}: {error}{hint}", policy.program.display())
}

/// Landlock rules from the policy: the access rights of the newest ABI this crate knows,
/// applied best-effort by the kernel's ABI, plus signal and abstract-socket scoping where
/// the kernel has them (the plugin can then signal nothing outside its sandbox: not the
/// host, not the launcher).
fn ruleset(rules: &FsRules) -> Result<landlock::RulesetCreated, String> {
    let abi = ABI::V6;
    let failed = |error: landlock::RulesetError| format!("could not build the Landlock ruleset: {error}");
    let read_execute = AccessFs::from_read(abi);
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev;
    let mut created = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|ruleset| ruleset.scope(Scope::from_all(abi)))
        .and_then(Ruleset::create)
        .map_err(failed)?;
    let own_proc = format!("/proc/{}", getpid());
    let groups = [
        (rules.read_execute.clone(), read_execute),
        (rules.read.iter().cloned().chain([own_proc.into()]).collect(), read),
        (rules.devices.clone(), device),
        (rules.private.clone(), AccessFs::from_all(abi)),
    ];
    for (paths, access) in groups {
        for path in paths {
            let Ok(fd) = PathFd::new(&path) else { continue };
            // A file gets only the rights that apply to files.
            let access = if path.is_dir() { access } else { access & AccessFs::from_file(abi) };
            created = created.add_rule(PathBeneath::new(fd, access)).map_err(failed)?;
        }
    }
    Ok(created)
}

/// The launcher's life after the fork: wait, pass signals on, clean up, end as the plugin.
fn supervise(plugin: Pid, handled: &SigSet) -> ! {
    // The pipes belong to the plugin; holding them would hide its end from the host.
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
    }
    loop {
        let signal = match handled.wait() {
            Ok(signal) => signal,
            Err(_) => continue,
        };
        match signal {
            Signal::SIGCHLD => {
                if let Some(status) = reap(plugin) {
                    kill_descendants(plugin);
                    end_as(status);
                }
            }
            Signal::SIGUSR1 => {
                kill_descendants(plugin);
                end_as(WaitStatus::Signaled(plugin, Signal::SIGKILL, false));
            }
            other => {
                let _ = killpg(plugin, other);
            }
        }
    }
}

/// Reaps every child that ended; the plugin's status once it is among them.
fn reap(plugin: Pid) -> Option<WaitStatus> {
    let mut ended = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return ended,
            Ok(status) if status.pid() == Some(plugin) => ended = Some(status),
            Ok(_) => {}
        }
    }
}

/// Kills the plugin's group and every process below the launcher, round after round, until
/// none is left: a killed child's own children become the launcher's, and are next.
fn kill_descendants(plugin: Pid) {
    let _ = killpg(plugin, Signal::SIGKILL);
    let children_file = format!("/proc/self/task/{}/children", getpid());
    for _ in 0..10_000 {
        let children: Vec<Pid> = std::fs::read_to_string(&children_file)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .map(Pid::from_raw)
            .collect();
        for child in &children {
            let _ = kill(*child, Signal::SIGKILL);
        }
        let mut reaped = false;
        while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if status == WaitStatus::StillAlive {
                break;
            }
            reaped = true;
        }
        if children.is_empty() && !reaped {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Err(nix::errno::Errno::ECHILD) => return,
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        } else if !reaped {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Ends the launcher the way the plugin ended.
fn end_as(status: WaitStatus) -> ! {
    match status {
        WaitStatus::Exited(_, code) => std::process::exit(code),
        WaitStatus::Signaled(_, signal, _) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            // SAFETY: restoring the default action of a signal, in a single-threaded process
            // about to end.
            unsafe {
                let _ = nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl);
            }
            let _ = nix::sys::signal::raise(signal);
            std::process::exit(128 + signal as i32)
        }
        _ => std::process::exit(REFUSED),
    }
}

/// The kernel's Landlock ABI, if Landlock is enabled: the documented version query, which
/// restricts nothing.
pub fn landlock_abi() -> Option<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: with a null attribute and a zero size the kernel reads no memory.
    let version = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(version).ok().filter(|version| *version > 0)
}

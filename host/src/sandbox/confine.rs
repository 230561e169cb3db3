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
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};
use nix::sys::prctl;
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, killpg, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork, getpid, getppid, setgroups, setpgid, setresgid, setresuid};
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use super::pid_namespace;
use super::policy::{FsRules, LaunchPolicy, POLICY_VARIABLE};

/// Processes and threads all instances of one plugin's uid may have at once.
const MAX_PROCESSES: u64 = 4096;

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
    // Where namespaces are allowed: the kernel, not the launcher, ends what the plugin leaves.
    let namespace = if Uid::effective().is_root() && pid_namespace::enter() {
        match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(pipe) => Some(pipe),
            Err(error) => refuse(&format!("could not make a pipe: {error}")),
        }
    } else {
        None
    };
    // SAFETY: the launcher is single-threaded (started by exec, no runtime), so the child
    // may allocate and run ordinary code before its exec.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let start = || start_plugin(&policy, &handled, &environment);
            match namespace {
                Some((read, write)) => {
                    drop(read);
                    pid_namespace::run_init(start, &handled, write)
                }
                None => refuse(&start()),
            }
        }
        Ok(ForkResult::Parent { child }) => supervise(child, &handled, namespace.map(|(read, _)| read)),
        Err(error) => refuse(&format!("could not fork: {error}")),
    }
}

/// Says why the plugin could not start, and ends with [`REFUSED`].
pub(super) fn refuse(why: &str) -> ! {
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
    match confine_child(policy, handled) {
        Ok(()) => exec(policy, environment),
        Err(why) => why,
    }
}

fn confine_child(policy: &LaunchPolicy, handled: &SigSet) -> Result<(), String> {
    let launcher = getppid();
    sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(handled), None)
        .map_err(|error| format!("could not unblock signals: {error}"))?;
    setpgid(Pid::from_raw(0), Pid::from_raw(0)).map_err(|error| format!("could not start a process group: {error}"))?;
    // Built before the uid changes: the rules' paths are opened here.
    let isolation = super::NetworkIsolation::on_this_host();
    let deny_tcp = policy.deny_network && isolation == super::NetworkIsolation::LandlockTcp;
    if deny_tcp && landlock_abi().is_none_or(|abi| abi < NET_ABI) {
        return Err("no network was asked for, but this kernel's Landlock cannot take TCP away (ABI 4 or later is needed), and only a root host can give the plugin a network namespace; run the host as root, or allow the network (`check --allow-network`)".into());
    }
    let ruleset = match (&policy.landlock, deny_tcp) {
        (Some(rules), deny_tcp) => Some(ruleset(rules, deny_tcp)?),
        (None, true) => Some(tcp_only_ruleset()?),
        (None, false) => None,
    };
    if policy.deny_network && isolation == super::NetworkIsolation::Namespace {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|error| {
            format!("could not give the plugin a network namespace of its own ({error}: a container may forbid it); allow the network (`check --allow-network`), or run the host where namespaces are allowed")
        })?;
    }
    if let Some(uid) = policy.uid {
        let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(uid));
        setgroups(&[])
            .and_then(|()| setresgid(gid, gid, gid))
            .and_then(|()| setresuid(uid, uid, uid))
            .map_err(|error| format!("could not switch to the plugin's uid {uid}: {error}"))?;
    } else if policy.drop_capabilities {
        drop_capabilities()?;
    }
    // Set after the uid change, which clears it.
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(|error| format!("could not set a parent-death signal: {error}"))?;
    if getppid() != launcher {
        return Err("the launcher is gone".into());
    }
    enter_working_dir(policy)?;
    match std::fs::create_dir(policy.data_dir.join("tmp")) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => {
            return Err(format!("could not create the plugin's tmp/ in {}: {error}", policy.data_dir.display()));
        }
    }
    // A uid of its own: its processes (threads included) are counted, so a fork bomb stops
    // at a number the launcher can kill.
    if policy.uid.is_some() {
        setrlimit(Resource::RLIMIT_NPROC, MAX_PROCESSES, MAX_PROCESSES)
            .map_err(|error| format!("could not limit the plugin's processes: {error}"))?;
    }
    if let Some(limit) = policy.memory_limit_bytes {
        setrlimit(Resource::RLIMIT_AS, limit, limit)
            .map_err(|error| format!("could not set the memory limit: {error}"))?;
    }
    prctl::set_no_new_privs().map_err(|error| format!("could not set no_new_privs: {error}"))?;
    if let Some(ruleset) = ruleset {
        match ruleset.restrict_self() {
            Ok(status) if status.ruleset != RulesetStatus::NotEnforced => {}
            Ok(_) => return Err("Landlock was planned but the kernel enforced none of it".into()),
            Err(error) => return Err(format!("could not apply Landlock: {error}")),
        }
    }
    Ok(())
}

/// Enters the working directory as the plugin's own user, so it reaches no folder by it
/// that it could not reach by path; one it cannot enter leaves it in its data directory.
fn enter_working_dir(policy: &LaunchPolicy) -> Result<(), String> {
    if std::env::set_current_dir(&policy.working_dir).is_ok() {
        return Ok(());
    }
    eprintln!("sandbox: the plugin cannot enter {}; it runs in its data directory", policy.working_dir.display());
    std::env::set_current_dir(&policy.data_dir)
        .map_err(|error| format!("could not enter {}: {error}", policy.data_dir.display()))
}

/// A plugin left as root (an admin turned separate uids off) keeps none of root's
/// capabilities: the bounding set, the ambient set and its own sets are emptied, so no
/// exec gives any back.
fn drop_capabilities() -> Result<(), String> {
    let failed = |what: &str, error: nix::errno::Errno| format!("could not drop {what}: {error}");
    for capability in 0..64 {
        // SAFETY: PR_CAPBSET_DROP takes a capability number; past the last one it fails.
        if unsafe { nix::libc::prctl(nix::libc::PR_CAPBSET_DROP, capability, 0, 0, 0) } != 0 {
            let error = nix::errno::Errno::last();
            if error == nix::errno::Errno::EINVAL {
                break;
            }
            return Err(failed("the capability bounding set", error));
        }
    }
    // SAFETY: clears the ambient set; takes no pointers.
    unsafe { nix::libc::prctl(nix::libc::PR_CAP_AMBIENT, nix::libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header { version: VERSION_3, pid: 0 };
    let none = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: capset reads one header and two data records, which live on this stack.
    if unsafe { nix::libc::syscall(nix::libc::SYS_capset, &header, none.as_ptr()) } != 0 {
        return Err(failed("the capabilities", nix::errno::Errno::last()));
    }
    Ok(())
}

/// Execs the plugin with no descriptor but its stdio; returns only on failure.
fn exec(policy: &LaunchPolicy, environment: &[CString]) -> String {
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
    // Whatever the host's own caller left open is not the plugin's.
    // SAFETY: closes descriptors from 3 up; takes no pointers.
    unsafe { nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
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
fn ruleset(rules: &FsRules, deny_tcp: bool) -> Result<landlock::RulesetCreated, String> {
    // No device nodes in the private directory, whatever the plugin's privileges.
    let private = AccessFs::from_all(ABI::V6) & !(AccessFs::MakeChar | AccessFs::MakeBlock);
    let abi = ABI::V6;
    let failed = |error: landlock::RulesetError| format!("could not build the Landlock ruleset: {error}");
    let read_execute = AccessFs::from_read(abi);
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|ruleset| ruleset.scope(Scope::from_all(abi)))
        .map_err(failed)?;
    if deny_tcp {
        // Handled with no rule: no port may be bound or connected to.
        ruleset = ruleset.handle_access(AccessNet::from_all(abi)).map_err(failed)?;
    }
    let mut created = ruleset.create().map_err(failed)?;
    // Its own `/proc/<pid>`, whatever its pid is called in the namespace it runs in.
    let own_proc = "/proc/self".to_owned();
    let groups = [
        (rules.read_execute.clone(), read_execute),
        (rules.read.iter().cloned().chain([own_proc.into()]).collect(), read),
        (rules.devices.clone(), device),
        (rules.private.clone(), private),
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

/// The Landlock ABI that added TCP rules.
const NET_ABI: u32 = 4;

/// A ruleset that only takes TCP away: for a plugin without network whose file rules were
/// turned off.
fn tcp_only_ruleset() -> Result<landlock::RulesetCreated, String> {
    Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessNet::from_all(ABI::V6))
        .and_then(Ruleset::create)
        .map_err(|error| format!("could not build the Landlock ruleset: {error}"))
}

/// The launcher's life after the fork: wait, pass signals on, clean up, end as the plugin.
/// `child` is the plugin, or, in a PID namespace, the namespace's init, which sends the
/// plugin's status on `namespace`.
fn supervise(child: Pid, handled: &SigSet, namespace: Option<OwnedFd>) -> ! {
    let_go_of_stdio();
    loop {
        let signal = match handled.wait() {
            Ok(signal) => signal,
            Err(_) => continue,
        };
        match signal {
            Signal::SIGCHLD => {
                if let Some(reaped) = reap(child) {
                    let plugins = namespace.as_ref().and_then(|pipe| pid_namespace::received_status(pipe, child));
                    let left = kill_descendants(child);
                    // In a namespace the init counted them (and the kernel killed them).
                    if namespace.is_none() {
                        report_leftovers(left);
                    }
                    end_as(plugins.unwrap_or(reaped));
                }
            }
            Signal::SIGUSR1 => {
                kill_descendants(child);
                end_as(WaitStatus::Signaled(child, Signal::SIGKILL, false));
            }
            // The init passes it on to the plugin's group; without one, the plugin leads it.
            other if namespace.is_some() => {
                let _ = kill(child, other);
            }
            other => {
                let _ = killpg(child, other);
            }
        }
    }
}

/// The pipes belong to the plugin; holding them would hide its end from the host.
pub(super) fn let_go_of_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
    }
}

/// Reaps every child that ended; the plugin's status once it is among them.
pub(super) fn reap(plugin: Pid) -> Option<WaitStatus> {
    let mut ended = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return ended,
            Ok(status) if status.pid() == Some(plugin) => ended = Some(status),
            Ok(_) => {}
        }
    }
}

/// What the launcher writes on the plugin's stderr when a plugin that ended left processes
/// running (they are killed): `check` reads it.
const LEFTOVERS: &str = "sandbox: [WARN] the plugin left";

/// Says, on the plugin's stderr, how many processes the ended plugin left running.
pub(super) fn report_leftovers(count: usize) {
    if count > 0 {
        let plural = if count == 1 { "" } else { "es" };
        eprintln!("{LEFTOVERS} {count} process{plural} running when it ended; they were killed");
    }
}

/// How many processes a line of [`report_leftovers`] reports, if it is one.
pub fn leftovers_reported(line: &str) -> Option<usize> {
    let count: usize = line.trim().strip_prefix(LEFTOVERS)?.split_whitespace().next()?.parse().ok()?;
    (count > 0).then_some(count)
}

/// Kills the plugin's group and every process below the launcher, round after round, until
/// none is left: a killed child's own children become the launcher's, and are next. Returns
/// how many processes were found below the launcher.
fn kill_descendants(plugin: Pid) -> usize {
    let _ = killpg(plugin, Signal::SIGKILL);
    let mut found = std::collections::HashSet::new();
    let children_file = format!("/proc/self/task/{}/children", getpid());
    // Until none is left: a chain of processes forking as they die takes as many rounds as
    // it is deep. Bounded in time only, so the launcher itself cannot be held forever.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let children: Vec<Pid> = std::fs::read_to_string(&children_file)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .map(Pid::from_raw)
            .collect();
        for child in &children {
            found.insert(*child);
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
                Err(nix::errno::Errno::ECHILD) => return found.len(),
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        } else if !reaped {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    found.len()
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

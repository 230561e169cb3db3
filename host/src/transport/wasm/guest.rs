//! One running guest: its store, its pipes, and the task that runs it.

use crate::sandbox::InstanceDir;
use std::time::Duration;
use tokio::task::JoinHandle;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::cli::{AsyncStdinStream, AsyncStdoutStream};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::disk_quota::{DiskLimits, DiskQuota};
use super::http::{GuardedConnector, HttpPolicy};
use super::runtime::{EPOCH_TICK, WasmComponent};
use super::watchdog::{DeadlineExceeded, Watchdog};
use super::{DEFAULT_MEMORY_LIMIT_BYTES, MemoryLimitExceeded, WasmError};
use crate::dispatch::{CloseReason, ExitSignal, exit_signal};
use crate::transport::{Launched, LineTap, TransportHandle, stderr};
use std::sync::Arc;

/// Room in each pipe between host and guest.
const PIPE_BYTES: usize = 64 << 10;

/// What one guest is granted.
#[derive(Debug, Clone)]
pub struct WasmSpec {
    /// The plugin's private directory, visible to the guest as `/data`; nothing else is.
    /// Opened without following links ([`crate::sandbox::Sandbox::wasm_dir`]) and granted as
    /// the directory opened, never by its path again.
    pub data_dir: Option<Arc<InstanceDir>>,
    /// Linear memory the guest may grow to.
    pub memory_limit_bytes: usize,
    /// How long the guest may execute without writing a line before it is interrupted:
    /// the plugin's request timeout. Time blocked waiting for input does not count.
    pub request_deadline: Duration,
    /// Where the guest may send `wasi:http` requests; by default nowhere.
    pub http: Arc<HttpPolicy>,
    /// What `/data` may hold.
    pub disk: DiskLimits,
}

impl Default for WasmSpec {
    fn default() -> Self {
        Self {
            data_dir: None,
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            request_deadline: crate::limits::DEFAULT_REQUEST_TIMEOUT,
            http: Arc::default(),
            disk: DiskLimits::default(),
        }
    }
}

/// The state of one guest's store.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: GuestLimits,
    http: WasiHttpCtx,
    connector: GuardedConnector,
    disk: Arc<DiskQuota>,
}

impl GuestState {
    /// The quota of the guest's `/data`.
    pub(super) fn disk_quota(&self) -> Arc<DiskQuota> {
        self.disk.clone()
    }

    pub(super) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

/// The memory limit of one guest, as a typed error rather than a failed allocation the
/// guest would turn into an anonymous abort.
struct GuestLimits {
    memory_bytes: usize,
}

/// Table elements a guest may grow to: far beyond what a plugin needs.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// What one guest may hold on the host's side, outside its linear memory: a budget of its
/// own, since wasmtime cannot count it against the memory limit. Past any of these the
/// guest traps (or its request fails) and the others go on. A guest that never drops what
/// it creates holds at most about `HOST_RESOURCES` × `HEADER_BYTES` = 16 MiB of headers,
/// `HTTP_REQUESTS_IN_FLIGHT` × 128 KiB of unsent bodies, and small entries besides.
pub mod host_budget {
    /// Live resources (streams, pollables, files, `wasi:http` fields, requests, …): a
    /// plugin uses a few dozen.
    pub const HOST_RESOURCES: usize = 1024;
    /// Bytes of names and values in one `wasi:http` `fields` (a request's headers).
    pub const HEADER_BYTES: usize = 16 << 10;
    /// Bytes of an outgoing body buffered on the host at once (one chunk, one waiting).
    pub const BODY_CHUNK_BYTES: usize = 64 << 10;
    /// `wasi:http` requests open at once; one more fails with `connection-limit-reached`.
    pub const HTTP_REQUESTS_IN_FLIGHT: usize = 8;
}

impl ResourceLimiter for GuestLimits {
    fn memory_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(MemoryLimitExceeded { limit: self.memory_bytes, wanted: desired }.into());
        }
        Ok(maximum.is_none_or(|maximum| desired <= maximum))
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|maximum| desired <= maximum))
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.connector }
    }
}

/// Starts a guest: its stdin and stdout become the returned streams. Must be called inside
/// a tokio runtime.
pub fn spawn(component: &WasmComponent, spec: &WasmSpec, plugin_id: &str) -> Result<Launched, WasmError> {
    spawn_with_stderr_tap(component, spec, plugin_id, None)
}

/// [`spawn`], with every stderr line also handed to `stderr_tap` as it is read.
pub fn spawn_with_stderr_tap(
    component: &WasmComponent,
    spec: &WasmSpec,
    plugin_id: &str,
    stderr_tap: Option<LineTap>,
) -> Result<Launched, WasmError> {
    let (host_input, guest_stdin) = tokio::io::duplex(PIPE_BYTES);
    let watchdog = Arc::new(Watchdog::default());
    let (guest_stdout, host_output) = tokio::io::duplex(PIPE_BYTES);
    let (guest_stderr, host_errors) = tokio::io::duplex(PIPE_BYTES);
    let mut builder = WasiCtx::builder();
    builder
        .stdin(AsyncStdinStream::new(guest_stdin))
        .stdout(AsyncStdoutStream::new(PIPE_BYTES, guest_stdout))
        .stderr(AsyncStdoutStream::new(PIPE_BYTES, guest_stderr))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let disk = match &spec.data_dir {
        Some(dir) => {
            builder
                .preopened_dir(dir.pinned_path(), "/data", FsPerms::ReadWrite)
                .map_err(|source| WasmError::DataDir { path: dir.path().display().to_string(), source })?;
            DiskQuota::new(spec.disk, dir.clone(), plugin_id)
        }
        None => DiskQuota::nothing_to_write(),
    };
    let limits = GuestLimits { memory_bytes: spec.memory_limit_bytes };
    let mut table = ResourceTable::new();
    table.set_max_capacity(host_budget::HOST_RESOURCES);
    let mut http = WasiHttpCtx::new();
    http.set_field_size_limit(host_budget::HEADER_BYTES);
    let state = GuestState {
        wasi: builder.build(),
        table,
        limits,
        http,
        connector: GuardedConnector::new(spec.http.clone(), plugin_id),
        disk: Arc::new(disk),
    };
    let mut store = Store::new(component.pre.engine(), state);
    store.limiter(|state| &mut state.limits);
    store.set_max_component_handles(host_budget::HOST_RESOURCES);
    // Every epoch tick the guest yields, so one guest never holds a worker thread; past its
    // request deadline without output it is interrupted.
    let deadline = spec.request_deadline;
    let allowed_ticks = deadline.as_millis().div_ceil(EPOCH_TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(1);
    let watched = watchdog.clone();
    store.epoch_deadline_callback(move |_| watched.check(allowed_ticks, deadline));
    let (exit_sender, exit) = exit_signal();
    let pre = component.pre.clone();
    let label = plugin_id.to_owned();
    let run = tokio::spawn(async move {
        let reason = match pre.instantiate_async(&mut store).await {
            Ok(command) => describe_exit(command.wasi_cli_run().call_run(&mut store).await),
            Err(error) => format!("could not be instantiated: {error:#}"),
        };
        tracing::debug!(plugin = label, "wasm guest {reason}");
        exit_sender.send_replace(Some(CloseReason::Exited(reason)));
        // The store, and with it the guest's ends of the pipes, is dropped here.
    });
    let plugin = plugin_id.to_owned();
    let errors = tokio::spawn(async move {
        stderr::forward(host_errors, plugin, stderr_tap).await;
    });
    let handle = WasmHandle { exit: exit.clone(), run, errors, watchdog };
    Ok(Launched {
        input: Box::new(host_input),
        output: Box::new(host_output),
        exit,
        handle: TransportHandle::Wasm(handle),
    })
}

/// How a guest's run ended, in one line.
fn describe_exit(outcome: wasmtime::Result<Result<(), ()>>) -> String {
    match outcome {
        Ok(Ok(())) => "exited with status 0".to_owned(),
        Ok(Err(())) => "exited with status 1".to_owned(),
        Err(error) => describe_failure(&error),
    }
}

/// How a guest that did not return ended: an exit, the memory limit, or a trap, said in
/// one line (the full error, with its wasm backtrace, goes to the debug log).
fn describe_failure(error: &wasmtime::Error) -> String {
    if let Some(I32Exit(code)) = error.downcast_ref::<I32Exit>() {
        return format!("exited with status {code}");
    }
    if let Some(exceeded) = error.downcast_ref::<MemoryLimitExceeded>() {
        return exceeded.to_string();
    }
    if let Some(exceeded) = error.downcast_ref::<DeadlineExceeded>() {
        return exceeded.to_string();
    }
    tracing::debug!("wasm guest trap: {error:?}");
    let reason = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    format!("trapped: {reason}{}", over_host_budget(&reason))
}

/// Which of the host's budgets a trap's reason (as wasmtime words it) ran into, if any.
fn over_host_budget(reason: &str) -> String {
    if reason.contains("handle limit") || reason.contains("no free keys") {
        format!(" (over the host's budget of {} live resources per guest)", host_budget::HOST_RESOURCES)
    } else if reason.contains("size of fields exceeds") {
        format!(" (over the host's budget of {} KiB of headers per fields)", host_budget::HEADER_BYTES >> 10)
    } else {
        String::new()
    }
}

/// A running guest. Dropping it stops the guest.
pub struct WasmHandle {
    exit: ExitSignal,
    run: JoinHandle<()>,
    errors: JoinHandle<()>,
    watchdog: Arc<Watchdog>,
}

impl WasmHandle {
    /// Resets the guest's deadline: the dispatcher calls it for each usable message.
    pub(crate) fn progress_hook(&self) -> crate::dispatch::ProgressHook {
        let watchdog = self.watchdog.clone();
        Arc::new(move || watchdog.progress())
    }

    pub(crate) async fn wait_for_exit(&mut self, grace: Duration) -> bool {
        crate::transport::exited_within(&mut self.exit, grace).await
    }

    /// Drops the guest: it stops at its next epoch tick at the latest.
    pub(crate) async fn terminate(&mut self) {
        self.run.abort();
        let _ = (&mut self.run).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.errors).await;
    }
}

impl Drop for WasmHandle {
    fn drop(&mut self) {
        self.run.abort();
        self.errors.abort();
    }
}

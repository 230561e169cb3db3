//! [`Connection`]: correlation, reverse requests and failure, over two byte streams.

use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::error::{CallError, CloseReason, ConnectionClosed, PluginLabel};
use super::input::{Input, Refused};
use super::pending::PendingCalls;
use super::reverse::{ReverseHandler, ReverseRequest};
use crate::protocol::codec::{DEFAULT_MAX_MESSAGE_BYTES, LineError, LineReader};
use crate::protocol::message::{self, Incoming, ResponseError};
use crate::protocol::{PluginRequest, Response};

/// How the transport tells the connection that the plugin ended, and why.
pub type ExitSignal = watch::Receiver<Option<CloseReason>>;
/// The transport's side of an [`ExitSignal`].
pub type ExitSender = watch::Sender<Option<CloseReason>>;

/// A new exit signal pair; the transport keeps the sender.
pub fn exit_signal() -> (ExitSender, ExitSignal) {
    watch::channel(None)
}

/// After the plugin ends, how long its remaining output is still read.
const EXIT_DRAIN: Duration = Duration::from_millis(500);
/// After the plugin's output ends, how long to wait for the transport to say why.
const EXIT_REASON_WAIT: Duration = Duration::from_secs(2);
/// After a failed write, how long to let the reader report the plugin's end (a broken
/// pipe almost always means the plugin died) before blaming the write itself.
const WRITE_FAILURE_GRACE: Duration = Duration::from_secs(4);
/// Plugin requests served at once; further requests wait to be read.
const MAX_CONCURRENT_REVERSE_REQUESTS: usize = 32;
/// How much of a junk line goes into the log.
const LOGGED_JUNK_BYTES: usize = 200;
/// Junk lines logged one by one after each message; the rest of a run is counted.
pub(crate) const LOGGED_JUNK_LINES: u64 = 10;
/// Default cap on lines that are not JSON-RPC between two messages.
pub const DEFAULT_MAX_JUNK_BYTES: usize = 16 << 20;

/// Settings of one connection.
pub struct ConnectionConfig {
    pub label: PluginLabel,
    /// Cap on one message from the plugin, enforced while reading.
    pub max_message_bytes: usize,
    /// Cap on the bytes of lines that are not JSON-RPC the plugin may write between two
    /// messages: a plugin flooding its output is a fault, not a cost the host bears forever.
    pub max_junk_bytes: usize,
    /// Serves the plugin's requests (`storage/*`).
    pub reverse: Arc<dyn ReverseHandler>,
    /// Called for every message of the plugin the host can use (an answer to a pending
    /// call, a request with an id): the transport's sign of progress. Junk lines and
    /// notifications are not progress.
    pub on_message: Option<ProgressHook>,
}

/// See [`ConnectionConfig::on_message`].
pub type ProgressHook = Arc<dyn Fn() + Send + Sync>;

impl ConnectionConfig {
    /// Defaults: 8 MiB messages, and the given handler for plugin requests.
    pub fn new(label: PluginLabel, reverse: Arc<dyn ReverseHandler>) -> Self {
        Self {
            label,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_junk_bytes: DEFAULT_MAX_JUNK_BYTES,
            reverse,
            on_message: None,
        }
    }
}

struct Shared {
    label: PluginLabel,
    input: Input,
    exit: ExitSignal,
    pending: PendingCalls,
    /// The host has begun stopping the plugin: its end is expected, not a fault to report.
    stopping: AtomicBool,
    /// Set with the first close: what [`Connection::is_closed`] reads, without a lock.
    is_closed: AtomicBool,
    closed_signal: watch::Sender<Option<ConnectionClosed>>,
}

impl Shared {
    fn close(&self, reason: CloseReason) {
        let closed = ConnectionClosed { plugin: self.label.clone(), reason };
        // Only the first reason counts; later ones (the reader's EOF after a stop) are noise.
        if let Some(failed) = self.pending.close(closed.clone()) {
            if closed.reason.is_fault() && !self.stopping.load(Ordering::Relaxed) {
                tracing::warn!(plugin = self.label.id(), pending = failed, "{closed}");
            } else {
                tracing::debug!(plugin = self.label.id(), pending = failed, "{closed}");
            }
            self.is_closed.store(true, Ordering::Release);
            self.closed_signal.send_replace(Some(closed));
        }
    }

    /// Hands one whole line to the plugin's input.
    fn send_line(&self, line: &[u8]) -> Result<(), Refused> {
        let sent = self.input.send_line(line);
        if let Err(Refused::Backlog(queued)) = &sent {
            self.close(CloseReason::WriteFailed(format!("it stopped reading its input ({queued} bytes waiting)")));
        }
        sent
    }

    /// Writes whatever callers queue, until the input is shut down or a write fails. A
    /// failed write usually means the plugin died: the transport gets a moment to say how
    /// before the write itself is blamed.
    async fn flush_input(&self) {
        if let Err(error) = self.input.flush_forever().await {
            let mut exit = self.exit.clone();
            let reason = match tokio::time::timeout(WRITE_FAILURE_GRACE, exit.wait_for(Option::is_some)).await {
                Ok(Ok(reason)) => reason.clone(),
                _ => None,
            };
            self.close(reason.unwrap_or(CloseReason::WriteFailed(error.to_string())));
        }
    }
}

/// A JSON-RPC connection to one plugin. Dropping it stops its tasks.
pub struct Connection {
    shared: Arc<Shared>,
    next_id: AtomicI64,
    closed: watch::Receiver<Option<ConnectionClosed>>,
    reader: JoinHandle<()>,
    flusher: JoinHandle<()>,
}

impl Connection {
    /// Starts reading `output` and writing `input`. Must be called inside a tokio runtime.
    pub fn open<R, W>(output: R, input: W, exit: ExitSignal, config: ConnectionConfig) -> Self
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let (closed_signal, closed) = watch::channel(None);
        let shared = Arc::new(Shared {
            label: config.label,
            input: Input::new(Box::new(input)),
            exit: exit.clone(),
            pending: PendingCalls::default(),
            stopping: AtomicBool::new(false),
            is_closed: AtomicBool::new(false),
            closed_signal,
        });
        let reader = tokio::spawn(read_loop(
            LineReader::new(output, config.max_message_bytes),
            exit,
            config.reverse,
            config.max_junk_bytes,
            config.on_message,
            shared.clone(),
        ));
        let flusher = tokio::spawn({
            let shared = shared.clone();
            async move { shared.flush_input().await }
        });
        Self { shared, next_id: AtomicI64::new(1), closed, reader, flusher }
    }

    pub fn label(&self) -> &PluginLabel {
        &self.shared.label
    }

    /// Sends a request and waits for its answer, however long that takes: deadlines are
    /// the timeout layer's job. Dropping the future forgets the call, and a late answer is
    /// then logged and dropped.
    ///
    /// The caller writes its own line when the pipe is free (no writer task in between):
    /// the request reaches the plugin as soon as it is made.
    pub async fn call(&self, method: &str, params: Option<&RawValue>) -> Result<Box<RawValue>, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let answer = self.shared.pending.register(id)?;
        let _forget_on_drop = ForgetOnDrop { pending: &self.shared.pending, id };
        let line = message::request_line(id, method, params);
        match self.shared.send_line(&line) {
            Ok(()) => {}
            Err(Refused::TooLarge(bytes)) => {
                return Err(CallError::RequestTooLarge { bytes, limit: super::input::MAX_QUEUED_BYTES });
            }
            // The input is gone: the connection closes with the cause as soon as it is known
            // (a failed write waits a moment for the plugin's exit status).
            Err(Refused::Closed | Refused::Backlog(_)) => return Err(self.closed().await.into()),
        }
        match answer.await {
            Ok(outcome) => outcome,
            Err(_) => Err(self.closed_error().into()),
        }
    }

    /// Marks the plugin's end as expected: it is then logged quietly. The close reason and
    /// the failures of pending calls are unchanged.
    pub fn expect_close(&self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
    }

    /// Ends the plugin's input (after the lines already queued), as a polite request to
    /// exit. Calls already sent still get their answers. Never waits.
    pub fn close_input(&self) {
        self.shared.input.close();
    }

    /// Fails every pending call with `reason` and refuses new ones. The first reason wins.
    pub fn close(&self, reason: CloseReason) {
        self.shared.close(reason);
    }

    /// Why the connection closed, once it has.
    pub fn closed_reason(&self) -> Option<ConnectionClosed> {
        self.shared.pending.closed()
    }

    /// Whether the connection has closed: cheaper than [`Connection::closed_reason`].
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed.load(Ordering::Acquire)
    }

    /// Waits until the connection closes, and says why.
    pub async fn closed(&self) -> ConnectionClosed {
        let mut closed = self.closed.clone();
        match closed.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().expect("waited for Some"),
            Err(_) => self.closed_error(),
        }
    }

    /// Calls waiting for an answer right now.
    pub fn pending_calls(&self) -> usize {
        self.shared.pending.len()
    }

    fn closed_error(&self) -> ConnectionClosed {
        self.shared
            .pending
            .closed()
            .unwrap_or_else(|| ConnectionClosed { plugin: self.shared.label.clone(), reason: CloseReason::Stopped })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close(CloseReason::Stopped);
        self.reader.abort();
        self.flusher.abort();
    }
}

struct ForgetOnDrop<'a> {
    pending: &'a PendingCalls,
    id: i64,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.pending.forget(self.id);
    }
}

/// Reads the plugin's output until it ends, then closes the connection with the cause.
async fn read_loop<R: AsyncRead + Unpin>(
    mut lines: LineReader<R>,
    mut exit: ExitSignal,
    reverse: Arc<dyn ReverseHandler>,
    max_junk_bytes: usize,
    on_message: Option<ProgressHook>,
    shared: Arc<Shared>,
) {
    let mut junk = Junk::default();
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_REVERSE_REQUESTS));
    // Owns the tasks serving plugin requests: they end with this loop.
    let mut serving = JoinSet::new();
    // Set once the transport reports the plugin's end: output still buffered in the pipe is
    // read until then (the answer to `shutdown`, say), but a descendant that escaped the
    // process group and holds the pipe open cannot keep pending calls waiting.
    let mut drain_until: Option<(CloseReason, Instant)> = None;
    // A transport that goes away without a reason has nothing more to say.
    let mut exit_silent = false;
    let reason = loop {
        let next = match &drain_until {
            None => tokio::select! {
                next = lines.next_line() => next,
                ended = exit.wait_for(Option::is_some), if !exit_silent => {
                    match ended.map(|reason| reason.clone()) {
                        Ok(Some(reason)) => drain_until = Some((reason, Instant::now() + EXIT_DRAIN)),
                        _ => exit_silent = true,
                    }
                    continue;
                }
            },
            Some((reason, deadline)) => match tokio::time::timeout_at(*deadline, lines.next_line()).await {
                Ok(next) => next,
                Err(_) => break reason.clone(),
            },
        };
        let line = match next {
            Ok(Some(line)) => line,
            Ok(None) => break wait_for_exit_reason(&mut exit).await,
            Err(LineError::TooLong { limit }) => break CloseReason::MessageTooLarge { limit },
            Err(LineError::Io(error)) => break CloseReason::ReadFailed(error.to_string()),
        };
        let incoming = match message::classify(line) {
            // A plugin's requests need an id to be answered: a notification is output the
            // host cannot use, counted and logged like any other junk (a flood of them is a
            // fault, not a log flood).
            Incoming::Request(request) if request.id.is_none() => {
                Incoming::Invalid(format!("a notification (`{}`): plugin requests need an id", request.method))
            }
            incoming => incoming,
        };
        if !matches!(incoming, Incoming::Invalid(_)) {
            junk.end_of_run(&shared.label);
        }
        let progress = || {
            if let Some(hook) = &on_message {
                hook();
            }
        };
        match incoming {
            Incoming::Response(response) => {
                if deliver(&shared, response) {
                    progress();
                }
            }
            Incoming::Request(request) => {
                progress();
                let Ok(permit) = permits.clone().acquire_owned().await else { break CloseReason::Stopped };
                let reverse = reverse.clone();
                let shared = shared.clone();
                serving.spawn(async move {
                    serve(reverse.as_ref(), request, &shared).await;
                    drop(permit);
                });
            }
            Incoming::Invalid(why) => {
                if junk.add(line.len() + 1) <= LOGGED_JUNK_LINES {
                    let shown = String::from_utf8_lossy(&line[..line.len().min(LOGGED_JUNK_BYTES)]).into_owned();
                    tracing::warn!(plugin = shared.label.id(), line = %shown, "skipping a line that is not JSON-RPC: {why}");
                }
                if junk.bytes > max_junk_bytes {
                    break CloseReason::OutputFlooded { limit: max_junk_bytes };
                }
            }
        }
        while serving.try_join_next().is_some() {}
    };
    shared.close(reason);
}

/// A run of lines that are not JSON-RPC, since the last message.
#[derive(Default)]
struct Junk {
    lines: u64,
    bytes: usize,
}

impl Junk {
    /// Counts a line; returns how many lines the run has now.
    fn add(&mut self, bytes: usize) -> u64 {
        self.lines += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        self.lines
    }

    /// A message arrived: the run is over (and its unlogged lines are reported).
    fn end_of_run(&mut self, plugin: &PluginLabel) {
        if self.lines > LOGGED_JUNK_LINES {
            let unlogged = self.lines - LOGGED_JUNK_LINES;
            tracing::warn!(
                plugin = plugin.id(),
                "skipped {unlogged} more lines that are not JSON-RPC ({} bytes in all)",
                self.bytes
            );
        }
        *self = Self::default();
    }
}

/// Completes the pending call `response` answers; whether there was one.
fn deliver(shared: &Shared, response: Response) -> bool {
    let outcome = response.outcome.map_err(|error| match error {
        ResponseError::Rpc(error) => CallError::Rpc(error),
        ResponseError::Malformed(why) => CallError::MalformedError(why),
    });
    let delivered = response.id.is_some_and(|id| shared.pending.complete(id, outcome));
    if !delivered {
        tracing::warn!(plugin = shared.label.id(), id = %response.raw_id, "dropping an answer to no pending request (late, duplicate or unknown id)");
    }
    delivered
}

async fn serve(reverse: &dyn ReverseHandler, request: PluginRequest, shared: &Shared) {
    // The read loop counts notifications as junk: only requests with an id reach here.
    let Some(id) = request.id else { return };
    let outcome = reverse
        .handle(ReverseRequest {
            method: request.method,
            params: request.params,
            parent_request_id: request.parent_request_id,
        })
        .await;
    let line = message::response_line(&id, &outcome);
    if let Err(refused) = shared.send_line(&line) {
        tracing::debug!(plugin = shared.label.id(), "an answer to the plugin was not sent: {refused:?}");
    }
}

async fn wait_for_exit_reason(exit: &mut ExitSignal) -> CloseReason {
    match tokio::time::timeout(EXIT_REASON_WAIT, exit.wait_for(Option::is_some)).await {
        Ok(Ok(reason)) => reason.clone().unwrap_or(CloseReason::OutputClosed),
        _ => CloseReason::OutputClosed,
    }
}

//! The plugin's input, shared by every caller: whole lines, in order, never interleaved.
//!
//! A caller never waits on the pipe. When the pipe is free and nothing is queued, the
//! caller writes its line at once with one non-blocking write: the request reaches the
//! plugin the moment it is made, which keeps a pipeline of calls full. Whatever the pipe
//! does not take is queued, and the connection's flusher task writes the queue out as the
//! plugin reads. So a caller that gives up (a timeout) can never leave half a line behind,
//! and a plugin that stops reading its input costs queued bytes up to [`MAX_QUEUED_BYTES`],
//! past which the connection is closed as a fault.

use std::io;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Bytes queued for a plugin that is not reading its input before the connection is closed.
pub(super) const MAX_QUEUED_BYTES: usize = 64 << 20;

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Why a line was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refused {
    /// The input was closed (by the host, or after a write failed).
    Closed,
    /// The plugin has not read [`MAX_QUEUED_BYTES`] of queued input; the input is closed.
    Backlog(usize),
    /// The line alone is larger than [`MAX_QUEUED_BYTES`]; nothing of it was written.
    TooLarge(usize),
}

pub(super) struct Input {
    state: Mutex<State>,
    flusher: Notify,
}

struct State {
    /// Bytes not yet written, in order.
    queue: Vec<u8>,
    /// The pipe, unless the flusher has it out for a blocking write (or it is closed).
    writer: Option<Writer>,
    /// No more lines: the host closed the input, or writing failed.
    closed: bool,
    /// The flusher should shut the pipe down once the queue is written.
    shutdown_requested: bool,
    /// Bytes went out but their flush did not finish; the flusher completes it.
    needs_flush: bool,
    /// Bytes the flusher took from the queue and has not finished writing.
    in_flight: usize,
}

impl Input {
    pub(super) fn new(writer: Writer) -> Self {
        let state = State {
            queue: Vec::new(),
            writer: Some(writer),
            closed: false,
            shutdown_requested: false,
            needs_flush: false,
            in_flight: 0,
        };
        Self { state: Mutex::new(state), flusher: Notify::new() }
    }

    /// Writes `line` now if the pipe takes it, else queues it for the flusher. Never waits.
    pub(super) fn send_line(&self, line: &[u8]) -> Result<(), Refused> {
        if line.len() > MAX_QUEUED_BYTES {
            return Err(Refused::TooLarge(line.len()));
        }
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        let mut rest = line;
        if state.queue.is_empty()
            && !state.needs_flush
            && let Some(writer) = state.writer.as_mut()
        {
            let (written, flushed) = write_without_waiting(writer, line);
            rest = &line[written..];
            if rest.is_empty() && flushed {
                return Ok(());
            }
            state.needs_flush = true;
        }
        // A direct write only happens with nothing queued or in flight, so a line is never
        // refused here after part of it went out.
        let waiting = state.queue.len() + state.in_flight;
        if waiting + rest.len() > MAX_QUEUED_BYTES {
            state.closed = true;
            return Err(Refused::Backlog(waiting));
        }
        state.queue.extend_from_slice(rest);
        drop(state);
        self.flusher.notify_one();
        Ok(())
    }

    /// Closes the plugin's input (end of file on its stdin) once the queued lines are out.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.shutdown_requested = true;
        drop(state);
        self.flusher.notify_one();
    }

    /// The flusher: writes the queue out whenever callers leave bytes in it. Runs until the
    /// input is shut down or a write fails, and returns that failure.
    pub(super) async fn flush_forever(&self) -> io::Result<()> {
        loop {
            self.flusher.notified().await;
            loop {
                let (mut writer, batch, shutdown) = {
                    let mut state = self.lock();
                    let Some(writer) = state.writer.take() else { return Ok(()) };
                    state.needs_flush = false;
                    let batch = std::mem::take(&mut state.queue);
                    state.in_flight = batch.len();
                    (writer, batch, state.shutdown_requested)
                };
                let written = async {
                    writer.write_all(&batch).await?;
                    writer.flush().await
                }
                .await;
                if let Err(error) = written {
                    self.lock().closed = true;
                    return Err(error);
                }
                let next = {
                    let mut state = self.lock();
                    state.in_flight = 0;
                    if shutdown && state.queue.is_empty() {
                        Next::ShutDown(writer)
                    } else {
                        state.writer = Some(writer);
                        let idle = state.queue.is_empty() && !state.needs_flush && !state.shutdown_requested;
                        if idle { Next::Wait } else { Next::WriteMore }
                    }
                };
                match next {
                    Next::ShutDown(mut writer) => {
                        let _ = writer.shutdown().await;
                        return Ok(());
                    }
                    Next::Wait => break,
                    Next::WriteMore => {}
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state whole (no awaits, no partial updates).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the flusher does after a batch.
enum Next {
    ShutDown(Writer),
    Wait,
    WriteMore,
}

/// One non-blocking attempt to write and flush `bytes`: how many the pipe took, and
/// whether the flush finished.
fn write_without_waiting(writer: &mut Writer, bytes: &[u8]) -> (usize, bool) {
    let mut context = Context::from_waker(Waker::noop());
    let mut written = 0;
    while written < bytes.len() {
        match Pin::new(&mut *writer).poll_write(&mut context, &bytes[written..]) {
            Poll::Ready(Ok(count)) if count > 0 => written += count,
            // Full, failed or zero: the flusher retries, waits, or reports the error.
            _ => return (written, false),
        }
    }
    let flushed = matches!(Pin::new(&mut *writer).poll_flush(&mut context), Poll::Ready(Ok(())));
    (written, flushed)
}

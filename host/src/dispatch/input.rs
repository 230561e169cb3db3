//! The plugin's input, shared by every caller: whole lines, in order, never interleaved.
//!
//! Writers combine: a caller queues its line, and whoever holds the pipe writes everything
//! queued. So a request goes out the moment it is made when the pipe is free (no writer
//! task to hand it to), and callers never sleep on a lock when it is busy: the line is
//! queued and the holder takes it along.

use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::io::{AsyncWrite, AsyncWriteExt};

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

pub(super) struct Input {
    /// Lines waiting for the pipe, in order. Never held across an `.await`.
    queue: Mutex<Vec<u8>>,
    /// The pipe; `None` once the input is closed.
    writer: tokio::sync::Mutex<Option<Writer>>,
}

impl Input {
    pub(super) fn new(writer: Writer) -> Self {
        Self { queue: Mutex::new(Vec::new()), writer: tokio::sync::Mutex::new(Some(writer)) }
    }

    /// Queues `line` and writes whatever is queued if the pipe is free; otherwise the
    /// current holder writes it. If a write is abandoned (the caller is dropped) after part
    /// of a batch went out, the stream is corrupt: `on_torn` is called to close the
    /// connection.
    pub(super) async fn send_line(&self, line: &[u8], on_torn: impl FnOnce()) -> io::Result<()> {
        self.queued().extend_from_slice(line);
        let mut on_torn = Some(on_torn);
        loop {
            let Ok(mut writer) = self.writer.try_lock() else { return Ok(()) };
            let batch = std::mem::take(&mut *self.queued());
            if batch.is_empty() {
                return Ok(());
            }
            let Some(writer) = writer.as_mut() else {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the plugin's input was closed"));
            };
            write_batch(writer, &batch, &mut on_torn).await?;
            // Released here; anything queued meanwhile is written on the next turn.
        }
    }

    /// Closes the plugin's input (end of file on its stdin), after the lines queued so far.
    pub(super) async fn close(&self) {
        let mut writer = self.writer.lock().await;
        let batch = std::mem::take(&mut *self.queued());
        if let Some(mut pipe) = writer.take() {
            if !batch.is_empty() {
                let _ = write_batch(&mut pipe, &batch, &mut None::<fn()>).await;
            }
            let _ = pipe.shutdown().await;
        }
    }

    fn queued(&self) -> MutexGuard<'_, Vec<u8>> {
        // A queue of bytes is consistent after any panic: appends and takes are whole.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn write_batch(writer: &mut Writer, batch: &[u8], on_torn: &mut Option<impl FnOnce()>) -> io::Result<()> {
    let mut progress = TornGuard { written: 0, total: batch.len(), on_torn };
    while progress.written < batch.len() {
        match writer.write(&batch[progress.written..]).await? {
            0 => return Err(io::Error::new(io::ErrorKind::WriteZero, "the plugin's input accepts no more bytes")),
            written => progress.written += written,
        }
    }
    writer.flush().await
}

/// Notices a batch abandoned halfway.
struct TornGuard<'a, F: FnOnce()> {
    written: usize,
    total: usize,
    on_torn: &'a mut Option<F>,
}

impl<F: FnOnce()> Drop for TornGuard<'_, F> {
    fn drop(&mut self) {
        if self.written > 0
            && self.written < self.total
            && let Some(on_torn) = self.on_torn.take()
        {
            on_torn();
        }
    }
}

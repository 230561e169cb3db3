//! [`WireRecorder`]: every line a plugin was sent and wrote (stdout and stderr), with when,
//! as the bytes went by: what `check` judges a plugin's protocol hygiene on. The recorder
//! sits around a [`Launched`] plugin's streams and changes nothing that passes through.
//!
//! Bounded: each line keeps its first [`KEPT_BYTES`] (its full length is counted), or only
//! [`KEPT_BYTES_PAST_BUDGET`] once [`KEPT_BUDGET`] bytes are kept in all; past
//! [`KEPT_LINES`] lines only counts are kept. The host's own requests are always kept,
//! whole, however much the plugin wrote: a plugin cannot push them out of the record. The
//! last [`STDERR_TAIL`] stderr lines are kept apart, past every cap: the launcher's last
//! word on a plugin that ended comes there.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::Launched;

/// Bytes of each line kept: whole answers of any ordinary size.
pub const KEPT_BYTES: usize = 64 << 10;
/// Bytes kept in all before lines are kept shorter.
pub const KEPT_BUDGET: usize = 16 << 20;
/// Bytes of each line kept past the budget.
pub const KEPT_BYTES_PAST_BUDGET: usize = 1 << 10;
/// Lines kept in all (the host's requests aside).
pub const KEPT_LINES: usize = 20_000;
/// The last stderr lines, kept whatever else was dropped.
pub const STDERR_TAIL: usize = 64;

/// Which stream a line went by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// From the host to the plugin's stdin.
    Sent,
    /// The plugin's stdout.
    Stdout,
    /// The plugin's stderr.
    Stderr,
}

/// One recorded line, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireLine {
    pub stream: Stream,
    /// Since the recorder was made.
    pub at: Duration,
    /// The line's first bytes (see the module), lossily decoded.
    pub text: String,
    /// The line's full length in bytes.
    pub bytes: usize,
    /// Whether `text` is only the line's beginning.
    pub cut: bool,
}

/// What the streams carried, as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireSnapshot {
    /// The lines kept, in the order they went by.
    pub lines: Vec<WireLine>,
    /// Lines past [`KEPT_LINES`], only counted.
    pub dropped: u64,
    /// The last [`STDERR_TAIL`] stderr lines, dropped ones included.
    pub stderr_tail: Vec<WireLine>,
}

/// What a plugin's streams carried so far. Cloning shares the recording.
#[derive(Clone)]
pub struct WireRecorder {
    recording: Arc<Mutex<Recording>>,
}

struct Recording {
    started: Instant,
    lines: Vec<WireLine>,
    /// Lines kept under [`KEPT_LINES`] (the host's requests are not counted).
    capped: usize,
    dropped: u64,
    /// Bytes kept so far.
    kept_bytes: usize,
    stderr_tail: VecDeque<WireLine>,
    partial: [Partial; 3],
}

/// A line not yet ended by a newline.
#[derive(Default)]
struct Partial {
    kept: Vec<u8>,
    bytes: usize,
}

impl Default for WireRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl WireRecorder {
    pub fn new() -> Self {
        let recording = Recording {
            started: Instant::now(),
            lines: Vec::new(),
            capped: 0,
            dropped: 0,
            kept_bytes: 0,
            stderr_tail: VecDeque::new(),
            partial: Default::default(),
        };
        Self { recording: Arc::new(Mutex::new(recording)) }
    }

    /// The plugin, with its input and output recorded on the way.
    pub fn around(&self, launched: Launched) -> Launched {
        Launched {
            input: Box::new(Recorded { inner: launched.input, recorder: self.clone(), stream: Stream::Sent }),
            output: Box::new(Recorded { inner: launched.output, recorder: self.clone(), stream: Stream::Stdout }),
            exit: launched.exit,
            handle: launched.handle,
        }
    }

    /// A tap for the plugin's stderr lines (see [`super::stderr::forward`]).
    pub fn stderr_tap(&self) -> super::LineTap {
        let recorder = self.clone();
        Arc::new(move |line: &[u8]| recorder.lock().push(Stream::Stderr, line, line.len()))
    }

    /// What was recorded so far.
    pub fn snapshot(&self) -> WireSnapshot {
        let recording = self.lock();
        WireSnapshot {
            lines: recording.lines.clone(),
            dropped: recording.dropped,
            stderr_tail: recording.stderr_tail.iter().cloned().collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.recording.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds the bytes of a stream that carries lines (stdin, stdout).
    fn feed(&self, stream: Stream, mut bytes: &[u8]) {
        let mut recording = self.lock();
        let index = stream as usize;
        while !bytes.is_empty() {
            let (piece, ended) = match memchr::memchr(b'\n', bytes) {
                Some(end) => (&bytes[..end], Some(end)),
                None => (bytes, None),
            };
            let limit = if stream == Stream::Sent { KEPT_BYTES } else { recording.line_limit() };
            let partial = &mut recording.partial[index];
            let room = limit.saturating_sub(partial.kept.len());
            partial.kept.extend_from_slice(&piece[..piece.len().min(room)]);
            partial.bytes += piece.len();
            match ended {
                Some(end) => {
                    recording.end_line(stream);
                    bytes = &bytes[end + 1..];
                }
                None => break,
            }
        }
    }

    /// The stream ended: a last line without its newline is a line too.
    fn ended(&self, stream: Stream) {
        let mut recording = self.lock();
        if recording.partial[stream as usize].bytes > 0 {
            recording.end_line(stream);
        }
    }
}

/// Whether a line the host wrote is one of its requests (`{"jsonrpc":"2.0","id":N,"method"…`).
fn is_host_request(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"{\"jsonrpc\":\"2.0\",\"id\":") else { return false };
    let digits = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
    digits > 0 && rest[digits..].starts_with(b",\"method\":")
}

impl Recording {
    /// How much of a line is kept now.
    fn line_limit(&self) -> usize {
        if self.kept_bytes < KEPT_BUDGET { KEPT_BYTES } else { KEPT_BYTES_PAST_BUDGET }
    }

    fn end_line(&mut self, stream: Stream) {
        let Partial { kept, bytes } = std::mem::take(&mut self.partial[stream as usize]);
        self.push(stream, &kept, bytes);
    }

    fn push(&mut self, stream: Stream, kept: &[u8], bytes: usize) {
        let exempt = stream == Stream::Sent && is_host_request(kept);
        let limit = if exempt { KEPT_BYTES } else { self.line_limit() };
        let kept = &kept[..kept.len().min(limit)];
        let cut = kept.len() < bytes;
        let kept = kept.strip_suffix(b"\r").unwrap_or(kept);
        let line = WireLine {
            stream,
            at: self.started.elapsed(),
            text: String::from_utf8_lossy(kept).into_owned(),
            bytes,
            cut,
        };
        if stream == Stream::Stderr {
            if self.stderr_tail.len() == STDERR_TAIL {
                self.stderr_tail.pop_front();
            }
            self.stderr_tail.push_back(line.clone());
        }
        if !exempt {
            if self.capped >= KEPT_LINES {
                self.dropped += 1;
                return;
            }
            self.capped += 1;
            self.kept_bytes += kept.len();
        }
        self.lines.push(line);
    }
}

/// A stream whose bytes are recorded as they pass.
struct Recorded<S> {
    inner: S,
    recorder: WireRecorder,
    stream: Stream,
}

impl<R: AsyncRead + Unpin> AsyncRead for Recorded<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let had_room = buf.remaining() > 0;
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let read = &buf.filled()[before..];
            if read.is_empty() && had_room {
                self.recorder.ended(self.stream);
            } else {
                self.recorder.feed(self.stream, read);
            }
        }
        polled
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Recorded<W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &polled {
            self.recorder.feed(self.stream, &buf[..*written]);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn lines_are_recorded_as_they_pass_whatever_the_chunks() {
        let recorder = WireRecorder::new();
        let (mut writer, reader) = tokio::io::duplex(64);
        let mut reading = Recorded { inner: reader, recorder: recorder.clone(), stream: Stream::Stdout };
        writer.write_all(b"{\"a\":1}\r\nhal").await.unwrap();
        writer.write_all(b"f line\n\nlast without newline").await.unwrap();
        drop(writer);
        let mut passed = Vec::new();
        reading.read_to_end(&mut passed).await.unwrap();
        assert_eq!(passed, b"{\"a\":1}\r\nhalf line\n\nlast without newline", "bytes pass unchanged");
        let snapshot = recorder.snapshot();
        let texts: Vec<_> = snapshot.lines.iter().map(|line| line.text.as_str()).collect();
        assert_eq!(texts, ["{\"a\":1}", "half line", "", "last without newline"], "the last line too, at the end");
        assert_eq!(snapshot.dropped, 0);
        assert!(snapshot.lines.iter().all(|line| line.stream == Stream::Stdout));
    }

    #[tokio::test]
    async fn a_giant_line_is_kept_cut_and_counted_whole() {
        let recorder = WireRecorder::new();
        let mut sink = Recorded { inner: Vec::new(), recorder: recorder.clone(), stream: Stream::Sent };
        let giant = vec![b'x'; 3 * KEPT_BYTES + 5];
        sink.write_all(&giant).await.unwrap();
        sink.write_all(b"\nnext\n").await.unwrap();
        let lines = recorder.snapshot().lines;
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].text.len(), lines[0].bytes, lines[0].cut), (KEPT_BYTES, giant.len(), true));
        assert_eq!((lines[1].text.as_str(), lines[1].cut), ("next", false));
    }

    #[tokio::test]
    async fn a_flood_pushes_out_neither_the_hosts_requests_nor_the_stderr_tail() {
        let recorder = WireRecorder::new();
        let tap = recorder.stderr_tap();
        for _ in 0..KEPT_LINES + 3 {
            tap(b"[INFO] x");
        }
        let mut sink = Recorded { inner: Vec::new(), recorder: recorder.clone(), stream: Stream::Sent };
        sink.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\n").await.unwrap();
        sink.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n").await.unwrap();
        tap(b"sandbox: [WARN] the plugin left 2 processes running when it ended; they were killed");
        let snapshot = recorder.snapshot();
        assert_eq!(snapshot.lines.len(), KEPT_LINES + 1, "the host's request is kept past the cap");
        assert_eq!(snapshot.lines.last().unwrap().text, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}");
        assert_eq!(snapshot.dropped, 3 + 1 + 1, "an answer to the plugin and a stderr line past the cap are counted");
        assert_eq!(snapshot.stderr_tail.len(), STDERR_TAIL);
        assert!(
            snapshot.stderr_tail.last().unwrap().text.starts_with("sandbox: "),
            "the last stderr line is in the tail"
        );
    }
}

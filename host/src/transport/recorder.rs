//! [`WireRecorder`]: every line a plugin was sent and wrote (stdout and stderr), with when,
//! as the bytes went by: what `check` judges a plugin's protocol hygiene on. The recorder
//! sits around a [`Launched`] plugin's streams and changes nothing that passes through.
//!
//! Bounded: each line keeps its first [`KEPT_BYTES`] (its full length is counted), or only
//! [`KEPT_BYTES_PAST_BUDGET`] once [`KEPT_BUDGET`] bytes are kept in all; past
//! [`KEPT_LINES`] lines only counts are kept.

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
/// Lines kept in all.
pub const KEPT_LINES: usize = 20_000;

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

/// What a plugin's streams carried so far. Cloning shares the recording.
#[derive(Clone)]
pub struct WireRecorder {
    recording: Arc<Mutex<Recording>>,
}

struct Recording {
    started: Instant,
    lines: Vec<WireLine>,
    /// Lines past [`KEPT_LINES`], counted only.
    dropped: u64,
    /// Bytes kept so far.
    kept_bytes: usize,
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
            dropped: 0,
            kept_bytes: 0,
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
        Arc::new(move |line: &[u8]| recorder.line(Stream::Stderr, line, line.len()))
    }

    /// Every line recorded so far, in the order they went by, and how many more were only
    /// counted.
    pub fn lines(&self) -> (Vec<WireLine>, u64) {
        let recording = self.lock();
        (recording.lines.clone(), recording.dropped)
    }

    /// How many lines are recorded so far: a mark to read the lines after it.
    pub fn len(&self) -> usize {
        self.lock().lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The lines recorded since `mark` (a [`WireRecorder::len`]).
    pub fn since(&self, mark: usize) -> Vec<WireLine> {
        self.lock().lines.get(mark..).map(<[_]>::to_vec).unwrap_or_default()
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
            let limit = recording.line_limit();
            let partial = &mut recording.partial[index];
            let room = limit.saturating_sub(partial.kept.len());
            partial.kept.extend_from_slice(&piece[..piece.len().min(room)]);
            partial.bytes += piece.len();
            match ended {
                Some(end) => {
                    let Partial { kept, bytes: length } = std::mem::take(&mut recording.partial[index]);
                    recording.push(stream, &kept, length);
                    bytes = &bytes[end + 1..];
                }
                None => break,
            }
        }
    }

    fn line(&self, stream: Stream, kept: &[u8], bytes: usize) {
        self.lock().push(stream, kept, bytes);
    }
}

impl Recording {
    /// How much of a line is kept now.
    fn line_limit(&self) -> usize {
        if self.kept_bytes < KEPT_BUDGET { KEPT_BYTES } else { KEPT_BYTES_PAST_BUDGET }
    }

    fn push(&mut self, stream: Stream, kept: &[u8], bytes: usize) {
        if self.lines.len() >= KEPT_LINES {
            self.dropped += 1;
            return;
        }
        let kept = &kept[..kept.len().min(self.line_limit())];
        let cut = kept.len() < bytes;
        let kept = kept.strip_suffix(b"\r").unwrap_or(kept);
        self.kept_bytes += kept.len();
        let text = String::from_utf8_lossy(kept).into_owned();
        self.lines.push(WireLine { stream, at: self.started.elapsed(), text, bytes, cut });
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
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            self.recorder.feed(self.stream, &buf.filled()[before..]);
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
        let (lines, dropped) = recorder.lines();
        let texts: Vec<_> = lines.iter().map(|line| line.text.as_str()).collect();
        assert_eq!(texts, ["{\"a\":1}", "half line", ""]);
        assert_eq!(dropped, 0);
        assert!(lines.iter().all(|line| line.stream == Stream::Stdout));
    }

    #[tokio::test]
    async fn a_giant_line_is_kept_cut_and_counted_whole() {
        let recorder = WireRecorder::new();
        let mut sink = Recorded { inner: Vec::new(), recorder: recorder.clone(), stream: Stream::Sent };
        let giant = vec![b'x'; 3 * KEPT_BYTES + 5];
        sink.write_all(&giant).await.unwrap();
        sink.write_all(b"\nnext\n").await.unwrap();
        let (lines, _) = recorder.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].text.len(), lines[0].bytes, lines[0].cut), (KEPT_BYTES, giant.len(), true));
        assert_eq!((lines[1].text.as_str(), lines[1].cut), ("next", false));
        assert_eq!(recorder.since(1), lines[1..]);
    }

    #[test]
    fn past_the_cap_lines_are_counted_not_kept() {
        let recorder = WireRecorder::new();
        let tap = recorder.stderr_tap();
        for _ in 0..KEPT_LINES + 3 {
            tap(b"[INFO] x");
        }
        let (lines, dropped) = recorder.lines();
        assert_eq!((lines.len(), dropped), (KEPT_LINES, 3));
        assert_eq!(lines[0].stream, Stream::Stderr);
    }
}

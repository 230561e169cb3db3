//! Reading newline-delimited messages without ever buffering an unbounded line.
//!
//! [`LineReader`] keeps at most `limit` bytes of a line. On stdout an oversized line is a
//! protocol fault ([`LineError::TooLong`], reported as soon as the limit is crossed, before
//! the rest of the line is read); on stderr it is cut and the rest skipped
//! ([`LineReader::next_line_truncated`]). Both methods are cancel-safe: every byte taken
//! from the stream is kept in the reader until its line is complete.

use std::io;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Default cap on one message from a plugin: 8 MiB, so that a 1 MiB storage value still
/// fits in a `storage/get` answer with room to spare.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8 << 20;

const READ_BUFFER_BYTES: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("a message exceeded the limit of {limit} bytes")]
    TooLong { limit: usize },
    #[error("reading failed: {0}")]
    Io(#[from] io::Error),
}

/// A line cut at the limit: the bytes kept, and how many were dropped after them.
#[derive(Debug, PartialEq, Eq)]
pub struct TruncatedLine<'a> {
    pub bytes: &'a [u8],
    pub dropped: usize,
}

/// Reads `\n`-terminated lines of at most `limit` bytes (the `\n` not counted).
pub struct LineReader<R> {
    inner: BufReader<R>,
    limit: usize,
    line: Vec<u8>,
    /// The line in `line` is complete and was handed out; clear it on the next call.
    handed_out: bool,
    /// Bytes of the current line dropped past the limit (truncating mode only).
    dropped: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(reader: R, limit: usize) -> Self {
        Self {
            inner: BufReader::with_capacity(READ_BUFFER_BYTES, reader),
            limit,
            line: Vec::new(),
            handed_out: false,
            dropped: 0,
        }
    }

    /// The next line without its `\n`, `None` at end of stream. A last line without a
    /// `\n` is returned too. Fails as soon as a line grows past the limit.
    pub async fn next_line(&mut self) -> Result<Option<&[u8]>, LineError> {
        self.start_line();
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                return Ok(self.finish_at_eof());
            }
            let (taken, complete) = take_until_newline(available);
            if self.line.len() + taken.len() > self.limit {
                return Err(LineError::TooLong { limit: self.limit });
            }
            self.line.extend_from_slice(taken);
            let consumed = taken.len() + usize::from(complete);
            self.inner.consume(consumed);
            if complete {
                self.handed_out = true;
                return Ok(Some(&self.line));
            }
        }
    }

    /// The next line, cut at the limit with the rest of it skipped; `None` at end of stream.
    pub async fn next_line_truncated(&mut self) -> io::Result<Option<TruncatedLine<'_>>> {
        self.start_line();
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                let dropped = self.dropped;
                return Ok(self.finish_at_eof().map(|bytes| TruncatedLine { bytes, dropped }));
            }
            let (taken, complete) = take_until_newline(available);
            let room = self.limit.saturating_sub(self.line.len());
            let kept = taken.len().min(room);
            self.line.extend_from_slice(&taken[..kept]);
            self.dropped += taken.len() - kept;
            let consumed = taken.len() + usize::from(complete);
            self.inner.consume(consumed);
            if complete {
                self.handed_out = true;
                return Ok(Some(TruncatedLine { bytes: &self.line, dropped: self.dropped }));
            }
        }
    }

    fn start_line(&mut self) {
        if self.handed_out {
            self.line.clear();
            self.dropped = 0;
            self.handed_out = false;
        }
    }

    fn finish_at_eof(&mut self) -> Option<&[u8]> {
        if self.line.is_empty() && self.dropped == 0 {
            return None;
        }
        self.handed_out = true;
        Some(&self.line)
    }
}

/// Splits the buffered bytes at the first `\n`: the bytes before it, and whether it was found.
fn take_until_newline(available: &[u8]) -> (&[u8], bool) {
    match memchr::memchr(b'\n', available) {
        Some(end) => (&available[..end], true),
        None => (available, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn reads_lines_and_a_last_line_without_newline() {
        let data: &[u8] = b"one\ntwo\n\nthree";
        let mut reader = LineReader::new(data, 16);
        assert_eq!(reader.next_line().await.unwrap(), Some(&b"one"[..]));
        assert_eq!(reader.next_line().await.unwrap(), Some(&b"two"[..]));
        assert_eq!(reader.next_line().await.unwrap(), Some(&b""[..]));
        assert_eq!(reader.next_line().await.unwrap(), Some(&b"three"[..]));
        assert_eq!(reader.next_line().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_line_exactly_at_the_limit_passes_and_one_more_byte_fails() {
        let data: &[u8] = b"12345\n123456\n";
        let mut reader = LineReader::new(data, 5);
        assert_eq!(reader.next_line().await.unwrap(), Some(&b"12345"[..]));
        assert!(matches!(reader.next_line().await, Err(LineError::TooLong { limit: 5 })));
    }

    #[tokio::test]
    async fn an_oversized_line_fails_before_it_is_fully_read() {
        let (mut writer, reader) = tokio::io::duplex(1024);
        let mut reader = LineReader::new(reader, 100);
        // Only 200 bytes are ever written and the line never ends: the reader must not
        // wait for the newline to report the overflow.
        writer.write_all(&[b'x'; 200]).await.unwrap();
        assert!(matches!(reader.next_line().await, Err(LineError::TooLong { limit: 100 })));
    }

    #[tokio::test]
    async fn truncating_mode_keeps_the_prefix_and_continues() {
        let data: &[u8] = b"abcdefgh\nxy\n";
        let mut reader = LineReader::new(data, 3);
        let line = reader.next_line_truncated().await.unwrap().unwrap();
        assert_eq!(line, TruncatedLine { bytes: b"abc", dropped: 5 });
        let line = reader.next_line_truncated().await.unwrap().unwrap();
        assert_eq!(line, TruncatedLine { bytes: b"xy", dropped: 0 });
        assert!(reader.next_line_truncated().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn lines_split_across_reads_are_joined() {
        let (mut writer, reader) = tokio::io::duplex(4);
        let mut reader = LineReader::new(reader, 64);
        let writing = tokio::spawn(async move {
            writer.write_all(b"{\"id\":1,\"result\":\"pong\"}\n").await.unwrap();
        });
        assert_eq!(reader.next_line().await.unwrap(), Some(&b"{\"id\":1,\"result\":\"pong\"}"[..]));
        writing.await.unwrap();
    }
}

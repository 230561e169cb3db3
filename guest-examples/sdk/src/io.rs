//! Lines from stdin, with a deadline: the plugin's loop waits for the next line or for the
//! earliest storage deadline, whichever comes first.
//!
//! Natively stdin is polled with `poll(2)`; in `wasm32-wasip2` together with a
//! monotonic-clock timer through `wasi:io/poll`. No thread: a line reaches the loop
//! without a hand-over between threads.

use std::collections::VecDeque;
use std::time::Duration;

/// Longest line the plugin accepts from the host; a longer one is skipped and answered
/// -32600 by the loop. The host's own requests are far smaller.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// What waiting on stdin produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Line(Vec<u8>),
    /// A line longer than [`MAX_LINE_BYTES`] was skipped.
    Oversized,
    TimedOut,
    Closed,
}

/// A source of lines: stdin, or a script in tests.
pub trait LineSource {
    /// The next line (without its `\n`), waiting at most `wait` (forever when `None`).
    fn next_line(&mut self, wait: Option<Duration>) -> Next;
}

/// Splits buffered bytes into lines, skipping what overflows [`MAX_LINE_BYTES`].
#[derive(Default)]
pub(crate) struct LineBuffer {
    pending: Vec<u8>,
    overflowed: bool,
}

impl LineBuffer {
    /// Adds bytes; returns the lines they complete.
    pub(crate) fn push(&mut self, mut bytes: &[u8]) -> Vec<Next> {
        let mut complete = Vec::new();
        while let Some(end) = bytes.iter().position(|&byte| byte == b'\n') {
            self.append(&bytes[..end]);
            complete.push(if std::mem::take(&mut self.overflowed) {
                Next::Oversized
            } else {
                Next::Line(std::mem::take(&mut self.pending))
            });
            self.pending.clear();
            bytes = &bytes[end + 1..];
        }
        self.append(bytes);
        complete
    }

    /// The unterminated last line at end of input, if any.
    pub(crate) fn finish(&mut self) -> Option<Next> {
        if std::mem::take(&mut self.overflowed) {
            self.pending.clear();
            return Some(Next::Oversized);
        }
        (!self.pending.is_empty()).then(|| Next::Line(std::mem::take(&mut self.pending)))
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.overflowed || self.pending.len() + bytes.len() > MAX_LINE_BYTES {
            self.overflowed = true;
            self.pending.clear();
        } else {
            self.pending.extend_from_slice(bytes);
        }
    }
}

/// Stdin, read without a thread: the loop waits for it to become readable or for its
/// deadline, whichever comes first.
pub struct Stdin {
    raw: platform::RawStdin,
    buffer: LineBuffer,
    ready: VecDeque<Next>,
    closed: bool,
}

impl Stdin {
    pub fn open() -> Self {
        Self { raw: platform::RawStdin::open(), buffer: LineBuffer::default(), ready: VecDeque::new(), closed: false }
    }
}

impl LineSource for Stdin {
    fn next_line(&mut self, wait: Option<Duration>) -> Next {
        loop {
            if let Some(next) = self.ready.pop_front() {
                return next;
            }
            if self.closed {
                return Next::Closed;
            }
            if !self.raw.wait_readable(wait) {
                return Next::TimedOut;
            }
            match self.raw.read() {
                Some(bytes) => self.ready.extend(self.buffer.push(&bytes)),
                None => {
                    self.ready.extend(self.buffer.finish());
                    self.closed = true;
                }
            }
        }
    }
}

const CHUNK_BYTES: usize = 64 << 10;

#[cfg(not(target_os = "wasi"))]
mod platform {
    use nix::errno::Errno;
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::io::{ErrorKind, Read};
    use std::os::fd::AsFd;
    use std::time::Duration;

    /// File descriptor 0, polled with `poll(2)`.
    pub(super) struct RawStdin {
        chunk: Vec<u8>,
    }

    impl RawStdin {
        pub(super) fn open() -> Self {
            Self { chunk: vec![0; super::CHUNK_BYTES] }
        }

        /// `false` when `wait` passed with nothing to read.
        pub(super) fn wait_readable(&mut self, wait: Option<Duration>) -> bool {
            let Some(wait) = wait else { return true };
            // Rounded up, so a deadline is never polled for as zero milliseconds early.
            let millis = wait.as_micros().div_ceil(1000);
            let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
            let stdin = std::io::stdin();
            loop {
                let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, timeout) {
                    Ok(0) => return false,
                    Err(Errno::EINTR) => continue,
                    // Readable, closed or failed: `read` tells which.
                    _ => return true,
                }
            }
        }

        /// The bytes available now (blocking until some are), `None` at end of input.
        pub(super) fn read(&mut self) -> Option<Vec<u8>> {
            loop {
                match std::io::stdin().lock().read(&mut self.chunk) {
                    Ok(0) => return None,
                    Ok(read) => return Some(self.chunk[..read].to_vec()),
                    Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                    // A non-blocking stdin with nothing yet: back to waiting.
                    Err(error) if error.kind() == ErrorKind::WouldBlock => return Some(Vec::new()),
                    Err(_) => return None,
                }
            }
        }
    }
}

#[cfg(target_os = "wasi")]
mod platform {
    use std::time::Duration;
    use wasip2::cli::stdin::get_stdin;
    use wasip2::clocks::monotonic_clock::subscribe_duration;
    use wasip2::io::poll::poll;
    use wasip2::io::streams::InputStream;

    /// Stdin as a `wasi:io` stream, polled together with a monotonic-clock timer.
    pub(super) struct RawStdin {
        stream: InputStream,
    }

    impl RawStdin {
        pub(super) fn open() -> Self {
            Self { stream: get_stdin() }
        }

        /// `false` when `wait` passed with nothing to read.
        pub(super) fn wait_readable(&mut self, wait: Option<Duration>) -> bool {
            let Some(wait) = wait else { return true };
            let readable = self.stream.subscribe();
            let timer = subscribe_duration(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX));
            poll(&[&readable, &timer]).contains(&0)
        }

        /// The bytes available now (blocking until some are), `None` at end of input.
        pub(super) fn read(&mut self) -> Option<Vec<u8>> {
            self.stream.blocking_read(super::CHUNK_BYTES as u64).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_joined_and_capped() {
        let mut buffer = LineBuffer::default();
        assert_eq!(buffer.push(b"one\ntw"), vec![Next::Line(b"one".to_vec())]);
        assert_eq!(buffer.push(b"o\n\nthree"), vec![Next::Line(b"two".to_vec()), Next::Line(Vec::new())]);
        assert_eq!(buffer.finish(), Some(Next::Line(b"three".to_vec())));
        assert_eq!(buffer.finish(), None);
        let huge = vec![b'x'; MAX_LINE_BYTES + 1];
        assert!(buffer.push(&huge).is_empty());
        assert_eq!(buffer.push(b"tail\nnext\n"), vec![Next::Oversized, Next::Line(b"next".to_vec())]);
    }
}

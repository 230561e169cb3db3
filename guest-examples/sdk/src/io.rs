//! Lines from stdin, with a deadline: the plugin's loop waits for the next line or for the
//! earliest storage deadline, whichever comes first.
//!
//! Natively a reader thread feeds a channel. In `wasm32-wasip2` there are no threads: the
//! loop polls stdin and a monotonic-clock timer together through `wasi:io/poll`.

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

#[cfg(not(target_os = "wasi"))]
pub use native::Stdin;
#[cfg(target_os = "wasi")]
pub use wasi::Stdin;

#[cfg(not(target_os = "wasi"))]
mod native {
    use super::{LineBuffer, LineSource, Next};
    use std::io::Read;
    use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
    use std::time::Duration;

    /// Stdin read by a thread of its own, so the loop can wait with a deadline.
    pub struct Stdin {
        lines: Receiver<Next>,
    }

    impl Stdin {
        pub fn open() -> Self {
            let (sender, lines) = sync_channel(64);
            // Detached on purpose: it ends at end of input, or with the process.
            std::thread::spawn(move || read_lines(sender));
            Self { lines }
        }
    }

    fn read_lines(sender: SyncSender<Next>) {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = LineBuffer::default();
        let mut chunk = vec![0; 64 << 10];
        loop {
            let read = match stdin.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            for line in buffer.push(&chunk[..read]) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        }
        if let Some(last) = buffer.finish() {
            let _ = sender.send(last);
        }
        let _ = sender.send(Next::Closed);
    }

    impl LineSource for Stdin {
        fn next_line(&mut self, wait: Option<Duration>) -> Next {
            let received = match wait {
                Some(wait) => self.lines.recv_timeout(wait),
                None => self.lines.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(next) => next,
                Err(RecvTimeoutError::Timeout) => Next::TimedOut,
                Err(RecvTimeoutError::Disconnected) => Next::Closed,
            }
        }
    }
}

#[cfg(target_os = "wasi")]
mod wasi {
    use super::{LineBuffer, LineSource, Next};
    use std::collections::VecDeque;
    use std::time::Duration;
    use wasip2::cli::stdin::get_stdin;
    use wasip2::clocks::monotonic_clock::subscribe_duration;
    use wasip2::io::poll::poll;
    use wasip2::io::streams::{InputStream, StreamError};

    /// Stdin as a `wasi:io` stream, polled together with a timer.
    pub struct Stdin {
        stream: InputStream,
        buffer: LineBuffer,
        ready: VecDeque<Next>,
        closed: bool,
    }

    impl Stdin {
        pub fn open() -> Self {
            Self { stream: get_stdin(), buffer: LineBuffer::default(), ready: VecDeque::new(), closed: false }
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
                let readable = self.stream.subscribe();
                match wait {
                    Some(wait) => {
                        let timer = subscribe_duration(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX));
                        if !poll(&[&readable, &timer]).contains(&0) {
                            return Next::TimedOut;
                        }
                    }
                    None => readable.block(),
                }
                match self.stream.read(64 << 10) {
                    Ok(bytes) => self.ready.extend(self.buffer.push(&bytes)),
                    Err(StreamError::Closed | StreamError::LastOperationFailed(_)) => {
                        self.ready.extend(self.buffer.finish());
                        self.closed = true;
                    }
                }
            }
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

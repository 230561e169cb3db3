//! The plugin's side of the pipes: writing lines to stdout, and requests to the host
//! (`storage/*`) with their own deadline.

use codex_plugin_protocol::message;
use codex_plugin_protocol::{ErrorObject, Response};
use futures::channel::oneshot;
use serde_json::Value;
use serde_json::value::RawValue;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::storage::StorageError;

/// How long a request to the host may wait for its answer, unless the plugin says otherwise.
pub const DEFAULT_HOST_TIMEOUT: Duration = Duration::from_secs(10);

/// Stdout, one whole line at a time.
pub(crate) struct Output {
    writer: RefCell<Box<dyn Write>>,
}

impl Output {
    pub(crate) fn new(writer: Box<dyn Write>) -> Self {
        Self { writer: RefCell::new(writer) }
    }

    /// Writes and flushes one line (which carries its own `\n`). A host that has gone away
    /// cannot be told anything: the error is dropped and the loop ends at end of input.
    pub(crate) fn line(&self, line: &[u8]) {
        let mut writer = self.writer.borrow_mut();
        let _ = writer.write_all(line).and_then(|()| writer.flush());
    }
}

struct Waiting {
    method: &'static str,
    /// `None` when the timeout is too long to put a date on: no deadline.
    deadline: Option<Instant>,
    answer: oneshot::Sender<Result<Value, StorageError>>,
}

/// Requests from the plugin to the host, numbered from 1 like the official SDK's storage
/// client. Single-threaded: the plugin's loop owns it.
pub(crate) struct HostLink {
    output: Output,
    next_id: Cell<i64>,
    waiting: RefCell<HashMap<i64, Waiting>>,
    timeout: Cell<Duration>,
    closed: Cell<bool>,
}

impl HostLink {
    pub(crate) fn new(output: Output) -> Self {
        Self {
            output,
            next_id: Cell::new(1),
            waiting: RefCell::new(HashMap::new()),
            timeout: Cell::new(DEFAULT_HOST_TIMEOUT),
            closed: Cell::new(false),
        }
    }

    pub(crate) fn set_timeout(&self, timeout: Duration) {
        self.timeout.set(timeout);
    }

    /// Sends a request and waits for its answer or its deadline.
    pub(crate) async fn request(&self, method: &'static str, params: Option<&Value>) -> Result<Value, StorageError> {
        if self.closed.get() {
            return Err(StorageError::Closed);
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (answer, answered) = oneshot::channel();
        let deadline = Instant::now().checked_add(self.timeout.get());
        self.waiting.borrow_mut().insert(id, Waiting { method, deadline, answer });
        let params = params.map(serde_json::value::to_raw_value).transpose().map_err(|error| {
            self.waiting.borrow_mut().remove(&id);
            StorageError::Malformed { method, why: error.to_string() }
        })?;
        self.output.line(&message::request_line(id, method, params.as_deref()));
        answered.await.unwrap_or(Err(StorageError::Closed))
    }

    /// Hands an answer from the host to its request; `false` if nothing waits for it.
    pub(crate) fn deliver(&self, response: Response) -> bool {
        let Some(waiting) = response.id.and_then(|id| self.waiting.borrow_mut().remove(&id)) else {
            return false;
        };
        let outcome = match response.outcome {
            Ok(raw) => parse(waiting.method, &raw),
            Err(message::ResponseError::Rpc(error)) => Err(StorageError::Refused(error)),
            Err(message::ResponseError::Malformed(why)) => Err(StorageError::Malformed { method: waiting.method, why }),
        };
        let _ = waiting.answer.send(outcome);
        true
    }

    /// Fails every request whose deadline has passed.
    pub(crate) fn expire(&self, now: Instant) {
        let expired: Vec<i64> = self
            .waiting
            .borrow()
            .iter()
            .filter(|(_, waiting)| waiting.deadline.is_some_and(|deadline| deadline <= now))
            .map(|(id, _)| *id)
            .collect();
        let timeout = self.timeout.get();
        for id in expired {
            if let Some(waiting) = self.waiting.borrow_mut().remove(&id) {
                let _ = waiting.answer.send(Err(StorageError::TimedOut { method: waiting.method, after: timeout }));
            }
        }
    }

    /// The earliest deadline of a waiting request.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.waiting.borrow().values().filter_map(|waiting| waiting.deadline).min()
    }

    /// No more answers will come: every waiting request fails, and new ones at once.
    pub(crate) fn close(&self) {
        self.closed.set(true);
        for (_, waiting) in self.waiting.borrow_mut().drain() {
            let _ = waiting.answer.send(Err(StorageError::Closed));
        }
    }

    /// Answers a request of the host.
    pub(crate) fn answer(&self, id: &Value, outcome: &Result<Value, ErrorObject>) {
        self.output.line(&message::response_line(id, outcome));
    }
}

fn parse(method: &'static str, raw: &RawValue) -> Result<Value, StorageError> {
    serde_json::from_str(raw.get()).map_err(|error| StorageError::Malformed { method, why: error.to_string() })
}

//! The host's calls waiting for an answer, and the closed state that fails them all.

use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

use super::error::{CallError, ConnectionClosed};

pub(super) type Outcome = Result<Box<RawValue>, CallError>;

/// Pending calls by id. The lock is never held across an `.await`.
#[derive(Default)]
pub(super) struct PendingCalls {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: HashMap<i64, oneshot::Sender<Outcome>>,
    closed: Option<ConnectionClosed>,
}

impl PendingCalls {
    /// Registers a call, unless the connection has already closed.
    pub(super) fn register(&self, id: i64) -> Result<oneshot::Receiver<Outcome>, ConnectionClosed> {
        let (sender, receiver) = oneshot::channel();
        let mut state = self.lock();
        if let Some(closed) = &state.closed {
            return Err(closed.clone());
        }
        state.waiting.insert(id, sender);
        Ok(receiver)
    }

    /// Delivers an answer; `false` if no call waits for this id (late or duplicate).
    pub(super) fn complete(&self, id: i64, outcome: Outcome) -> bool {
        let sender = self.lock().waiting.remove(&id);
        match sender {
            Some(sender) => {
                // The caller may have given up (timed out) a moment ago: nothing to do.
                let _ = sender.send(outcome);
                true
            }
            None => false,
        }
    }

    /// Forgets a call whose caller gave up.
    pub(super) fn forget(&self, id: i64) {
        self.lock().waiting.remove(&id);
    }

    /// Closes: every waiting call fails now with `closed`, and every later call at once.
    /// The first reason wins: returns how many calls it failed, or `None` if the
    /// connection had already closed.
    pub(super) fn close(&self, closed: ConnectionClosed) -> Option<usize> {
        let waiting = {
            let mut state = self.lock();
            if state.closed.is_some() {
                return None;
            }
            state.closed = Some(closed.clone());
            std::mem::take(&mut state.waiting)
        };
        let failed = waiting.len();
        for sender in waiting.into_values() {
            let _ = sender.send(Err(CallError::Closed(closed.clone())));
        }
        Some(failed)
    }

    pub(super) fn closed(&self) -> Option<ConnectionClosed> {
        self.lock().closed.clone()
    }

    pub(super) fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the map inconsistent (each
        // operation is a single insert or remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

//! The request deadline of a running guest, enforced with epoch interruption.
//!
//! The engine's epoch advances every [`super::runtime::EPOCH_TICK`]; a guest executing wasm
//! code notices each advance and asks the watchdog whether it may go on. A guest blocked
//! waiting for its stdin executes nothing, so idle time never counts. What counts is how
//! long the guest has executed since its last message the host could use (an answer, or a
//! request to the host), as the dispatcher reports them: lines that are not JSON-RPC are
//! not progress. Past the deadline it is interrupted, and the trap says why.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime::UpdateDeadline;

/// A guest that executed for its whole deadline without writing a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request deadline of {} exceeded: the guest ran without answering", format_deadline(*deadline))]
pub struct DeadlineExceeded {
    pub deadline: Duration,
}

fn format_deadline(deadline: Duration) -> String {
    if deadline.subsec_nanos() == 0 {
        format!("{} s", deadline.as_secs())
    } else {
        format!("{} ms", deadline.as_millis())
    }
}

/// Epoch ticks the guest executed since it last wrote.
#[derive(Debug, Default)]
pub(super) struct Watchdog {
    ticks_since_output: AtomicU64,
}

impl Watchdog {
    /// The store's epoch callback: yield to other tasks every tick, and interrupt the guest
    /// once it has run `allowed_ticks` ticks without output.
    pub(super) fn check(&self, allowed_ticks: u64, deadline: Duration) -> wasmtime::Result<UpdateDeadline> {
        let ran = self.ticks_since_output.fetch_add(1, Ordering::Relaxed) + 1;
        if ran > allowed_ticks {
            return Err(DeadlineExceeded { deadline }.into());
        }
        Ok(UpdateDeadline::Yield(1))
    }

    /// The guest wrote a usable message: its count starts over.
    pub(super) fn progress(&self) {
        self.ticks_since_output.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn ticks_without_progress_run_out_and_progress_resets_them() {
        let watchdog = Arc::new(Watchdog::default());
        let deadline = Duration::from_millis(30);
        for _ in 0..3 {
            assert!(watchdog.check(3, deadline).is_ok());
        }
        watchdog.progress();
        for _ in 0..3 {
            assert!(watchdog.check(3, deadline).is_ok(), "progress reset the count");
        }
        let Err(error) = watchdog.check(3, deadline) else { panic!("the fourth tick is over the deadline") };
        assert_eq!(error.downcast_ref::<DeadlineExceeded>(), Some(&DeadlineExceeded { deadline }));
        assert_eq!(error.to_string(), "request deadline of 30 ms exceeded: the guest ran without answering");
    }
}

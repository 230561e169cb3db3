//! The timeout layer: one deadline around "send a request, await its answer".
//!
//! Every call to every plugin goes through [`Timeouts::run`], whatever the transport.
//! `initialize` is a call like any other. When the deadline passes the call is dropped,
//! which forgets its id: a late answer is then logged and dropped by the dispatcher.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// The reference's default for every request, `initialize` included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A call that ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no answer within {0:?}")]
pub struct Elapsed(pub Duration);

/// Deadlines of one plugin: a default, and overrides by method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    default: Duration,
    by_method: BTreeMap<String, Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::new(DEFAULT_REQUEST_TIMEOUT)
    }
}

impl Timeouts {
    /// `default` for every method; a zero duration means the reference's 30 s.
    pub fn new(default: Duration) -> Self {
        let default = if default.is_zero() { DEFAULT_REQUEST_TIMEOUT } else { default };
        Self { default, by_method: BTreeMap::new() }
    }

    /// A different deadline for one method (a slow `sync/pullProgress`, say).
    pub fn with_method(mut self, method: &str, timeout: Duration) -> Self {
        self.by_method.insert(method.to_owned(), timeout);
        self
    }

    pub fn default_timeout(&self) -> Duration {
        self.default
    }

    /// The deadline for `method`: the call's own override, else the method's, else the
    /// plugin's default.
    pub fn for_call(&self, method: &str, call_override: Option<Duration>) -> Duration {
        call_override.or_else(|| self.by_method.get(method).copied()).unwrap_or(self.default)
    }

    /// Runs `call` under the deadline for `method`.
    pub async fn run<T>(
        &self,
        method: &str,
        call_override: Option<Duration>,
        call: impl Future<Output = T>,
    ) -> Result<T, Elapsed> {
        let deadline = self.for_call(method, call_override);
        tokio::time::timeout(deadline, call).await.map_err(|_| Elapsed(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_in_order() {
        let timeouts =
            Timeouts::new(Duration::from_secs(10)).with_method("sync/pullProgress", Duration::from_secs(300));
        assert_eq!(timeouts.for_call("ping", None), Duration::from_secs(10));
        assert_eq!(timeouts.for_call("sync/pullProgress", None), Duration::from_secs(300));
        assert_eq!(timeouts.for_call("sync/pullProgress", Some(Duration::from_secs(1))), Duration::from_secs(1));
        assert_eq!(Timeouts::new(Duration::ZERO).default_timeout(), DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(Timeouts::default().default_timeout(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_answers_ends_at_its_deadline() {
        let timeouts = Timeouts::new(Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        let outcome = timeouts.run("initialize", None, std::future::pending::<()>()).await;
        assert_eq!(outcome, Err(Elapsed(Duration::from_secs(30))));
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert_eq!(timeouts.run("ping", None, async { 7 }).await, Ok(7));
    }
}

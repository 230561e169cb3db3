//! Call metrics, per plugin and method: requests, successes, failures by kind, a latency
//! histogram, and restarts. Kept in memory (a successful call writes nothing to disk) and
//! merged into the registry when a host stops, so `plugin show` adds up every run.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::dispatch::CloseReason;
use crate::plugin::PluginError;
use crate::protocol::{ErrorCode, HostMethod};

/// Upper bounds of the latency buckets, in milliseconds; one more bucket holds the rest.
pub const LATENCY_BOUNDS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000];

/// One method's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodMetrics {
    pub requests: u64,
    pub successes: u64,
    /// By kind: `timeout`, `crashed`, `protocol`, `internal`, `start-failed` (faults), the
    /// plugin's own answers (`not-found`, `rate-limited`, `auth-failed`, `api-error`,
    /// `config-error`, …), and the host's refusals (`refused`, `unavailable`).
    pub failures: BTreeMap<String, u64>,
    /// Calls per latency bucket (see [`LATENCY_BOUNDS_MS`]).
    pub latency_ms: Vec<u64>,
}

/// One plugin's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginMetrics {
    pub methods: BTreeMap<String, MethodMetrics>,
    /// Instances started again after a fault.
    pub restarts: u64,
}

impl PluginMetrics {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &PluginMetrics) {
        self.restarts += other.restarts;
        for (method, counts) in &other.methods {
            let mine = self.methods.entry(method.clone()).or_default();
            mine.requests += counts.requests;
            mine.successes += counts.successes;
            for (kind, count) in &counts.failures {
                *mine.failures.entry(kind.clone()).or_default() += count;
            }
            mine.latency_ms.resize(LATENCY_BOUNDS_MS.len() + 1, 0);
            for (bucket, count) in mine.latency_ms.iter_mut().zip(&counts.latency_ms) {
                *bucket += count;
            }
        }
    }
}

/// The name unknown methods are counted under.
pub const UNKNOWN_METHOD: &str = "(unknown method)";

/// Declares [`FailureKind`] from one list: each kind and the name it is counted under.
macro_rules! failure_kinds {
    ($($kind:ident = $name:literal),+ $(,)?) => {
        /// What a failed call is counted as: a fault of the plugin, one of its own answers,
        /// or a refusal of the host.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum FailureKind { $($kind),+ }

        impl FailureKind {
            const COUNT: usize = [$($name),+].len();
            const ALL: [Self; Self::COUNT] = [$(Self::$kind),+];

            /// The name in [`MethodMetrics::failures`].
            pub fn name(self) -> &'static str {
                match self { $(Self::$kind => $name),+ }
            }
        }
    };
}

failure_kinds! {
    Timeout = "timeout",
    Crashed = "crashed",
    Stopped = "stopped",
    Protocol = "protocol",
    StartFailed = "start-failed",
    Internal = "internal",
    RateLimited = "rate-limited",
    NotFound = "not-found",
    AuthFailed = "auth-failed",
    ApiError = "api-error",
    ConfigError = "config-error",
    MethodNotFound = "method-not-found",
    InvalidParams = "invalid-params",
    OtherError = "other-error",
    LaunchFailed = "launch-failed",
    Unavailable = "unavailable",
    Refused = "refused",
    AtCapacity = "at-capacity",
}

const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// One method's counters: atomics, so counting a call takes no lock.
#[derive(Debug, Default)]
struct MethodCells {
    requests: AtomicU64,
    successes: AtomicU64,
    /// By [`FailureKind`], in its order.
    failures: [AtomicU64; FailureKind::COUNT],
    latency: [AtomicU64; BUCKETS],
}

impl MethodCells {
    /// The counts, each read (`take`: and reset) on its own.
    fn read(&self, take: bool) -> MethodMetrics {
        let read = |cell: &AtomicU64| if take { cell.swap(0, Ordering::Relaxed) } else { cell.load(Ordering::Relaxed) };
        let failures = FailureKind::ALL.iter().zip(&self.failures);
        MethodMetrics {
            requests: read(&self.requests),
            successes: read(&self.successes),
            failures: failures
                .map(|(kind, cell)| (kind.name().to_owned(), read(cell)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            latency_ms: self.latency.iter().map(read).collect(),
        }
    }
}

#[derive(Debug)]
struct Cells {
    /// One per [`HostMethod`], in its order, and one for names that are not.
    methods: Vec<MethodCells>,
    restarts: AtomicU64,
}

/// One plugin's counters, shared by its instances and cheap to clone.
#[derive(Debug, Clone)]
pub struct PluginCounter(Arc<Cells>);

impl Default for PluginCounter {
    fn default() -> Self {
        let methods = (0..=HostMethod::ALL.len()).map(|_| MethodCells::default()).collect();
        Self(Arc::new(Cells { methods, restarts: AtomicU64::new(0) }))
    }
}

impl PluginCounter {
    /// Counts one call of `method` (a name outside the protocol is counted as
    /// [`UNKNOWN_METHOD`]).
    pub fn record(&self, method: &str, outcome: Result<(), &PluginError>, took: Duration) {
        let index = HostMethod::from_name(method).map_or(HostMethod::ALL.len(), |method| method as usize);
        let cells = &self.0.methods[index];
        cells.requests.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(()) => cells.successes.fetch_add(1, Ordering::Relaxed),
            Err(error) => cells.failures[FailureKind::of(error) as usize].fetch_add(1, Ordering::Relaxed),
        };
        let millis = took.as_millis() as u64;
        let bucket = LATENCY_BOUNDS_MS.iter().position(|bound| millis <= *bound).unwrap_or(LATENCY_BOUNDS_MS.len());
        cells.latency[bucket].fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_restart(&self) {
        self.0.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far; `take` also resets them.
    fn read(&self, take: bool) -> PluginMetrics {
        let names = HostMethod::ALL.iter().map(|method| method.name()).chain([UNKNOWN_METHOD]);
        let methods = names
            .zip(&self.0.methods)
            .map(|(name, cells)| (name.to_owned(), cells.read(take)))
            .filter(|(_, counts)| counts.requests > 0)
            .collect();
        let restarts =
            if take { self.0.restarts.swap(0, Ordering::Relaxed) } else { self.0.restarts.load(Ordering::Relaxed) };
        PluginMetrics { methods, restarts }
    }
}

/// The metrics of every plugin of a host.
#[derive(Debug, Default)]
pub struct Metrics {
    plugins: Mutex<FxHashMap<String, PluginCounter>>,
}

impl Metrics {
    /// The counter of `plugin`, made on first use.
    pub fn counter(&self, plugin: &str) -> PluginCounter {
        let mut plugins = self.plugins.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(counter) = plugins.get(plugin) {
            return counter.clone();
        }
        let counter = PluginCounter::default();
        plugins.insert(plugin.to_owned(), counter.clone());
        counter
    }

    /// One plugin's counts so far.
    pub fn plugin(&self, plugin: &str) -> PluginMetrics {
        let plugins = self.plugins.lock().unwrap_or_else(PoisonError::into_inner);
        plugins.get(plugin).map(|counter| counter.read(false)).unwrap_or_default()
    }

    /// Drops the counts of `plugin`: it was never registered.
    pub fn forget(&self, plugin: &str) {
        self.plugins.lock().unwrap_or_else(PoisonError::into_inner).remove(plugin);
    }

    /// Every plugin's counts, emptied: what a host merges into the registry when it stops.
    pub fn take(&self) -> HashMap<String, PluginMetrics> {
        let plugins = self.plugins.lock().unwrap_or_else(PoisonError::into_inner);
        plugins.iter().map(|(plugin, counter)| (plugin.clone(), counter.read(true))).collect()
    }
}

impl FailureKind {
    /// The kind a failed call is counted as.
    pub fn of(error: &PluginError) -> Self {
        match error {
            PluginError::Timeout { .. } => Self::Timeout,
            PluginError::Closed { closed, .. } => match closed.reason {
                CloseReason::Exited(_) => Self::Crashed,
                CloseReason::Stopped => Self::Stopped,
                _ => Self::Protocol,
            },
            PluginError::MalformedResult { .. } | PluginError::InvalidManifest { .. } => Self::Protocol,
            PluginError::Initialize { .. } => Self::StartFailed,
            PluginError::Answered { error, .. } => match error.kind() {
                ErrorCode::InternalError => Self::Internal,
                ErrorCode::RateLimited => Self::RateLimited,
                ErrorCode::NotFound => Self::NotFound,
                ErrorCode::AuthFailed => Self::AuthFailed,
                ErrorCode::ApiError => Self::ApiError,
                ErrorCode::ConfigError => Self::ConfigError,
                ErrorCode::MethodNotFound => Self::MethodNotFound,
                ErrorCode::InvalidParams => Self::InvalidParams,
                _ => Self::OtherError,
            },
            PluginError::Process(_) | PluginError::Launch { .. } | PluginError::NeedsKey { .. } => Self::LaunchFailed,
            PluginError::Disabled { .. } | PluginError::Restarting { .. } | PluginError::SessionLost { .. } => {
                Self::Unavailable
            }
            PluginError::AtCapacity { .. } => Self::AtCapacity,
            PluginError::UnknownMethod { .. }
            | PluginError::NotRegistered { .. }
            | PluginError::CapabilityNotDeclared { .. }
            | PluginError::InvalidParams { .. } => Self::Refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_indexes_its_own_counter() {
        for (index, kind) in FailureKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index, "{kind:?}");
        }
    }

    #[test]
    fn calls_are_counted_by_method_outcome_and_latency_and_taken_once() {
        let metrics = Metrics::default();
        let counter = metrics.counter("echo");
        let not_found = PluginError::Answered {
            plugin: crate::dispatch::PluginLabel::new("echo", "wasm"),
            method: "metadata/series/get",
            error: crate::protocol::ErrorObject::new(ErrorCode::NotFound, "no such series"),
        };
        counter.record("ping", Ok(()), Duration::from_micros(400));
        counter.record("metadata/series/get", Err(&not_found), Duration::from_millis(30));
        counter.record("made/up", Ok(()), Duration::from_secs(40));
        counter.record_restart();
        let counts = metrics.plugin("echo");
        let ping = &counts.methods["ping"];
        assert_eq!((ping.requests, ping.successes, ping.latency_ms[0]), (1, 1, 1));
        let get = &counts.methods["metadata/series/get"];
        assert_eq!(get.failures, BTreeMap::from([("not-found".to_owned(), 1)]));
        assert_eq!(get.latency_ms[5], 1, "30 ms is in the 50 ms bucket");
        assert_eq!(counts.methods[UNKNOWN_METHOD].latency_ms[LATENCY_BOUNDS_MS.len()], 1, "past the last bound");
        assert_eq!(counts.restarts, 1);
        assert_eq!(metrics.take()["echo"], counts);
        assert_eq!(metrics.plugin("echo"), PluginMetrics::default(), "taken counts are reset");
    }
}

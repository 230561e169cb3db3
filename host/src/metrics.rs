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

/// The kinds a failure is counted as (see [`failure_kind`]).
const FAILURE_KINDS: [&str; 17] = [
    "timeout",
    "crashed",
    "stopped",
    "protocol",
    "start-failed",
    "internal",
    "rate-limited",
    "not-found",
    "auth-failed",
    "api-error",
    "config-error",
    "method-not-found",
    "invalid-params",
    "other-error",
    "launch-failed",
    "unavailable",
    "refused",
];

const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// One method's counters: atomics, so counting a call takes no lock.
#[derive(Debug, Default)]
struct MethodCells {
    requests: AtomicU64,
    successes: AtomicU64,
    failures: [AtomicU64; FAILURE_KINDS.len()],
    latency: [AtomicU64; BUCKETS],
}

impl MethodCells {
    /// The counts, each read (`take`: and reset) on its own.
    fn read(&self, take: bool) -> MethodMetrics {
        let read = |cell: &AtomicU64| if take { cell.swap(0, Ordering::Relaxed) } else { cell.load(Ordering::Relaxed) };
        let failures = FAILURE_KINDS.iter().zip(&self.failures);
        MethodMetrics {
            requests: read(&self.requests),
            successes: read(&self.successes),
            failures: failures.map(|(kind, cell)| (kind.to_string(), read(cell))).filter(|(_, n)| *n > 0).collect(),
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
            Err(error) => cells.failures[failure_index(error)].fetch_add(1, Ordering::Relaxed),
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

    /// Every plugin's counts, emptied: what a host merges into the registry when it stops.
    pub fn take(&self) -> HashMap<String, PluginMetrics> {
        let plugins = self.plugins.lock().unwrap_or_else(PoisonError::into_inner);
        plugins.iter().map(|(plugin, counter)| (plugin.clone(), counter.read(true))).collect()
    }
}

fn failure_index(error: &PluginError) -> usize {
    let kind = failure_kind(error);
    FAILURE_KINDS.iter().position(|known| *known == kind).expect("every kind is listed")
}

/// The kind a failed call is counted as.
pub fn failure_kind(error: &PluginError) -> &'static str {
    match error {
        PluginError::Timeout { .. } => "timeout",
        PluginError::Closed { closed, .. } => match closed.reason {
            CloseReason::Exited(_) => "crashed",
            CloseReason::Stopped => "stopped",
            _ => "protocol",
        },
        PluginError::MalformedResult { .. } | PluginError::InvalidManifest { .. } => "protocol",
        PluginError::Initialize { .. } => "start-failed",
        PluginError::Answered { error, .. } => match error.kind() {
            ErrorCode::InternalError => "internal",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::NotFound => "not-found",
            ErrorCode::AuthFailed => "auth-failed",
            ErrorCode::ApiError => "api-error",
            ErrorCode::ConfigError => "config-error",
            ErrorCode::MethodNotFound => "method-not-found",
            ErrorCode::InvalidParams => "invalid-params",
            _ => "other-error",
        },
        PluginError::Process(_) | PluginError::Launch { .. } => "launch-failed",
        PluginError::Disabled { .. } | PluginError::Restarting { .. } => "unavailable",
        PluginError::UnknownMethod { .. }
        | PluginError::CapabilityNotDeclared { .. }
        | PluginError::InvalidParams { .. } => "refused",
    }
}

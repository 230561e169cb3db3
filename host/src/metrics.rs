//! Call metrics, per plugin and method: requests, successes, failures by kind, a latency
//! histogram, and restarts. Kept in memory (a successful call writes nothing to disk) and
//! merged into the registry when a host stops, so `plugin show` adds up every run.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::dispatch::CloseReason;
use crate::plugin::PluginError;
use crate::protocol::ErrorCode;

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

/// The metrics of every plugin of a host.
#[derive(Debug, Default)]
pub struct Metrics {
    plugins: Mutex<HashMap<String, PluginMetrics>>,
}

impl Metrics {
    /// Counts one call.
    pub fn record(&self, plugin: &str, method: &str, outcome: Result<(), &PluginError>, took: Duration) {
        let mut plugins = self.plugins.lock().unwrap_or_else(PoisonError::into_inner);
        let methods = &mut plugins.entry_ref(plugin).methods;
        let counts = match methods.get_mut(method) {
            Some(counts) => counts,
            None => methods.entry(method.to_owned()).or_default(),
        };
        counts.requests += 1;
        match outcome {
            Ok(()) => counts.successes += 1,
            Err(error) => *counts.failures.entry(failure_kind(error).to_owned()).or_default() += 1,
        }
        let millis = took.as_millis() as u64;
        let bucket = LATENCY_BOUNDS_MS.iter().position(|bound| millis <= *bound).unwrap_or(LATENCY_BOUNDS_MS.len());
        counts.latency_ms.resize(LATENCY_BOUNDS_MS.len() + 1, 0);
        counts.latency_ms[bucket] += 1;
    }

    pub fn record_restart(&self, plugin: &str) {
        self.plugins.lock().unwrap_or_else(PoisonError::into_inner).entry_ref(plugin).restarts += 1;
    }

    /// One plugin's counts so far.
    pub fn plugin(&self, plugin: &str) -> PluginMetrics {
        self.plugins.lock().unwrap_or_else(PoisonError::into_inner).get(plugin).cloned().unwrap_or_default()
    }

    /// Every plugin's counts, emptied: what a host merges into the registry when it stops.
    pub fn take(&self) -> HashMap<String, PluginMetrics> {
        std::mem::take(&mut *self.plugins.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

trait EntryRef {
    fn entry_ref(&mut self, plugin: &str) -> &mut PluginMetrics;
}

impl EntryRef for HashMap<String, PluginMetrics> {
    /// The plugin's entry, allocating its key only the first time.
    fn entry_ref(&mut self, plugin: &str) -> &mut PluginMetrics {
        if !self.contains_key(plugin) {
            self.insert(plugin.to_owned(), PluginMetrics::default());
        }
        self.get_mut(plugin).expect("inserted above")
    }
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

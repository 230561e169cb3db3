//! [`PluginTarget`]: the run's [`Target`] over a real started plugin, its recorded wire and
//! the throwaway host side it asks.

use futures::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;
use tokio::time::Instant;

use super::{CheckRequests, RegisteredSource, Stop, StorageWrites, Target};
use crate::conformance::judge::{Answered, Exchange};
use crate::plugin::{Plugin, PluginError};
use crate::transport::recorder::{WireRecorder, WireSnapshot};

/// A started plugin under check.
pub struct PluginTarget {
    pub plugin: Plugin,
    pub recorder: WireRecorder,
    pub requests: Arc<CheckRequests>,
    pub transport: &'static str,
}

impl Target for PluginTarget {
    fn call<'a>(&'a self, method: &'static str, params: Option<&'a Value>) -> BoxFuture<'a, Exchange> {
        Box::pin(async move {
            let started = Instant::now();
            let raw = params.map(serde_json::value::to_raw_value).transpose();
            let answered = match raw {
                Ok(raw) => match self.plugin.call_unchecked(method, raw.as_deref(), None).await {
                    Ok(answer) => match serde_json::from_str(answer.get()) {
                        Ok(result) => Answered::Result(result),
                        Err(error) => Answered::Malformed(error.to_string()),
                    },
                    Err(error) => answered(error),
                },
                Err(error) => Answered::Malformed(format!("the params could not be written: {error}")),
            };
            Exchange { answered, latency: started.elapsed() }
        })
    }

    fn ended(&self) -> Option<String> {
        self.plugin.closed_reason().map(|closed| closed.reason.to_string())
    }

    fn refuse_storage_writes(&self, refusing: bool) {
        self.requests.refuse_storage_writes(refusing);
    }

    fn storage_writes(&self) -> StorageWrites {
        self.requests.storage_writes()
    }

    fn release_sources(&self) -> Vec<RegisteredSource> {
        self.requests.sources()
    }

    fn recorded_candidates(&self) -> Vec<Value> {
        self.requests.candidates()
    }

    fn transport(&self) -> &'static str {
        self.transport
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, Stop> {
        Box::pin(async move {
            let grace = self.plugin.shutdown_policy().grace;
            let stopped = self.plugin.shutdown_reporting().await;
            Stop {
                answered: stopped.answered.map_err(|error| error.to_string()),
                exit: stopped.exit,
                grace,
                wire: self.recorder.snapshot(),
            }
        })
    }

    fn kill(self: Box<Self>) -> BoxFuture<'static, WireSnapshot> {
        Box::pin(async move {
            self.plugin.kill().await;
            self.recorder.snapshot()
        })
    }
}

/// An error of a call, as the run judges it.
fn answered(error: PluginError) -> Answered {
    match error {
        PluginError::Answered { error, .. } => {
            Answered::Error { code: error.code, message: error.message, data: error.data }
        }
        PluginError::Timeout { after, .. } => Answered::TimedOut(after),
        PluginError::Closed { closed, .. } => Answered::Ended(closed.reason.to_string()),
        other => Answered::Malformed(other.to_string()),
    }
}

//! Requests from the plugin to the host.

use serde_json::Value;
use serde_json::value::RawValue;
use std::future::Future;
use std::pin::Pin;

use crate::protocol::{ErrorCode, ErrorObject};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A request the plugin made, without its id (the connection answers it).
#[derive(Debug)]
pub struct ReverseRequest {
    pub method: String,
    pub params: Option<Box<RawValue>>,
    /// The host request the plugin was serving, if it says so. Informational.
    pub parent_request_id: Option<Value>,
}

/// Serves the plugin's requests. Each request runs on its own task, so a slow answer never
/// stops the connection from reading the plugin's other messages.
pub trait ReverseHandler: Send + Sync + 'static {
    fn handle(&self, request: ReverseRequest) -> BoxFuture<Result<Value, ErrorObject>>;
}

/// Answers every plugin request with -32601: for connections with no storage.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefuseAll;

impl ReverseHandler for RefuseAll {
    fn handle(&self, request: ReverseRequest) -> BoxFuture<Result<Value, ErrorObject>> {
        let message = format!("unknown method `{}`: this host serves no requests from this plugin", request.method);
        Box::pin(async move { Err(ErrorObject::new(ErrorCode::MethodNotFound, message)) })
    }
}

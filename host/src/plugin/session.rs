//! [`Plugin`]: a started, initialized plugin, whatever its transport.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;

use super::error::PluginError;
use super::id::PluginId;
use crate::dispatch::{CloseReason, Connection, ConnectionConfig, PluginLabel, ReverseHandler};
use crate::limits::Timeouts;
use crate::protocol::codec::DEFAULT_MAX_MESSAGE_BYTES;
use crate::protocol::methods::CheckParams;
use crate::protocol::types::initialize::InitializeParams;
use crate::protocol::{HostMethod, Manifest, MethodSpec};
use crate::transport::{Launched, ShutdownPolicy, TransportHandle};

/// How one plugin is run.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    pub id: PluginId,
    /// Sent as `initialize` params.
    pub initialize: InitializeParams,
    pub timeouts: Timeouts,
    /// Cap on one message from the plugin.
    pub max_message_bytes: usize,
    pub shutdown: ShutdownPolicy,
}

impl PluginSettings {
    /// Defaults: 30 s calls, 8 MiB messages, the reference's shutdown steps.
    pub fn new(id: PluginId, initialize: InitializeParams) -> Self {
        Self {
            id,
            initialize,
            timeouts: Timeouts::default(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            shutdown: ShutdownPolicy::default(),
        }
    }
}

/// A plugin that answered `initialize` with a valid manifest.
pub struct Plugin {
    id: PluginId,
    channel: Channel,
    manifest: Manifest,
    shutdown: ShutdownPolicy,
    /// What the plugin holds while it lives (its place in the host's capacity), let go
    /// after its transport: fields drop in order.
    held: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Plugin {
    /// Connects to a launched plugin, sends `initialize` under the timeout layer, and
    /// validates the manifest. A plugin that fails any step is stopped before this returns.
    pub async fn start(
        launched: Launched,
        settings: PluginSettings,
        reverse: Arc<dyn ReverseHandler>,
    ) -> Result<Self, PluginError> {
        let label = PluginLabel::new(settings.id.as_str(), launched.handle.kind());
        let mut config = ConnectionConfig::new(label.clone(), reverse);
        config.on_message = launched.handle.progress_hook();
        config.max_message_bytes = settings.max_message_bytes;
        let connection = Connection::open(launched.output, launched.input, launched.exit, config);
        let mut channel = Channel { connection, transport: launched.handle, timeouts: settings.timeouts };
        match channel.initialize(&settings.initialize).await {
            Ok(manifest) => Ok(Self { id: settings.id, channel, manifest, shutdown: settings.shutdown, held: None }),
            Err(error) => {
                // No grace: a plugin that failed to start is not asked to shut down.
                channel.stop(&settings.shutdown, Duration::ZERO).await;
                Err(PluginError::Initialize { plugin: label, source: Box::new(error) })
            }
        }
    }

    pub fn id(&self) -> &PluginId {
        &self.id
    }

    /// Keeps `held` (a place in the host's capacity) for as long as the plugin lives: it is
    /// let go once the plugin is stopped, or dropped.
    pub fn holding(mut self, held: impl std::any::Any + Send + Sync) -> Self {
        self.held = Some(Box::new(held));
        self
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn label(&self) -> &PluginLabel {
        self.channel.connection.label()
    }

    /// The plugin's process id (also its process group), when it runs as a process.
    pub fn process_id(&self) -> Option<i32> {
        self.channel.transport.process_id()
    }

    /// Why the plugin's connection ended, if it has.
    pub fn closed_reason(&self) -> Option<crate::dispatch::ConnectionClosed> {
        self.channel.connection.closed_reason()
    }

    /// Whether the plugin's connection has ended.
    pub fn is_closed(&self) -> bool {
        self.channel.connection.is_closed()
    }

    /// The deadline a call of `method` gets when its caller gives none.
    pub fn timeout_for(&self, method: &str) -> Duration {
        self.channel.timeouts.for_call(method, None)
    }

    /// Waits until the plugin's connection ends (it exited, trapped, broke the protocol or
    /// was stopped), and says why.
    pub async fn closed(&self) -> crate::dispatch::ConnectionClosed {
        self.channel.connection.closed().await
    }

    /// Calls a method with typed params and result.
    pub async fn call<M: MethodSpec>(&self, params: &M::Params) -> Result<M::Result, PluginError> {
        self.call_with_timeout::<M>(params, None).await
    }

    /// [`Plugin::call`] with a deadline for this call only.
    pub async fn call_with_timeout<M: MethodSpec>(
        &self,
        params: &M::Params,
        timeout: Option<Duration>,
    ) -> Result<M::Result, PluginError> {
        let method = M::METHOD;
        self.check_capability(method)?;
        params.check().map_err(|why| invalid_params(method, why))?;
        let raw = encode(params).map_err(|why| invalid_params(method, why))?;
        let answer = self.channel.send(method, raw.as_deref(), timeout).await?;
        serde_json::from_str(answer.get()).map_err(|error| self.channel.malformed(method, &error))
    }

    /// Calls a method by name with raw JSON params. The params are checked against the
    /// method's type before anything is sent, and reach the plugin as given (apart from
    /// the changes [`HostMethod::prepare_params`] lists); the result is checked against
    /// its type and returned as the plugin wrote it, every field and number kept.
    pub async fn call_raw(&self, method: &str, params: Value, timeout: Option<Duration>) -> Result<Value, PluginError> {
        let method =
            HostMethod::from_name(method).ok_or_else(|| PluginError::UnknownMethod { method: method.to_owned() })?;
        self.check_capability(method)?;
        let params = method.prepare_params(params).map_err(|why| invalid_params(method, why))?;
        let raw = params.map(|params| serde_json::value::to_raw_value(&params)).transpose();
        let raw = raw.map_err(|error| invalid_params(method, error.to_string()))?;
        let answer = self.channel.send(method, raw.as_deref(), timeout).await?;
        let value: Value =
            serde_json::from_str(answer.get()).map_err(|error| self.channel.malformed(method, &error))?;
        method.check_result(&value).map_err(|error| self.channel.malformed(method, &error))?;
        Ok(value)
    }

    /// Sends `method` with `params` exactly as given, checking neither against the
    /// protocol nor against the manifest, and returns the answer unread: for `check`, which
    /// asks what a plugin does with a method it does not know or params it cannot use.
    pub async fn call_unchecked(
        &self,
        method: &'static str,
        params: Option<&RawValue>,
        timeout: Option<Duration>,
    ) -> Result<Box<RawValue>, PluginError> {
        self.channel.send_named(method, params, timeout).await
    }

    /// Stops the plugin: `shutdown`, a grace period, then closing its input, SIGTERM and
    /// SIGKILL of its whole process group, as far as needed.
    pub async fn shutdown(self) {
        self.shutdown_reporting().await;
    }

    /// [`Plugin::shutdown`], saying how it went: whether `shutdown` was answered, and how
    /// far the host had to go before the plugin was gone.
    pub async fn shutdown_reporting(mut self) -> Stopped {
        let policy = self.shutdown;
        let started = tokio::time::Instant::now();
        self.channel.connection.expect_close();
        let answered = if self.channel.connection.closed_reason().is_none() {
            self.channel.send(HostMethod::Shutdown, None, Some(policy.grace)).await.map(drop)
        } else {
            Err(PluginError::Closed {
                method: HostMethod::Shutdown.name(),
                closed: self.channel.connection.closed_reason().expect("checked above"),
            })
        };
        if let Err(error) = &answered {
            tracing::debug!(plugin = self.id.as_str(), "`shutdown` got no answer: {error}");
        }
        let remaining_grace = policy.grace.saturating_sub(started.elapsed());
        let exit = self.channel.stop(&policy, remaining_grace).await;
        Stopped { answered, exit }
    }

    /// Stops the plugin without asking it: closes its input, then SIGTERM and SIGKILL of its
    /// process group as the policy allows. Dropping the future (or the plugin) instead kills
    /// the group at once.
    pub async fn kill(mut self) {
        let policy = self.shutdown;
        self.channel.stop(&policy, Duration::ZERO).await;
    }

    /// The plugin's shutdown policy.
    pub fn shutdown_policy(&self) -> ShutdownPolicy {
        self.shutdown
    }

    fn check_capability(&self, method: HostMethod) -> Result<(), PluginError> {
        match method.capability() {
            Some(capability) if !capability.is_declared_in(&self.manifest.capabilities) => {
                Err(PluginError::CapabilityNotDeclared {
                    plugin: self.label().clone(),
                    method: method.name(),
                    capability: capability.manifest_form(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// How a [`Plugin::shutdown_reporting`] went.
#[derive(Debug)]
pub struct Stopped {
    /// The answer to `shutdown`, or why there was none.
    pub answered: Result<(), PluginError>,
    pub exit: ExitStep,
}

/// How far a stop had to go before the plugin ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStep {
    /// It ended by itself within the grace period.
    WithinGrace,
    /// It ended once its input was closed.
    InputClosed,
    /// It had to be signalled (SIGTERM, then SIGKILL) or, in wasm, stopped.
    Terminated,
}

/// A plugin's connection, its transport and its deadlines: what every call goes through,
/// from `initialize` to `shutdown`.
struct Channel {
    connection: Connection,
    transport: TransportHandle,
    timeouts: Timeouts,
}

impl Channel {
    async fn send(
        &self,
        method: HostMethod,
        params: Option<&RawValue>,
        timeout: Option<Duration>,
    ) -> Result<Box<RawValue>, PluginError> {
        self.send_named(method.name(), params, timeout).await
    }

    /// The one path every call takes: the timeout layer around the dispatcher.
    async fn send_named(
        &self,
        name: &'static str,
        params: Option<&RawValue>,
        timeout: Option<Duration>,
    ) -> Result<Box<RawValue>, PluginError> {
        let label = self.connection.label();
        match self.timeouts.run(name, timeout, self.connection.call(name, params)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(PluginError::from_call(label, name, error)),
            Err(elapsed) => Err(PluginError::Timeout { plugin: label.clone(), method: name, after: elapsed.0 }),
        }
    }

    fn malformed(&self, method: HostMethod, error: &serde_json::Error) -> PluginError {
        let plugin = self.connection.label().clone();
        PluginError::MalformedResult { plugin, method: method.name(), why: error.to_string() }
    }

    async fn initialize(&mut self, params: &InitializeParams) -> Result<Manifest, PluginError> {
        let method = HostMethod::Initialize;
        let raw = encode(params).map_err(|why| invalid_params(method, why))?;
        let answer = self.send(method, raw.as_deref(), None).await?;
        let value: Value = serde_json::from_str(answer.get()).map_err(|error| self.malformed(method, &error))?;
        let plugin = self.connection.label().clone();
        Manifest::parse(value.clone()).map_err(|source| PluginError::InvalidManifest {
            plugin,
            source,
            answer: Box::new(value),
        })
    }

    /// Waits up to `grace` for a voluntary exit, then closes the input and escalates.
    async fn stop(&mut self, policy: &ShutdownPolicy, grace: Duration) -> ExitStep {
        self.connection.expect_close();
        let step = if self.transport.wait_for_exit(grace).await {
            ExitStep::WithinGrace
        } else {
            self.connection.close_input();
            if self.transport.wait_for_exit(policy.after_close_input).await {
                ExitStep::InputClosed
            } else {
                ExitStep::Terminated
            }
        };
        self.transport.terminate(policy).await;
        self.connection.close(CloseReason::Stopped);
        step
    }
}

fn encode<P: Serialize>(params: &P) -> Result<Option<Box<RawValue>>, String> {
    let value = serde_json::to_value(params).map_err(|error| error.to_string())?;
    if value.is_null() {
        return Ok(None);
    }
    serde_json::value::to_raw_value(&value).map(Some).map_err(|error| error.to_string())
}

fn invalid_params(method: HostMethod, why: String) -> PluginError {
    PluginError::InvalidParams { method: method.name().to_owned(), why }
}

//! [`Plugin`]: the manifest, the providers, and the JSON-RPC loop over stdin/stdout.

use codex_plugin_protocol::manifest::{Capabilities, CredentialField, Manifest, OAuthConfig, ReleaseSourceCapability};
use codex_plugin_protocol::message::{self, Incoming};
use codex_plugin_protocol::types::initialize::InitializeParams;
use codex_plugin_protocol::{ErrorCode, ErrorObject, HostMethod, PluginRequest};
use futures::FutureExt;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::io::{LineSource, Next, Stdin};
use crate::link::{HostLink, Output};
use crate::logger::Logger;
use crate::providers::{BookProvider, RecommendationProvider, ReleaseProvider, SeriesProvider, SyncProvider};
use crate::router::{Books, Recommendations, Releases, Router, Series, Sync};
use crate::storage::Storage;

/// Who the plugin is. Its capabilities are not listed here: they follow from the
/// providers given to [`Plugin`].
#[derive(Debug, Clone, Default)]
pub struct PluginInfo {
    /// Lowercase letters, digits and single hyphens.
    pub name: String,
    pub display_name: String,
    /// Semver.
    pub version: String,
    pub description: String,
    pub author: Option<String>,
    pub homepage: Option<String>,
    /// For sync plugins: `api:<service>`, the source of the external ids it matches.
    pub external_id_source: Option<String>,
    /// Sync and recommendation entries should carry genres, tags and metadata.
    pub wants_full_metadata: bool,
    /// Pushed sync entries should carry `progress.readBooks`.
    pub wants_detailed_progress: bool,
    pub required_credentials: Vec<CredentialField>,
    /// The OAuth endpoints the host drives for this plugin's users.
    pub oauth: Option<OAuthConfig>,
    /// `configSchema`, `userConfigSchema`, setup instructions: kept as given.
    pub extra: Map<String, Value>,
}

impl PluginInfo {
    pub fn new(name: &str, display_name: &str, version: &str, description: &str) -> Self {
        Self {
            name: name.into(),
            display_name: display_name.into(),
            version: version.into(),
            description: description.into(),
            ..Self::default()
        }
    }
}

/// A plugin: who it is, what it provides. [`Plugin::run`] serves it on stdin/stdout.
pub struct Plugin {
    info: PluginInfo,
    router: Router,
    /// The manifest's `releaseSource`, from the release provider.
    release_source: Option<ReleaseSourceCapability>,
    host_timeout: Duration,
}

impl Plugin {
    pub fn new(info: PluginInfo) -> Self {
        Self { info, router: Router::default(), release_source: None, host_timeout: crate::link::DEFAULT_HOST_TIMEOUT }
    }

    /// Adds series metadata: `metadataProvider` gets `"series"`.
    pub fn series(mut self, provider: impl SeriesProvider + 'static) -> Self {
        self.router.series = Some(Rc::new(Series(provider)));
        self
    }

    /// Adds book metadata: `metadataProvider` gets `"book"`.
    pub fn books(mut self, provider: impl BookProvider + 'static) -> Self {
        self.router.books = Some(Rc::new(Books(provider)));
        self
    }

    /// Adds reading sync: `userReadSync: true`.
    pub fn sync(mut self, provider: impl SyncProvider + 'static) -> Self {
        self.router.sync = Some(Rc::new(Sync(provider)));
        self
    }

    /// Adds recommendations: `userRecommendationProvider: true`.
    pub fn recommendations(mut self, provider: impl RecommendationProvider + 'static) -> Self {
        self.router.recommendations = Some(Rc::new(Recommendations(provider)));
        self
    }

    /// Announces releases of tracked series (`releases/poll`).
    pub fn releases(mut self, provider: impl ReleaseProvider + 'static) -> Self {
        self.release_source = Some(provider.capability());
        self.router.releases = Some(Rc::new(Releases(provider)));
        self
    }

    /// How long a storage request may wait for the host (default 10 s).
    pub fn host_timeout(mut self, timeout: Duration) -> Self {
        self.host_timeout = timeout;
        self
    }

    /// The manifest `initialize` answers with.
    pub fn manifest(&self) -> Manifest {
        let mut metadata_provider = Vec::new();
        if self.router.series.is_some() {
            metadata_provider.push("series".to_owned());
        }
        if self.router.books.is_some() {
            metadata_provider.push("book".to_owned());
        }
        Manifest {
            name: self.info.name.clone(),
            display_name: self.info.display_name.clone(),
            version: self.info.version.clone(),
            description: self.info.description.clone(),
            author: self.info.author.clone(),
            homepage: self.info.homepage.clone(),
            protocol_version: "1.0".into(),
            capabilities: Capabilities {
                metadata_provider,
                user_read_sync: self.router.sync.is_some(),
                user_recommendation_provider: self.router.recommendations.is_some(),
                external_id_source: self.info.external_id_source.clone(),
                wants_full_metadata: self.info.wants_full_metadata,
                wants_detailed_progress: self.info.wants_detailed_progress,
                release_source: self.release_source.clone(),
                other: Map::new(),
            },
            required_credentials: self.info.required_credentials.clone(),
            oauth: self.info.oauth.clone(),
            other: self.info.extra.clone(),
        }
    }

    /// Serves the plugin on stdin and stdout until `shutdown` or end of input.
    pub fn run(self) -> ExitCode {
        self.serve(Stdin::open(), Box::new(std::io::stdout()))
    }

    /// Serves the plugin on any line source and writer (tests use scripts).
    pub fn serve(self, input: impl LineSource, output: Box<dyn Write>) -> ExitCode {
        let link = Rc::new(HostLink::new(Output::new(output)));
        link.set_timeout(self.host_timeout);
        let log = Logger::new(&self.info.name);
        let loop_state = Loop {
            manifest: Rc::new(self.manifest()),
            ctx: Rc::new(Context::new(Storage::new(link.clone()), crate::Releases::new(link.clone()), log)),
            router: Rc::new(self.router),
            link,
        };
        loop_state.run(input)
    }
}

/// The running loop: one thread, one task per request from the host.
struct Loop {
    manifest: Rc<Manifest>,
    ctx: Rc<Context>,
    router: Rc<Router>,
    link: Rc<HostLink>,
}

impl Loop {
    fn run(self, mut input: impl LineSource) -> ExitCode {
        let mut pool = LocalPool::new();
        loop {
            pool.run_until_stalled();
            // Deadlines are checked on every turn, not only when the host is quiet.
            self.link.expire(Instant::now());
            pool.run_until_stalled();
            let wait = self.link.next_deadline().map(|deadline| deadline.saturating_duration_since(Instant::now()));
            match input.next_line(wait) {
                Next::Line(line) => {
                    if self.handle(&line, &pool) == Continue::Stop {
                        break;
                    }
                }
                Next::Oversized => {
                    let error = ErrorObject::new(ErrorCode::InvalidRequest, "a line over 64 MiB was skipped");
                    self.link.answer(&Value::Null, &Err(error));
                }
                Next::TimedOut => {}
                Next::Closed => break,
            }
        }
        // No more answers from the host: requests still waiting fail, and their tasks end.
        self.link.close();
        pool.run_until_stalled();
        ExitCode::SUCCESS
    }

    fn handle(&self, line: &[u8], pool: &LocalPool) -> Continue {
        match message::classify(line) {
            Incoming::Response(response) => {
                if !self.link.deliver(response) {
                    self.ctx.log().debug("dropping an answer from the host to no waiting request");
                }
            }
            Incoming::Request(request) => return self.request(request, pool),
            Incoming::Invalid(_) if line.trim_ascii().is_empty() => {}
            Incoming::Invalid(why) => self.refuse(line, &why),
        }
        Continue::Go
    }

    fn request(&self, request: PluginRequest, pool: &LocalPool) -> Continue {
        // As the official SDK: a request without an id (or with `id: null`) is answered
        // with `id: null`.
        let id = request.id.unwrap_or(Value::Null);
        let params = match request.params.map(|raw| serde_json::from_str::<Value>(raw.get())).transpose() {
            Ok(params) => params.unwrap_or(Value::Null),
            Err(error) => {
                let error = ErrorObject::new(ErrorCode::InvalidParams, format!("Invalid params: {error}"));
                self.link.answer(&id, &Err(error));
                return Continue::Go;
            }
        };
        match request.method.as_str() {
            "initialize" => {
                self.ctx.initialize(lenient_initialize(params));
                let manifest = serde_json::to_value(self.manifest.as_ref())
                    .map_err(|error| ErrorObject::new(ErrorCode::InternalError, error.to_string()));
                self.link.answer(&id, &manifest);
                if let Some(releases) = self.router.releases.clone() {
                    let ctx = self.ctx.clone();
                    pool.spawner().spawn_local(async move { releases.initialized(&ctx).await }).ok();
                }
            }
            "ping" => self.link.answer(&id, &Ok(json!("pong"))),
            "shutdown" => {
                self.link.answer(&id, &Ok(Value::Null));
                return Continue::Stop;
            }
            method => self.spawn_method(id, method, params, pool),
        }
        Continue::Go
    }

    fn spawn_method(&self, id: Value, method: &str, params: Value, pool: &LocalPool) {
        let route = HostMethod::from_name(method)
            .ok_or_else(|| ErrorObject::new(ErrorCode::MethodNotFound, format!("Method not found: {method}")))
            .and_then(|known| {
                self.router.provider_for(known).map(|route| (known, route)).map_err(|error| error.to_rpc())
            });
        let (method, route) = match route {
            Ok(found) => found,
            Err(error) => return self.link.answer(&id, &Err(error)),
        };
        let ctx = self.ctx.clone();
        let link = self.link.clone();
        let task = async move {
            // A panicking method fails its own request, not the plugin (natively; a wasm
            // guest built with `panic = "abort"` ends as its trap).
            let answered = AssertUnwindSafe(route.route(&ctx, method, params)).catch_unwind().await;
            let answer = match answered {
                Ok(answer) => answer.map_err(|error| error.to_rpc()),
                Err(panic) => Err(ErrorObject::new(ErrorCode::InternalError, panic_message(panic.as_ref()))),
            };
            link.answer(&id, &answer);
        };
        if pool.spawner().spawn_local(task).is_err() {
            self.ctx.log().error("could not start a request task");
        }
    }

    /// A line that is not a request or an answer: -32700 for broken JSON, -32601 for a
    /// method that is not a name, -32600 otherwise.
    fn refuse(&self, line: &[u8], why: &str) {
        let (code, message, id) = match serde_json::from_slice::<Value>(line) {
            Err(_) => (ErrorCode::ParseError, "Parse error: invalid JSON".to_owned(), Value::Null),
            Ok(value) => {
                let id = value.get("id").cloned().unwrap_or(Value::Null);
                match value.get("method") {
                    Some(method) => (ErrorCode::MethodNotFound, format!("Method not found: {method}"), id),
                    None => (ErrorCode::InvalidRequest, format!("Invalid request: {why}"), id),
                }
            }
        };
        self.link.answer(&id, &Err(ErrorObject::new(code, message)));
    }
}

/// `initialize` params as the official SDK takes them: whatever is missing or malformed
/// is left at its default rather than refusing to start.
fn lenient_initialize(params: Value) -> InitializeParams {
    if let Ok(params) = serde_json::from_value::<InitializeParams>(params.clone()) {
        return params;
    }
    let object = |key: &str| params.get(key).and_then(Value::as_object).cloned().unwrap_or_default();
    let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
    let credentials = object("credentials")
        .into_iter()
        .filter_map(|(key, value)| value.as_str().map(|secret| (key, secret.to_owned())))
        .collect();
    let mut lenient = InitializeParams::new(object("adminConfig"), object("userConfig"), credentials);
    lenient.log_level =
        params.get("logLevel").cloned().and_then(|level| serde_json::from_value(level).ok()).unwrap_or_default();
    lenient.data_dir = text("dataDir");
    lenient.user_id = text("userId");
    lenient.user_plugin_id = text("userPluginId");
    lenient
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    format!("the plugin failed: {detail}")
}

#[derive(Debug, PartialEq, Eq)]
enum Continue {
    Go,
    Stop,
}

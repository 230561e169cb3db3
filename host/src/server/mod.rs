//! `serve` (issue 15): the host as a long-running server, with an HTTP JSON API under
//! `/api/v1` and the page, over one plugin host and its services. Built on axum and
//! tower-http; the routes are a surface over the services (orchestration.md §0): they
//! check who asks and what they sent, call a service, and map its answer.

pub mod api;
pub mod auth;
pub mod body;
pub mod error;
pub mod jobs;
pub mod oauth_binding;
pub mod pages;
pub mod services;

use axum::Router;
use std::future::{Future, IntoFuture as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use url::Url;

pub use services::Services;

/// Request bodies above this are refused (413) before they are read whole.
pub const BODY_LIMIT: usize = 1 << 20;
/// How long requests in flight may take to finish at a stop before the server stops
/// without them.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How long a request may take (a plugin call's own deadline is usually far shorter); an
/// event stream's body is not bounded.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a request's body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long running jobs (a sync, an auto-match, a poll) may take to end at a stop before
/// they are stopped where they are (what they committed stays).
pub const JOB_GRACE: Duration = Duration::from_secs(10);

/// How the server is reached.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// What browsers and OAuth providers see (behind a reverse proxy, its address); the
    /// OAuth redirect URI is built from it, and an https one makes the cookie Secure.
    pub public_url: Url,
}

impl ServerConfig {
    /// The OAuth redirect URI every provider sends users back to.
    pub fn oauth_redirect_uri(&self) -> String {
        self.public_url.join("oauth/callback").map(String::from).unwrap_or_default()
    }
}

/// What every request shares.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    services: Arc<Services>,
    jobs: Arc<jobs::Jobs>,
    config: ServerConfig,
    /// Turns true when the server stops: event streams end.
    stopping: watch::Receiver<bool>,
    /// Which browser started each OAuth flow.
    oauth_bindings: oauth_binding::Bindings,
    templates: handlebars::Handlebars<'static>,
}

impl AppState {
    pub fn services(&self) -> &Services {
        &self.0.services
    }

    pub fn jobs(&self) -> &Arc<jobs::Jobs> {
        &self.0.jobs
    }

    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// Whether the page's cookie is Secure (an https public URL).
    pub fn secure_cookies(&self) -> bool {
        self.0.config.public_url.scheme() == "https"
    }

    pub fn templates(&self) -> &handlebars::Handlebars<'static> {
        &self.0.templates
    }

    pub fn oauth_bindings(&self) -> &oauth_binding::Bindings {
        &self.0.oauth_bindings
    }

    /// Resolves when the server stops.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.0.stopping.clone()
    }
}

/// Serves on `listener` until `stop` resolves, then stops cleanly: no new connections,
/// requests in flight answered, event streams ended, running jobs given [`JOB_GRACE`],
/// the background work stopped, every plugin shut down.
pub async fn serve(
    listener: TcpListener,
    mut services: Services,
    config: ServerConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    services.start_background();
    let services = Arc::new(services);
    let jobs = Arc::new(jobs::Jobs::default());
    let (stopping_sender, stopping) = watch::channel(false);
    let mut drained = stopping.clone();
    let state = AppState(Arc::new(Shared {
        services: services.clone(),
        jobs: jobs.clone(),
        config,
        stopping,
        oauth_bindings: Default::default(),
        templates: pages::render::templates(),
    }));
    let app = router(state);
    let signal = async move {
        stop.await;
        tracing::info!("stopping: finishing the requests in flight");
        let _ = stopping_sender.send(true);
    };
    // Answers go out as soon as they are written, not held back for the next one's ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY on a connection: {error}");
        }
    });
    let serving = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(signal)
        .into_future();
    let served = tokio::select! {
        served = serving => served.map_err(|error| format!("the server stopped: {error}")),
        () = async move {
            let _ = drained.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(DRAIN_LIMIT).await;
        } => {
            tracing::warn!("requests were still in flight {} s after the stop; stopping without them", DRAIN_LIMIT.as_secs());
            Ok(())
        }
    };
    jobs.stop(JOB_GRACE).await;
    drop(jobs);
    // Connections that just closed may still hold the services for a moment.
    let mut services = services;
    for _ in 0..250 {
        match Arc::try_unwrap(services) {
            Ok(alone) => {
                alone.shutdown().await;
                return served;
            }
            Err(shared) => services = shared,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Err(error) = services.integrations.release_leases() {
        tracing::warn!("could not give back the sync leases: {error}");
    }
    served?;
    Err("requests in flight still held the host 5 s after the stop: its plugins were stopped without a clean shutdown"
        .into())
}

/// A server serving on a task of its own, for a program that embeds it (and the tests
/// and benchmarks): [`RunningServer::stop`] stops it as a signal stops `serve`, and so
/// does dropping it (without waiting for the stop).
pub struct RunningServer {
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<(), String>>,
}

impl RunningServer {
    /// Serves on `listener` (see [`serve`]) until stopped. Inside a runtime.
    pub fn spawn(listener: TcpListener, services: Services, config: ServerConfig) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(serve(listener, services, config, async move {
            let _ = stopped.await;
        }));
        Self { stop, served }
    }

    /// Stops the server cleanly and waits for it.
    pub async fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        self.served.await.map_err(|error| format!("the server's task failed: {error}"))?
    }
}

/// Every route, with the layers every request goes through.
pub fn router(state: AppState) -> Router {
    use tower_http::catch_panic::CatchPanicLayer;
    use tower_http::set_header::SetResponseHeaderLayer;
    Router::new()
        .nest("/api/v1", api::routes())
        .merge(pages::routes())
        .route("/oauth/callback", axum::routing::get(api::connections::oauth_callback))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(BODY_TIMEOUT))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            http::StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            http::header::X_CONTENT_TYPE_OPTIONS,
            http::HeaderValue::from_static("nosniff"),
        ))
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            axum::response::IntoResponse::into_response(error::ApiError::internal(
                "the server failed on this request (see its log)",
            ))
        }))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

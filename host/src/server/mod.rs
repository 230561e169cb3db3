//! `serve` (issue 15): the host as a long-running server, with an HTTP JSON API under
//! `/api/v1` and the page, over one plugin host and its services. Built on axum and
//! tower-http; the routes are a surface over the services (orchestration.md §0): they
//! check who asks and what they sent, call a service, and map its answer.

pub mod api;
pub mod auth;
pub mod body;
pub mod error;
pub mod jobs;
pub mod services;

use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use url::Url;

pub use services::Services;

/// Request bodies above this are refused (413) before they are read whole.
pub const BODY_LIMIT: usize = 1 << 20;
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
    let state = AppState(Arc::new(Shared { services: services.clone(), jobs: jobs.clone(), config, stopping }));
    let app = router(state);
    let signal = async move {
        stop.await;
        tracing::info!("stopping: finishing the requests in flight");
        let _ = stopping_sender.send(true);
    };
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(signal)
        .await;
    jobs.stop(JOB_GRACE).await;
    drop(jobs);
    match Arc::try_unwrap(services) {
        Ok(services) => services.shutdown().await,
        Err(_) => tracing::warn!("the services were still in use; their plugins stop without a shutdown"),
    }
    served.map_err(|error| format!("the server stopped: {error}"))
}

/// Every route, with the layers every request goes through.
pub fn router(state: AppState) -> Router {
    use tower_http::catch_panic::CatchPanicLayer;
    use tower_http::set_header::SetResponseHeaderLayer;
    Router::new()
        .nest("/api/v1", api::routes())
        .route("/oauth/callback", axum::routing::get(api::connections::oauth_callback))
        .fallback(api::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
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

//! What a server runs: one plugin host, the library over its database, and the services
//! over both (the pipeline, users' integrations, release sources), with their background
//! work (scheduled syncs, token refreshes, scheduled polls) while it serves.

use std::sync::Arc;
use std::time::Duration;

use crate::access::store::TokenStore;
use crate::host::{HostConfig, PluginHost};
use crate::integrations::{Integrations, SyncScheduler, TokenRefresher};
use crate::library::SqliteLibrary;
use crate::pipeline::Pipeline;
use crate::release_tracking::{ReleaseScheduler, ReleaseTracker, TrackerConfig};
use crate::sandbox::Sandbox;
use crate::transport::process::CommandAllowlist;

/// How often the schedulers look for syncs and polls that fell due.
const SCHEDULER_TICK: Duration = Duration::from_secs(30);
/// How often OAuth tokens close to their expiry are refreshed.
const TOKEN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The host and its services, shared by every request.
pub struct Services {
    pub host: Arc<PluginHost>,
    pub library: Arc<SqliteLibrary>,
    pub pipeline: Pipeline,
    pub integrations: Integrations,
    pub releases: ReleaseTracker,
    pub tokens: TokenStore,
    /// What process plugins may run (checked when an admin registers one).
    pub allowlist: CommandAllowlist,
    /// Where npx plugins added over HTTP are installed from (the operator's choice, never
    /// a token's; checked by [`crate::install::registry_url`]).
    pub npm_registry: String,
    /// The sandbox npx plugins' packages are installed in, as the host confines them.
    pub install_sandbox: Sandbox,
    background: Option<Background>,
}

/// Stops when dropped; what it started runs to its end.
struct Background {
    _syncs: SyncScheduler,
    _tokens: TokenRefresher,
    _polls: ReleaseScheduler,
}

impl Services {
    /// Opens the host over `config`'s data directory and its services. Inside a runtime.
    pub fn open(config: HostConfig) -> Result<Self, String> {
        let allowlist = config.allowlist.clone();
        let install_sandbox =
            Sandbox::new(config.sandbox.clone(), &config.data_dir, config.key_file.iter().cloned().collect());
        let host = Arc::new(PluginHost::open(config).map_err(|error| error.to_string())?);
        let database = host.database_path();
        let library = Arc::new(SqliteLibrary::open(&database).map_err(|error| error.to_string())?);
        // The tracker first: a release plugin started before it could not register.
        let releases = ReleaseTracker::new(host.clone(), library.clone(), TrackerConfig::default())
            .map_err(|error| error.to_string())?;
        let pipeline = Pipeline::new(host.clone(), library.clone()).map_err(|error| error.to_string())?;
        let integrations = Integrations::new(host.clone(), library.clone()).map_err(|error| error.to_string())?;
        let tokens = TokenStore::open(&database).map_err(|error| error.to_string())?;
        Ok(Self {
            host,
            library,
            pipeline,
            integrations,
            releases,
            tokens,
            allowlist,
            npm_registry: crate::install::DEFAULT_REGISTRY.to_owned(),
            install_sandbox,
            background: None,
        })
    }

    /// Starts the background work of a long-running host: scheduled syncs, token refreshes,
    /// and release sources' scheduled polls.
    pub fn start_background(&mut self) {
        self.background = Some(Background {
            _syncs: self.integrations.spawn_sync_scheduler(SCHEDULER_TICK),
            _tokens: self.integrations.spawn_token_refresher(TOKEN_REFRESH_INTERVAL),
            _polls: self.releases.spawn_scheduler(SCHEDULER_TICK),
        });
    }

    /// Stops the background work, gives back this host's sync leases, and shuts every
    /// plugin down (their call counts kept).
    pub async fn shutdown(self) {
        let Self { host, library, pipeline, integrations, releases, tokens, background, .. } = self;
        drop(background);
        if let Err(error) = integrations.release_leases() {
            tracing::warn!("could not give back the sync leases: {error}");
        }
        drop((pipeline, integrations, tokens, library, host));
        match releases.into_host().await.map(Arc::try_unwrap) {
            Some(Ok(host)) => host.shutdown().await,
            _ => tracing::warn!("the host was still in use; its plugins were stopped without a shutdown"),
        }
    }
}

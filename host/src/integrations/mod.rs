//! Users' integrations (orchestration.md §0, layer 2): syncing one user's reading progress
//! with one plugin, and their recommendations. The services call plugins through
//! [`PluginHost`] (one session per job, so every call reaches the same instance) and read
//! and write through the library port; every decision is one of [`crate::sync`]'s pure
//! functions.

mod oauth;
mod oauth_store;
mod recommendation_store;
mod recommendations;
mod records;
mod report;
mod scheduler;
pub(crate) mod single_flight;
mod sync;
mod sync_job;
mod sync_store;
mod tokens;

pub use oauth::{ACCESS_TOKEN, OAuthConnected, OAuthStart, client_secret_name};
pub use recommendations::{DismissReport, RecommendationList, RecommendationSource};
pub use report::{EntryFailure, SyncReport};
pub use scheduler::SyncScheduler;
pub use sync::{PAGE_SIZE, PUSH_BATCH, SyncOptions, SyncProgress};
pub use sync_store::SyncRecord;
pub use tokens::{TokenKeeper, TokenRefresher};

use std::sync::Arc;

use crate::host::PluginHost;
use crate::library::{LibraryError, LibraryPort};
use crate::plugin::PluginError;
use crate::registry::RegistryError;

/// Why a job of a user's integration could not run (a sync that ran and failed is a
/// [`SyncReport`] with its error).
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Library(#[from] LibraryError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(
        "plugin `{plugin}` does not {what} (its manifest has no `capabilities.{capability}`); `plugin show {plugin}` has its manifest"
    )]
    NotCapable { plugin: String, what: &'static str, capability: &'static str },
    #[error(
        "a sync of `{plugin}` for `{user}` is already running on another host ({holder}, its lease runs {seconds} s more); wait for it, `sync status` shows its result"
    )]
    Busy { plugin: String, user: String, holder: String, seconds: i64 },
    #[error(
        "user `{0}` is connected to no recommendation plugin; `plugin connect <id> --user {0}` connects them to one"
    )]
    NoRecommenders(String),
    #[error("{0}")]
    Invalid(String),
    #[error("plugin `{plugin}`'s settings are not usable: {why}; fix them with `plugin search-settings {plugin}`")]
    Settings { plugin: String, why: String },
    #[error("plugin `{plugin}` misbehaved: {why}")]
    Fault { plugin: String, why: String },
    #[error("the host's records could not be used: {0}")]
    Store(String),
    #[error("{0}")]
    Joined(String),
}

/// The integrations of one host over one library.
#[derive(Clone)]
pub struct Integrations {
    host: Arc<PluginHost>,
    library: Arc<dyn LibraryPort>,
    syncs: Arc<sync_store::SyncStore>,
    /// This host's syncs in progress, by (plugin, user): a second request joins the first.
    syncing: Arc<single_flight::SingleFlight<SyncReport>>,
    recommendation_store: Arc<recommendation_store::RecommendationStore>,
    /// This host's recommendation refreshes in progress, by (plugin, user).
    recommending: Arc<single_flight::SingleFlight<codex_plugin_protocol::types::recommendations::GetResponse>>,
    /// Who this host is, in the sync leases it takes.
    holder: Arc<str>,
    /// Users' OAuth tokens, kept fresh (also asked by the host before a user's start).
    tokens: Arc<tokens::TokenKeeper>,
}

impl Integrations {
    /// Opens the integrations' records in the host's database.
    pub fn new(host: Arc<PluginHost>, library: Arc<dyn LibraryPort>) -> Result<Self, IntegrationError> {
        let syncs = Arc::new(sync_store::SyncStore::open(&host.database_path())?);
        let recommendation_store = Arc::new(recommendation_store::RecommendationStore::open(&host.database_path())?);
        let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let holder: Arc<str> = format!("{}:{}:{:08x}", host_name.trim(), std::process::id(), rand_suffix()).into();
        let oauth_store = Arc::new(oauth_store::OAuthStore::open(&host.database_path())?);
        let tokens = Arc::new(tokens::TokenKeeper::new(&host, oauth_store, holder.clone()));
        host.set_before_user_start(tokens.clone());
        Ok(Self {
            host,
            library,
            syncs,
            syncing: Arc::default(),
            recommendation_store,
            recommending: Arc::default(),
            holder,
            tokens,
        })
    }

    pub fn host(&self) -> &Arc<PluginHost> {
        &self.host
    }

    /// Bounds every call to an OAuth token endpoint (30 s by default).
    pub fn set_endpoint_timeout(&self, timeout: std::time::Duration) {
        self.tokens.set_endpoint_timeout(timeout);
    }

    /// The recorded sync of one connection, none if it never synced.
    pub fn sync_record(&self, plugin: &str, user: &str) -> Result<Option<SyncRecord>, IntegrationError> {
        self.syncs.record(plugin, user)
    }

    /// The recorded syncs, of one plugin or one user or all.
    pub fn sync_records(&self, plugin: Option<&str>, user: Option<&str>) -> Result<Vec<SyncRecord>, IntegrationError> {
        self.syncs.records(plugin, user)
    }
}

/// A few random bits, so that two hosts in one process hold different leases.
fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish() as u32
}

/// Now, in microseconds since the epoch (the library's and records' unit).
pub(crate) fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

//! Release sources (issue 14, upstream-host.md §10), the service: the `releases/*` requests
//! of release-source plugins (their sources, owned by their registered id; the tracked
//! series; the ledger), polls of each source with a deadline of their own and one at a
//! time per source, the per-upstream-host backoff, the poll scheduler, and an event stream
//! of announced releases. Every decision is one of [`crate::releases`]' pure functions.

mod events;
mod poll;
mod record;
mod requests;
mod scheduler;
mod starts;
mod store;

pub use events::ReleaseEvent;
pub use poll::{PollProgress, PollReport};
pub use scheduler::ReleaseScheduler;
pub use store::{LEDGER_STATES, LedgerEntry, LedgerFilter, PollState, ReleaseSource};

use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::host::PluginHost;
use crate::integrations::single_flight::SingleFlight;
use crate::library::{LibraryError, LibraryPort};
use crate::plugin::PluginError;
use crate::releases::backoff::Backoffs;

/// A poll's deadline, the reverse requests it makes included (Codex:
/// `plugin.task_request_timeout_seconds`, 300).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(300);
/// The wait of an upstream host that answered 429 or 503 is this, times 2, 4, 8 or 16.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5 * 60);
/// The host settings' keys: the languages that advance a series' latest known chapter
/// when it names none, and the schedule of sources without their own.
pub const DEFAULT_LANGUAGES_SETTING: &str = "release_tracking.default_languages";
pub const DEFAULT_SCHEDULE_SETTING: &str = "release_tracking.default_cron_schedule";
/// Codex's default schedule: daily at midnight UTC.
pub const DEFAULT_SCHEDULE: &str = "0 0 * * *";

/// Why a release job could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("the host's release records could not be used: {0}")]
    Store(String),
    #[error(transparent)]
    Library(#[from] LibraryError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("no release source `{0}`; `releases sources` lists them")]
    UnknownSource(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Joined(String),
}

/// How a tracker is set up.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    pub poll_timeout: Duration,
    pub backoff_base: Duration,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self { poll_timeout: POLL_TIMEOUT, backoff_base: BACKOFF_BASE }
    }
}

/// Release sources of one host over one library. Cheap to clone.
#[derive(Clone)]
pub struct ReleaseTracker {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    host: Arc<PluginHost>,
    library: Arc<dyn LibraryPort>,
    store: store::ReleaseStore,
    config: TrackerConfig,
    events: tokio::sync::broadcast::Sender<ReleaseEvent>,
    running: Running,
    pacing: Pacing,
    /// Itself, for requests served through the host's weak reference.
    this: std::sync::Weak<Inner>,
    /// Release plugins' instance starts and registrations in this host.
    starts: starts::Starts,
}

/// This host's polls in progress.
struct Running {
    /// By (plugin, source id): a second poll of a source joins the first.
    polls: Arc<SingleFlight<PollReport>>,
    /// Each plugin's polls: what it records counts in its source's poll, and its
    /// `releases/report_progress` goes to its latest.
    progress: Mutex<HashMap<String, Vec<Arc<poll::ActivePoll>>>>,
}

/// When sources may be polled.
struct Pacing {
    /// Each (plugin, upstream host)'s wait after a 429 or 503.
    backoffs: Mutex<Backoffs>,
    /// Sources whose scheduled poll fell due while their upstream host backed off: polled
    /// once the wait ends.
    deferred: Mutex<std::collections::HashSet<String>>,
}

impl ReleaseTracker {
    /// Opens the release records in the host's database, and serves release sources'
    /// requests for this host from now on.
    pub fn new(
        host: Arc<PluginHost>,
        library: Arc<dyn LibraryPort>,
        config: TrackerConfig,
    ) -> Result<Self, ReleaseError> {
        let store = store::ReleaseStore::open(&host.database_path())?;
        let inner = Arc::new_cyclic(|this| Inner {
            pacing: Pacing {
                backoffs: Mutex::new(Backoffs::new(
                    chrono::Duration::from_std(config.backoff_base).unwrap_or_default(),
                )),
                deferred: Mutex::default(),
            },
            host,
            library,
            store,
            config,
            events: tokio::sync::broadcast::channel(1024).0,
            running: Running { polls: Arc::default(), progress: Mutex::default() },
            starts: starts::Starts::default(),
            this: this.clone(),
        });
        let service: Arc<dyn crate::host::ReleaseService> = inner.clone();
        inner.host.set_release_service(Arc::downgrade(&service));
        Ok(Self { inner })
    }

    pub fn host(&self) -> &Arc<PluginHost> {
        &self.inner.host
    }

    /// Announced releases and finished polls, as they happen (a slow reader misses the
    /// oldest; the ledger has them all).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ReleaseEvent> {
        self.inner.events.subscribe()
    }

    /// The registered sources, of one plugin or all.
    pub fn sources(&self, plugin: Option<&str>) -> Result<Vec<ReleaseSource>, ReleaseError> {
        self.inner.store.sources(plugin)
    }

    /// One source, by its id or as `plugin:key`.
    pub fn source(&self, name: &str) -> Result<ReleaseSource, ReleaseError> {
        if let Some(source) = self.inner.store.source(name)? {
            return Ok(source);
        }
        let found = name.split_once(':').and_then(|(plugin, key)| {
            let sources = self.inner.store.sources(Some(plugin)).ok()?;
            sources.into_iter().find(|source| source.source_key == key)
        });
        found.ok_or_else(|| ReleaseError::UnknownSource(name.to_owned()))
    }

    /// Ledger rows, newest first.
    pub fn ledger(&self, filter: &LedgerFilter) -> Result<Vec<LedgerEntry>, ReleaseError> {
        if let Some(state) = &filter.state {
            check_ledger_state(state)?;
        }
        self.inner.store.ledger(filter)
    }

    /// Sets a ledger row's state (`dismissed`, `marked_acquired`, `hidden`, or back).
    pub fn set_ledger_state(&self, id: &str, state: &str) -> Result<(), ReleaseError> {
        check_ledger_state(state)?;
        match self.inner.store.set_ledger_state(id, state)? {
            true => Ok(()),
            false => Err(ReleaseError::Invalid(format!("no ledger row `{id}`; `releases list` shows them"))),
        }
    }

    /// An admin's settings of a source: enabled, its own schedule (`Some(None)` clears it).
    pub fn set_source_settings(
        &self,
        source: &str,
        enabled: Option<bool>,
        schedule: Option<Option<&str>>,
    ) -> Result<(), ReleaseError> {
        let source = self.source(source)?;
        if let Some(Some(text)) = schedule {
            scheduler::parse_schedule(text).map_err(ReleaseError::Invalid)?;
        }
        self.inner.store.set_source_settings(&source.id, enabled, schedule)
    }

    /// The languages that advance a series' latest known chapter when it names none.
    pub fn default_languages(&self) -> Result<Vec<String>, ReleaseError> {
        self.inner.default_languages()
    }

    pub fn set_default_languages(&self, languages: &[String]) -> Result<(), ReleaseError> {
        self.inner.store.set_setting(DEFAULT_LANGUAGES_SETTING, &serde_json::json!(languages))
    }

    /// The schedule of sources without their own.
    pub fn default_schedule(&self) -> Result<String, ReleaseError> {
        let stored = self.inner.store.setting(DEFAULT_SCHEDULE_SETTING)?;
        Ok(stored.and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_else(|| DEFAULT_SCHEDULE.to_owned()))
    }

    pub fn set_default_schedule(&self, schedule: &str) -> Result<(), ReleaseError> {
        scheduler::parse_schedule(schedule).map_err(ReleaseError::Invalid)?;
        self.inner.store.set_setting(DEFAULT_SCHEDULE_SETTING, &serde_json::json!(schedule))
    }

    /// Starts `plugin` if it is not running, so that it registers its sources, and then
    /// waits for that registration (at most [`crate::host::MANIFEST_WAIT`]). A plugin
    /// started before the tracker existed was refused its registration: create the
    /// tracker right after the host.
    pub async fn refresh_sources(&self, plugin: &str) -> Result<(), ReleaseError> {
        // An instance is started (and counted as such) before the ping is answered.
        self.inner.host.call(plugin, None, "ping", serde_json::Value::Null).await?;
        self.inner.starts.registration(plugin, crate::host::MANIFEST_WAIT).await;
        Ok(())
    }

    /// Gives the host back once no poll holds the tracker (waiting up to 5 s for those
    /// running), so that it can be shut down; `None` if something still holds it.
    pub async fn into_host(self) -> Option<Arc<PluginHost>> {
        let mut inner = self.inner;
        for _ in 0..250 {
            match Arc::try_unwrap(inner) {
                Ok(inner) => return Some(inner.host),
                Err(shared) => inner = shared,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Inner {
    fn default_languages(&self) -> Result<Vec<String>, ReleaseError> {
        self.store.default_languages()
    }

    /// Runs work on the release records off the async workers (a write may wait for the
    /// database's lock).
    async fn stored<T: Send + 'static>(
        &self,
        work: impl FnOnce(&store::ReleaseStore) -> Result<T, ReleaseError> + Send + 'static,
    ) -> Result<T, ReleaseError> {
        let this = self.strong();
        let done = tokio::task::spawn_blocking(move || work(&this.store)).await;
        done.map_err(|error| ReleaseError::Store(format!("a records task stopped: {error}")))?
    }

    /// Runs library work off the async workers.
    async fn library<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn LibraryPort) -> Result<T, LibraryError> + Send + 'static,
    ) -> Result<T, ReleaseError> {
        let library = self.library.clone();
        let done = tokio::task::spawn_blocking(move || work(library.as_ref())).await;
        done.map_err(|error| ReleaseError::Store(format!("a library task stopped: {error}")))?.map_err(Into::into)
    }
}

/// Now, in microseconds since the epoch.
fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// A time as Codex writes it: RFC 3339, UTC, `Z`.
pub fn rfc3339_utc(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A misspelt state is refused, not read as one that no row has.
fn check_ledger_state(state: &str) -> Result<(), ReleaseError> {
    match LEDGER_STATES.contains(&state) {
        true => Ok(()),
        false => {
            Err(ReleaseError::Invalid(format!("`{state}` is not a ledger state; one of {}", LEDGER_STATES.join(", "))))
        }
    }
}

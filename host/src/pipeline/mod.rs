//! The metadata pipeline's services (orchestration.md §0, layer 2): search, apply and
//! auto-match for one series or book, and auto-match for a whole library. They call plugins
//! through [`PluginHost`] and read and write the library through its port; every decision
//! is one of [`crate::metadata`]'s pure functions.
//!
//! The library port is synchronous: its reads here are short (a row or two) and run on the
//! caller's task; its saves go through the pipeline's writer thread, where saves waiting
//! together share a commit.

mod auto_match;
mod pacer;
mod runs;
mod target;
mod writer;

pub use auto_match::{
    DEFAULT_IN_FLIGHT, LibraryRun, MatchOutcome, MatchReport, Progress, RunOptions, SkipReason, Tally,
};
pub use target::{ApplyOptions, ApplyReport, SearchOutcome, TargetKind};

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::host::PluginHost;
use crate::library::{LibraryError, LibraryPort};
use crate::metadata::rules::{CompiledRules, TitleRule};
use crate::metadata::settings::{ActiveSettings, Target};
use crate::plugin::PluginError;
use crate::protocol::manifest::Manifest;
use crate::registry::{ProviderSource, RegistryError};

/// Why a pipeline job failed; nothing it was doing was written.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Library(#[from] LibraryError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(
        "plugin `{plugin}` is not a metadata provider for {target}s (its manifest's capabilities.metadataProvider lists {declared:?}; `plugin show {plugin}` has the manifest)"
    )]
    NotProvider { plugin: String, target: &'static str, declared: Vec<String> },
    #[error(
        "plugin `{plugin}`'s metadata settings are not usable: {why}; fix them with `plugin search-settings {plugin}`"
    )]
    Settings { plugin: String, why: String },
    #[error(
        "plugin `{plugin}` may not see library `{library}` (its settings limit it to {allowed:?}); `plugin permissions {plugin} --library {library}` or `--all-libraries` changes that"
    )]
    OutOfScope { plugin: String, library: String, allowed: Vec<String> },
    #[error("plugin `{plugin}` answered `{method}` with something that is not an answer: {why}")]
    Fault { plugin: String, method: &'static str, why: String },
    #[error("{0}")]
    Runs(String),
    #[error("the library writer {0}; the log says why, and `library show` what was written")]
    Writer(String),
    #[error("no field {0:?} in an apply report; the fields are {1}")]
    UnknownField(String, String),
}

/// The pipeline over one host and one library.
#[derive(Clone)]
pub struct Pipeline {
    host: Arc<PluginHost>,
    library: Arc<dyn LibraryPort>,
    runs: Arc<runs::Runs>,
    /// Every save goes through it: saves waiting together share a commit.
    writer: Arc<writer::Writer>,
    /// Plugins already told about their legacy `totalBookCount` (logged once each).
    legacy_logged: Arc<Mutex<std::collections::HashSet<String>>>,
    /// Each plugin's pace, shared by every job of this pipeline.
    pacers: Arc<Mutex<HashMap<String, Arc<pacer::Pacer>>>>,
    /// Libraries' title rules, compiled once for as long as they stay the same.
    library_rules: Arc<Mutex<HashMap<String, RulesOfLibrary>>>,
    /// Plugins' providers, built once for as long as their manifest and settings stay the
    /// same (a search from the API builds none).
    providers: Arc<Mutex<HashMap<String, ProviderOfPlugin>>>,
}

/// A plugin's provider and what it was built from.
type ProviderOfPlugin = (ProviderSource, Arc<Provider>);

/// A library's rules as written, and compiled.
type RulesOfLibrary = (Vec<TitleRule>, CompiledRules);

/// One plugin as the pipeline uses it: its settings compiled and its manifest.
pub(crate) struct Provider {
    pub id: String,
    pub settings: ActiveSettings,
    pub manifest: Manifest,
    /// Its pace: every call the pipeline makes to it takes a turn.
    pub pacer: Arc<pacer::Pacer>,
}

impl Provider {
    /// The targets auto-match asks it for: its settings', within what its manifest provides.
    pub fn targets(&self) -> Vec<Target> {
        let capabilities = &self.manifest.capabilities;
        let provided = |target: &Target| match target {
            Target::Series => capabilities.provides_series(),
            Target::Book => capabilities.provides_books(),
        };
        let wanted = self.settings.targets.clone().unwrap_or_else(|| vec![Target::Series, Target::Book]);
        wanted.into_iter().filter(provided).collect()
    }

    pub fn require(&self, target: Target) -> Result<(), PipelineError> {
        let capabilities = &self.manifest.capabilities;
        let provided = match target {
            Target::Series => capabilities.provides_series(),
            Target::Book => capabilities.provides_books(),
        };
        if provided {
            return Ok(());
        }
        Err(PipelineError::NotProvider {
            plugin: self.id.clone(),
            target: match target {
                Target::Series => "series",
                Target::Book => "book",
            },
            declared: capabilities.metadata_provider.clone(),
        })
    }

    pub fn check_scope(&self, library: &str) -> Result<(), PipelineError> {
        if self.settings.sees_library(library) {
            return Ok(());
        }
        Err(PipelineError::OutOfScope {
            plugin: self.id.clone(),
            library: library.to_owned(),
            allowed: self.settings.library_ids.clone(),
        })
    }
}

impl Pipeline {
    /// The pipeline over `host`'s plugins and `library`; library runs are recorded in the
    /// host's database.
    pub fn new(host: Arc<PluginHost>, library: Arc<dyn LibraryPort>) -> Result<Self, PipelineError> {
        let runs = Arc::new(runs::Runs::open(&host.database_path())?);
        let writer = Arc::new(
            writer::Writer::start(library.clone())
                .map_err(|error| PipelineError::Writer(format!("could not start: {error}")))?,
        );
        Ok(Self {
            host,
            library,
            runs,
            writer,
            legacy_logged: Arc::default(),
            pacers: Arc::default(),
            library_rules: Arc::default(),
            providers: Arc::default(),
        })
    }

    pub fn library(&self) -> &dyn LibraryPort {
        self.library.as_ref()
    }

    /// The plugin's settings and manifest (started once if no start recorded a manifest).
    pub(crate) async fn provider(&self, plugin: &str) -> Result<Arc<Provider>, PipelineError> {
        let registry = self.host.registry();
        let mut source = registry.provider_source(plugin)?;
        if source.manifest.is_none() {
            self.host.call(plugin, None, "ping", Value::Null).await?;
            source = registry.provider_source(plugin)?;
        }
        let mut providers = self.providers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((built_from, provider)) = providers.get(plugin)
            && *built_from == source
        {
            return Ok(provider.clone());
        }
        let settings = source
            .settings(plugin)?
            .compile()
            .map_err(|why| PipelineError::Settings { plugin: plugin.to_owned(), why })?;
        let manifest = source
            .manifest
            .as_deref()
            .and_then(|manifest| serde_json::from_str::<Manifest>(manifest).ok())
            .ok_or_else(|| PipelineError::Fault {
                plugin: plugin.to_owned(),
                method: "initialize",
                why: "no readable manifest was recorded when it started".into(),
            })?;
        let pacer = {
            let mut pacers = self.pacers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let pacer = pacers.entry(plugin.to_owned()).or_insert_with(|| Arc::new(pacer::Pacer::new(None)));
            pacer.set_rate(settings.requests_per_minute);
            pacer.clone()
        };
        let provider = Arc::new(Provider { id: plugin.to_owned(), settings, manifest, pacer });
        providers.insert(plugin.to_owned(), (source, provider.clone()));
        Ok(provider)
    }

    /// `library`'s title rules, compiled (once while they do not change).
    pub(crate) fn library_rules(&self, library: &crate::library::Library) -> Result<CompiledRules, PipelineError> {
        let mut cache = self.library_rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((rules, compiled)) = cache.get(&library.id)
            && *rules == library.title_rules
        {
            return Ok(compiled.clone());
        }
        let compiled = CompiledRules::compile(&library.title_rules)
            .map_err(|error| LibraryError::Invalid(format!("library `{}`: {error}", library.id)))?;
        cache.insert(library.id.clone(), (library.title_rules.clone(), compiled.clone()));
        Ok(compiled)
    }

    /// Logs the legacy `totalBookCount` once per plugin.
    fn note_legacy_count(&self, plugin: &str) {
        let mut logged = self.legacy_logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if logged.insert(plugin.to_owned()) {
            tracing::warn!(
                plugin,
                "answers with the legacy `totalBookCount`, which fills neither totalVolumeCount nor totalChapterCount; it should send those"
            );
        }
    }
}

//! The metadata pipeline end to end: the sample library imported into a real database
//! file, the metadata-echo example registered as a wasm component and as a native process,
//! a dry run that writes nothing, an apply, an auto-match of the whole sample that reaches
//! every outcome, a run interrupted and resumed, and a plugin that asks the job to wait.

use codex_plugin_host::host::{HostConfig, PluginHost};
use codex_plugin_host::library::{LibraryFile, SqliteLibrary};
use codex_plugin_host::metadata::apply::Outcome;
use codex_plugin_host::metadata::settings::MetadataSettings;
use codex_plugin_host::pipeline::{ApplyOptions, MatchOutcome, Pipeline, RunOptions};
use codex_plugin_host::plugin::PluginId;
use codex_plugin_host::registry::{Launch, PluginDefinition};
use codex_plugin_host::supervisor::HealthState;
use codex_plugin_host::transport::process::CommandAllowlist;
use codex_plugin_host_tests::{binary_dir, example_binary, repo_root, wasm_component_path};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Copy, Debug)]
enum Mode {
    Wasm,
    Process,
}

struct Setup {
    _dir: tempfile::TempDir,
    database: std::path::PathBuf,
    host: Arc<PluginHost>,
    pipeline: Pipeline,
}

fn launch(mode: Mode) -> Launch {
    match mode {
        Mode::Wasm => Launch::Wasm { file: wasm_component_path("metadata-echo") },
        Mode::Process => Launch::Process { command: example_binary("metadata-echo"), args: Vec::new() },
    }
}

/// A host with the sample library and metadata-echo registered as `echo`, granted every
/// write, with `admin` as its admin configuration and `settings` merged into its metadata
/// settings.
async fn setup(mode: Mode, admin: Value, settings: Value) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(dir.path());
    config.allowlist = CommandAllowlist::default().with_plugins_dir(binary_dir());
    let host = Arc::new(PluginHost::open(config).unwrap());
    let mut definition = PluginDefinition::new(launch(mode));
    definition.admin_config = admin.as_object().cloned().unwrap_or_else(Map::new);
    host.registry().add(&PluginId::new("echo").unwrap(), &definition).unwrap();
    let mut all = json!({"permissions": ["metadata:write:*"]});
    all.as_object_mut().unwrap().extend(settings.as_object().cloned().unwrap_or_default());
    let settings: MetadataSettings = serde_json::from_value(all).unwrap();
    host.registry().set_metadata_settings("echo", &settings).unwrap();
    let database = host.database_path();
    let library = SqliteLibrary::open(&database).unwrap();
    let sample = std::fs::read_to_string(repo_root().join("docs/sample-library.json")).unwrap();
    LibraryFile::parse(&sample).unwrap().import(&library).unwrap();
    let pipeline = Pipeline::new(host.clone(), Arc::new(library)).unwrap();
    Setup { _dir: dir, database, host, pipeline }
}

/// Every row of the library's tables, to compare before and after.
fn dump(database: &Path) -> Vec<String> {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut rows = Vec::new();
    for table in ["libraries", "series", "series_external_ids", "series_tracking", "books", "book_external_ids"] {
        let mut statement = connection.prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2")).unwrap();
        let columns = statement.column_count();
        let mut query = statement.query([]).unwrap();
        while let Some(row) = query.next().unwrap() {
            let values: Vec<String> =
                (0..columns).map(|column| format!("{:?}", row.get_ref(column).unwrap())).collect();
            rows.push(format!("{table}: {}", values.join(" | ")));
        }
    }
    rows
}

async fn search_dry_run_and_apply(mode: Mode) {
    let setup = setup(mode, json!({}), json!({"searchTemplate": "{{metadata.title}} {{metadata.year}}"})).await;
    let found = setup.pipeline.search_series("echo", "manga-one-piece", None).await.unwrap();
    assert_eq!(found.query.query, "One Piece 1997", "the library's rule cleaned the title before the template");
    assert_eq!(found.results[0].external_id, "one-piece-1997-0");
    let before = dump(&setup.database);
    let options = ApplyOptions { dry_run: true, only: None };
    let preview = setup.pipeline.apply_series("echo", "manga-berserk", "berserk-0", &options).await.unwrap();
    assert!(!preview.written);
    assert_eq!(dump(&setup.database), before, "{mode:?}: a dry run wrote");
    let outcome = |report: &codex_plugin_host::pipeline::ApplyReport, field: &str| {
        report.changes.iter().find(|change| change.field == field).map(|change| change.outcome)
    };
    assert_eq!(outcome(&preview, "title"), Some(Outcome::Locked));
    assert_eq!(outcome(&preview, "summary"), Some(Outcome::Locked));
    assert_eq!(outcome(&preview, "genres"), Some(Outcome::Applied));
    let applied =
        setup.pipeline.apply_series("echo", "manga-berserk", "berserk-0", &ApplyOptions::default()).await.unwrap();
    assert!(applied.written);
    assert_eq!(applied.changes, preview.changes, "the apply did what the dry run showed");
    let series = setup.pipeline.library().series("manga-berserk").unwrap();
    assert_eq!(series.metadata.genres, ["Adventure", "Science Fiction"]);
    assert_eq!(
        series.metadata.summary.as_deref(),
        Some("Written by the owner; kept as it is."),
        "a locked field changed"
    );
    assert_eq!(series.external_ids["plugin:echo"].id, "berserk-0");
    assert_eq!(series.external_ids["api:echo"].id, "berserk-0");
    // A book.
    let book = setup.pipeline.apply_book("echo", "novel-dune-1", "dune-0", &ApplyOptions::default()).await.unwrap();
    assert_eq!(outcome(&book, "summary"), Some(Outcome::Locked));
    assert_eq!(outcome(&book, "subtitle"), Some(Outcome::Applied));
    assert_eq!(setup.host.health("echo").unwrap(), HealthState::Healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_dry_run_and_apply_in_wasm_mode() {
    search_dry_run_and_apply(Mode::Wasm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_dry_run_and_apply_in_process_mode() {
    search_dry_run_and_apply(Mode::Process).await;
}

async fn auto_match_the_sample(mode: Mode) {
    let admin = json!({"unsure": ["monster"], "unknown": ["vagabond"]});
    let conditions = json!({"rules": [{"field": "metadata.status", "operator": "not_equals", "value": "hiatus"}]});
    let settings = json!({"autoMatchConditions": conditions, "targets": ["series"]});
    let setup = setup(mode, admin, settings).await;
    let progressed = AtomicUsize::new(0);
    let report = |_: &codex_plugin_host::pipeline::Progress| {
        progressed.fetch_add(1, Ordering::Relaxed);
    };
    let options = RunOptions { in_flight: 4, ..RunOptions::default() };
    let run = setup.pipeline.auto_match_library("echo", "manga", &options, &report).await.unwrap();
    let count = |label: &str| run.tally.outcomes.get(label).copied().unwrap_or(0);
    // 23 series: the kingdom and the empty folder fail the library's conditions, vagabond
    // (on hiatus) the plugin's, monster scores 0.5.
    assert_eq!(count("library_conditions_not_met"), 2, "{:?}", run.tally);
    assert_eq!(count("plugin_conditions_not_met"), 1, "{:?}", run.tally);
    assert_eq!(count("low_confidence"), 1, "{:?}", run.tally);
    assert_eq!(count("applied"), 19, "{:?}", run.tally);
    assert_eq!(progressed.load(Ordering::Relaxed), 23);
    let naruto = run.reports.iter().find(|report| report.id == "manga-naruto").unwrap();
    assert_eq!(naruto.reused.as_deref(), Some("naruto"), "the stored id was reused without a search");
    let chainsaw = run.reports.iter().find(|report| report.id == "manga-chainsaw-man").unwrap();
    assert_eq!(chainsaw.query.as_deref(), Some("Chainsaw Man"));
    // The unknown query: no_match, with the plugin's conditions out of the way.
    let no_conditions = MetadataSettings {
        permissions: vec!["metadata:write:*".into()],
        targets: Some(vec![codex_plugin_host::metadata::settings::Target::Series]),
        ..MetadataSettings::default()
    };
    setup.host.registry().set_metadata_settings("echo", &no_conditions).unwrap();
    let vagabond = setup.pipeline.auto_match_series("echo", "manga-vagabond", false).await.unwrap();
    assert!(matches!(vagabond.outcome, MatchOutcome::Skipped { .. }));
    assert_eq!(vagabond.outcome.label(), "no_match");
    // Series in the novels library, for a plugin that only matches books: no_matching_targets.
    let books_only =
        MetadataSettings { targets: Some(vec![codex_plugin_host::metadata::settings::Target::Book]), ..no_conditions };
    setup.host.registry().set_metadata_settings("echo", &books_only).unwrap();
    let dune = setup.pipeline.auto_match_series("echo", "novel-dune", false).await.unwrap();
    assert_eq!(dune.outcome.label(), "no_matching_targets");
    let dune_book = setup.pipeline.auto_match_book("echo", "novel-dune-1", false).await.unwrap();
    assert_eq!(dune_book.outcome.label(), "applied");
    assert_eq!(setup.host.health("echo").unwrap(), HealthState::Healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_match_of_the_sample_reaches_every_outcome_in_wasm_mode() {
    auto_match_the_sample(Mode::Wasm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_match_of_the_sample_reaches_every_outcome_in_process_mode() {
    auto_match_the_sample(Mode::Process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumes_and_redoes_nothing_in_wasm_mode() {
    interrupted_and_resumed(Mode::Wasm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumes_and_redoes_nothing_in_process_mode() {
    interrupted_and_resumed(Mode::Process).await;
}

async fn interrupted_and_resumed(mode: Mode) {
    // Paced (a call every 50 ms), so the job waits between items: an answer that is
    // already there when the job looks would otherwise let it run on to the end in one go.
    let setup = setup(mode, json!({}), json!({"targets": ["series"], "requestsPerMinute": 1200})).await;
    let options = RunOptions { in_flight: 1, ..RunOptions::default() };
    // Interrupted after five items: the job's future is dropped, as a killed process would.
    let seen = AtomicUsize::new(0);
    let first_ids = std::sync::Mutex::new(Vec::new());
    let notify = tokio::sync::Notify::new();
    let report = |progress: &codex_plugin_host::pipeline::Progress| {
        let id = progress.last.split(' ').nth(1).unwrap_or_default().trim_end_matches(':').to_owned();
        first_ids.lock().unwrap().push(id);
        if seen.fetch_add(1, Ordering::SeqCst) + 1 == 5 {
            notify.notify_one();
        }
    };
    tokio::select! {
        biased;
        _ = notify.notified() => {}
        ended = setup.pipeline.auto_match_library("echo", "manga", &options, &report) => {
            panic!("the run ended before it was interrupted: {:?}", ended.map(|run| run.tally))
        }
    }
    let done_first = seen.load(Ordering::SeqCst);
    assert!(done_first >= 5);
    let before = dump(&setup.database);
    let resumed = setup.pipeline.auto_match_library("echo", "manga", &options, &|_| {}).await.unwrap();
    assert_eq!(resumed.tally.already_done, done_first, "{:?}", resumed.tally);
    assert_eq!(resumed.reports.len(), 23 - done_first, "resumed items were done again");
    let redone: Vec<&str> = resumed.reports.iter().map(|report| report.id.as_str()).collect();
    let first_ids = first_ids.into_inner().unwrap();
    assert_eq!(first_ids.len(), done_first);
    for id in &first_ids {
        assert!(!redone.contains(&id.as_str()), "{id} was done before the interruption and again after");
    }
    let after = dump(&setup.database);
    assert_ne!(before, after);
    // A finished run, started again, starts over (a rematch is asked for, not a resume).
    let again = setup.pipeline.auto_match_library("echo", "manga", &options, &|_| {}).await.unwrap();
    assert_eq!(again.tally.already_done, 0);
    assert_eq!(again.reports.len(), 23);
    assert!(!redone.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_asks_to_wait_pauses_the_job_which_then_finishes_in_wasm_mode() {
    asks_to_wait(Mode::Wasm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_asks_to_wait_pauses_the_job_which_then_finishes_in_process_mode() {
    asks_to_wait(Mode::Process).await;
}

async fn asks_to_wait(mode: Mode) {
    let setup = setup(mode, json!({"rateLimitFirst": 2}), json!({"targets": ["series"]})).await;
    let started = std::time::Instant::now();
    let run = setup.pipeline.auto_match_library("echo", "manga", &RunOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(run.tally.rate_limited, 2, "{:?}", run.tally);
    assert_eq!(run.tally.outcomes.get("error"), None, "{:?}", run.reports);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "the job did not wait the second asked for");
    assert_eq!(setup.host.health("echo").unwrap(), HealthState::Healthy, "rate limits are not faults");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_are_recorded_on_time_while_no_item_ends() {
    // Dune, Earthsea and Foundation (before 1980) end at once, skipped; then Hyperion waits
    // a second for its `get` (a call a second).
    let conditions = json!({"rules": [{"field": "metadata.year", "operator": "gte", "value": 1980}]});
    let settings = json!({"targets": ["series"], "requestsPerMinute": 60, "autoMatchConditions": conditions});
    let setup = setup(Mode::Wasm, json!({}), settings).await;
    let options = RunOptions { in_flight: 1, ..RunOptions::default() };
    let seen = AtomicUsize::new(0);
    let notify = tokio::sync::Notify::new();
    let report = |_: &codex_plugin_host::pipeline::Progress| {
        seen.fetch_add(1, Ordering::SeqCst);
        notify.notify_one();
    };
    let recorded = |database: &Path| -> usize {
        let connection = rusqlite::Connection::open(database).unwrap();
        connection.query_row("SELECT COUNT(*) FROM auto_match_items", [], |row| row.get(0)).unwrap()
    };
    let checked = async {
        notify.notified().await;
        // Longer than the record's 250 ms, shorter than the next item.
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        (seen.load(Ordering::SeqCst), recorded(&setup.database))
    };
    let (ended, written) = tokio::select! {
        biased;
        checked = checked => checked,
        run = setup.pipeline.auto_match_library("echo", "novels", &options, &report) => {
            panic!("the run ended before the check: {:?}", run.map(|run| run.tally))
        }
    };
    assert_eq!(ended, 3, "the three skipped novels, then a wait");
    assert_eq!(written, ended, "items ended {ended}, recorded {written}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugins_rate_limit_spaces_every_call() {
    // 16 calls (a search and a get for each of the 8 novels) at 1,200 a minute: 0.75 s at least.
    let setup = setup(Mode::Wasm, json!({}), json!({"targets": ["series"], "requestsPerMinute": 1200})).await;
    let started = std::time::Instant::now();
    let run = setup.pipeline.auto_match_library("echo", "novels", &RunOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(run.tally.outcomes.get("applied"), Some(&8), "{:?}", run.tally);
    assert!(started.elapsed() >= std::time::Duration::from_millis(750), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_is_not_a_provider_for_the_target_is_a_clear_error() {
    let setup = setup(Mode::Wasm, json!({}), json!({})).await;
    let registry = setup.host.registry();
    let definition = PluginDefinition::new(Launch::Wasm { file: wasm_component_path("sync-echo") });
    registry.add(&PluginId::new("sync").unwrap(), &definition).unwrap();
    let error = setup.pipeline.search_series("sync", "manga-naruto", None).await.unwrap_err();
    assert!(error.to_string().contains("is not a metadata provider for series"), "{error}");
    let error = setup.pipeline.auto_match_series("sync", "manga-naruto", false).await.unwrap_err();
    assert!(error.to_string().contains("is not a metadata provider"), "{error}");
    let before = dump(&setup.database);
    let error = setup.pipeline.auto_match_library("sync", "manga", &RunOptions::default(), &|_| {}).await.unwrap_err();
    assert!(error.to_string().contains("is not a metadata provider"), "{error}");
    assert_eq!(dump(&setup.database), before);
    let fields = ApplyOptions { dry_run: false, only: Some(["titel".to_owned()].into()) };
    let error = setup.pipeline.apply_series("echo", "manga-naruto", "naruto", &fields).await.unwrap_err();
    assert!(error.to_string().contains("no field \"titel\""), "{error}");
    assert_eq!(dump(&setup.database), before, "an unknown field filter wrote the external id");
    let error = setup.pipeline.search_series("echo", "manga-nope", None).await.unwrap_err();
    assert!(error.to_string().contains("no series `manga-nope`"), "{error}");
    let error = setup.pipeline.search_series("ghost", "manga-naruto", None).await.unwrap_err();
    assert!(error.to_string().contains("ghost"), "{error}");
}

/// A host with the sample and a Node plugin registered as `id`, granted every write.
async fn setup_node(id: &str, args: Vec<String>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(PluginHost::open(HostConfig::new(dir.path())).unwrap());
    let definition = PluginDefinition::new(Launch::Process { command: "node".into(), args });
    host.registry().add(&PluginId::new(id).unwrap(), &definition).unwrap();
    let settings = MetadataSettings { permissions: vec!["metadata:write:*".into()], ..MetadataSettings::default() };
    host.registry().set_metadata_settings(id, &settings).unwrap();
    let database = host.database_path();
    let library = SqliteLibrary::open(&database).unwrap();
    let sample = std::fs::read_to_string(repo_root().join("docs/sample-library.json")).unwrap();
    LibraryFile::parse(&sample).unwrap().import(&library).unwrap();
    let pipeline = Pipeline::new(host.clone(), Arc::new(library)).unwrap();
    Setup { _dir: dir, database, host, pipeline }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrongly_typed_field_is_reported_the_rest_applied_and_health_untouched() {
    let setup = setup_node("bad-year", vec![codex_plugin_host_tests::test_plugin(), "bad-year".into()]).await;
    for _ in 0..8 {
        let report =
            setup.pipeline.apply_series("bad-year", "manga-monster", "m-1", &ApplyOptions::default()).await.unwrap();
        let year = report.changes.iter().find(|change| change.field == "year").unwrap();
        assert_eq!((year.outcome, &year.after), (Outcome::Invalid, &json!("MCMXCIV")));
        assert!(year.why.as_deref().unwrap_or("").contains("invalid type"), "{year:?}");
    }
    let series = setup.pipeline.library().series("manga-monster").unwrap();
    assert_eq!(series.metadata.summary.as_deref(), Some("A surgeon…"));
    assert_eq!(series.metadata.year, Some(1994), "the bad year replaced a good one");
    assert_eq!(setup.host.health("bad-year").unwrap(), HealthState::Healthy, "a bad field is not a fault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_library_without_network_matches_no_book_and_writes_nothing() {
    let setup = setup_node("openlibrary", vec![codex_plugin_host_tests::openlibrary()]).await;
    let before = dump(&setup.database);
    let run =
        setup.pipeline.auto_match_library("openlibrary", "novels", &RunOptions::default(), &|_| {}).await.unwrap();
    let series: Vec<_> = run
        .reports
        .iter()
        .filter(|report| report.target == codex_plugin_host::metadata::settings::Target::Series)
        .collect();
    assert_eq!(series.len(), 8);
    assert!(series.iter().all(|report| report.outcome.label() == "no_matching_targets"), "{series:?}");
    let books: Vec<_> = run
        .reports
        .iter()
        .filter(|report| report.target == codex_plugin_host::metadata::settings::Target::Book)
        .collect();
    assert_eq!(books.len(), 8);
    for book in &books {
        match &book.outcome {
            MatchOutcome::Skipped { .. } => assert_eq!(book.outcome.label(), "no_match", "{book:?}"),
            MatchOutcome::Error { why } => assert!(why.contains("openlibrary") && !why.contains("timed out"), "{why}"),
            MatchOutcome::Applied { .. } => panic!("a book matched without a network: {book:?}"),
        }
    }
    assert_eq!(dump(&setup.database), before, "something was written");
}

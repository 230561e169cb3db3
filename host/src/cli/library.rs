//! `codex-plugin-host library ...`: the library in the host's database: import, export,
//! show, locks, its title rules and auto-match conditions, and auto-matching it with a
//! plugin. Tables on stdout, `--json` for scripts.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;

use super::Failure;
use super::input::absolute;
use super::pipeline_host::{HostArgs, library_failure, read_json_argument};
use super::table;
use crate::host::DATABASE_FILE;
use crate::library::{BookLock, LibraryFile, LibraryPort, SeriesLock, SqliteLibrary};
use crate::metadata::conditions::Conditions;
use crate::metadata::rules::{CompiledRules, TitleRule};

/// The library: libraries, series and books, with their metadata and locks.
#[derive(Debug, Args)]
pub struct LibraryArgs {
    #[command(subcommand)]
    command: LibraryCommand,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(Debug, Subcommand)]
enum LibraryCommand {
    /// Import a library file (README, "The library file"): checked whole, then written in
    /// one transaction; what is already there under the same ids is replaced.
    Import {
        /// The library file (JSON).
        file: PathBuf,
    },
    /// Export libraries as a library file.
    Export {
        /// Only this library (repeatable; default: every library).
        #[arg(long = "library", value_name = "ID")]
        libraries: Vec<String>,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// The libraries; with `--library`, its series; with `--series` or `--book`, that one.
    Show {
        #[arg(long, value_name = "ID", conflicts_with_all = ["series", "book"])]
        library: Option<String>,
        #[arg(long, value_name = "ID", conflicts_with = "book")]
        series: Option<String>,
        #[arg(long, value_name = "ID")]
        book: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Lock fields of a series or a book: no plugin writes them.
    Lock(LockArgs),
    /// Unlock fields of a series or a book.
    Unlock(LockArgs),
    /// Show or change a library's title rules and auto-match conditions.
    Settings {
        /// The library.
        id: String,
        /// Title rules, as JSON (`[{"pattern": "…", "replacement": "…"}]`) or `@FILE`; `[]`
        /// clears them.
        #[arg(long, value_name = "JSON")]
        rules: Option<String>,
        /// Auto-match conditions, as JSON (`{"mode": "all", "rules": […]}`) or `@FILE`;
        /// `null` clears them.
        #[arg(long, value_name = "JSON")]
        conditions: Option<String>,
    },
    /// Auto-match every series (and book) of a library with a plugin.
    AutoMatch(super::auto_match::AutoMatchArgs),
    /// Track a series' releases (release sources list it and announce its new chapters and
    /// volumes), or change how; prints its tracking settings.
    Track(TrackArgs),
}

#[derive(Debug, Args)]
struct TrackArgs {
    /// The series.
    series: String,
    /// Stop tracking it (its settings are kept).
    #[arg(long)]
    untrack: bool,
    /// Announce new volumes (`--volumes=false`: not); as before when not given (at first: yes).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    volumes: Option<bool>,
    /// Announce new chapters (`--chapters=false`: not); as before when not given (at first: yes).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    chapters: Option<bool>,
    /// Correct its latest known chapter (`none` clears it); release sources only raise it.
    #[arg(long, value_name = "N|none", value_parser = latest_number)]
    latest_chapter: Option<Latest>,
    /// Correct its latest known volume (`none` clears it).
    #[arg(long, value_name = "N|none", value_parser = latest_number)]
    latest_volume: Option<Latest>,
    /// A language whose releases advance its latest known chapter (repeatable; none: the
    /// host's, `releases settings`).
    #[arg(long = "language", value_name = "CODE")]
    languages: Vec<String>,
    /// Another name releases may carry (repeatable).
    #[arg(long = "alias", value_name = "NAME")]
    aliases: Vec<String>,
    /// The confidence its releases need (0-1; default 0.7).
    #[arg(long, value_name = "N")]
    threshold: Option<f64>,
}

#[derive(Debug, Args)]
struct LockArgs {
    /// The series whose fields these are.
    #[arg(long, value_name = "ID", required_unless_present = "book", conflicts_with = "book")]
    series: Option<String>,
    /// The book whose fields these are.
    #[arg(long, value_name = "ID")]
    book: Option<String>,
    /// Fields, as the library file names them (`title`, `summary`, `totalVolumeCount`, …).
    #[arg(required = true, value_name = "FIELD")]
    fields: Vec<String>,
}

pub fn run(args: LibraryArgs) -> Result<(), Failure> {
    if let LibraryCommand::AutoMatch(auto_match) = args.command {
        return super::auto_match::run(auto_match, &args.host);
    }
    let library = open(&args.host)?;
    match args.command {
        LibraryCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|error| Failure::usage(format!("could not read {}: {error}", file.display())))?;
            let parsed = LibraryFile::parse(&text).map_err(|error| Failure::usage(error.to_string()))?;
            let report = parsed.import(&library).map_err(|error| Failure::usage(error.to_string()))?;
            eprintln!(
                "imported {} libraries, {} series, {} books from {}",
                report.libraries,
                report.series,
                report.books,
                file.display()
            );
            Ok(())
        }
        LibraryCommand::Export { libraries, output } => {
            let file = LibraryFile::export(&library, &libraries).map_err(library_failure)?;
            let text = serde_json::to_string_pretty(&file).expect("a library file serializes");
            match output {
                Some(path) => std::fs::write(&path, text + "\n").map_err(|error| Failure {
                    message: format!("could not write {}: {error}", path.display()),
                    exit_code: 3,
                }),
                None => {
                    super::print_line(&text);
                    Ok(())
                }
            }
        }
        LibraryCommand::Show { library: id, series, book, json } => show(&library, id, series, book, json),
        LibraryCommand::Lock(lock) => set_locks(&library, lock, true),
        LibraryCommand::Unlock(lock) => set_locks(&library, lock, false),
        LibraryCommand::Settings { id, rules, conditions } => settings(&library, &id, rules, conditions),
        LibraryCommand::Track(track) => set_tracking(&library, track),
        LibraryCommand::AutoMatch(_) => unreachable!("handled above"),
    }
}

fn open(host: &HostArgs) -> Result<SqliteLibrary, Failure> {
    let dir = absolute(&host.data_dir)?;
    std::fs::create_dir_all(&dir)
        .map_err(|error| Failure { message: format!("could not create {}: {error}", dir.display()), exit_code: 3 })?;
    SqliteLibrary::open(&dir.join(DATABASE_FILE)).map_err(library_failure)
}

fn show(
    library: &SqliteLibrary,
    id: Option<String>,
    series: Option<String>,
    book: Option<String>,
    as_json: bool,
) -> Result<(), Failure> {
    if let Some(book) = book {
        let book = library.book(&book).map_err(library_failure)?;
        return print_record(&serde_json::to_value(&book).expect("a book serializes"), as_json);
    }
    if let Some(series) = series {
        let record = library.series(&series).map_err(library_failure)?;
        let books = library.books(&series).map_err(library_failure)?;
        if as_json {
            let mut value = serde_json::to_value(&record).expect("a series serializes");
            value["books"] = serde_json::to_value(&books).expect("books serialize");
            super::print_line(&value.to_string());
            return Ok(());
        }
        print_record(&serde_json::to_value(&record).expect("a series serializes"), false)?;
        let rows = books.iter().map(|book| {
            vec![
                book.id.clone(),
                book.position.to_string(),
                book.title.clone(),
                book.volume.map(|volume| volume.to_string()).unwrap_or_default(),
                names(&book.locks),
            ]
        });
        table::print(&["book", "position", "title", "volume", "locks"], rows);
        return Ok(());
    }
    let Some(id) = id else {
        let libraries = library.libraries().map_err(library_failure)?;
        if as_json {
            super::print_line(&serde_json::to_string(&libraries).expect("libraries serialize"));
            return Ok(());
        }
        let mut rows = Vec::new();
        for each in &libraries {
            let count = all_series(library, &each.id)?.len();
            rows.push(vec![each.id.clone(), each.name.clone(), count.to_string(), each.title_rules.len().to_string()]);
        }
        table::print(&["library", "name", "series", "title rules"], rows);
        return Ok(());
    };
    let mut records = Vec::new();
    for series in all_series(library, &id)? {
        records.push(library.series(&series).map_err(library_failure)?);
    }
    if as_json {
        super::print_line(&serde_json::to_string(&records).expect("series serialize"));
        return Ok(());
    }
    let rows = records.iter().map(|series| {
        let ids: Vec<String> = series.external_ids.iter().map(|(source, id)| format!("{source}={}", id.id)).collect();
        vec![
            series.id.clone(),
            series.name.clone(),
            series.metadata.title.clone().unwrap_or_default(),
            series.book_count.to_string(),
            names(&series.locks),
            ids.join(" "),
        ]
    });
    table::print(&["series", "name", "title", "books", "locks", "external ids"], rows);
    Ok(())
}

fn all_series(library: &SqliteLibrary, id: &str) -> Result<Vec<String>, Failure> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = library.series_page(id, after.as_deref(), 500).map_err(library_failure)?;
        ids.extend(page.ids);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(ids),
        }
    }
}

/// Lock names, or how many there are when that is many.
fn names<T: serde::Serialize>(locks: &std::collections::BTreeSet<T>) -> String {
    if locks.len() > 4 {
        return format!("{} fields", locks.len());
    }
    locks
        .iter()
        .map(|lock| table::cell(&serde_json::to_value(lock).unwrap_or(Value::Null), 40))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A record as a two-column table of its fields (or as JSON).
fn print_record(value: &Value, as_json: bool) -> Result<(), Failure> {
    if as_json {
        super::print_line(&value.to_string());
        return Ok(());
    }
    let mut rows = Vec::new();
    if let Value::Object(fields) = value {
        for (name, field) in fields {
            match field {
                Value::Object(inner) if name == "metadata" => rows
                    .extend(inner.iter().map(|(key, value)| vec![format!("metadata.{key}"), table::cell(value, 80)])),
                other => rows.push(vec![name.clone(), table::cell(other, 80)]),
            }
        }
    }
    table::print(&["field", "value"], rows);
    Ok(())
}

/// A lock's name as the library file writes it.
fn parse_lock<T: serde::de::DeserializeOwned>(field: &str) -> Result<T, Failure> {
    serde_json::from_value(Value::String(field.to_owned()))
        .map_err(|error| Failure::usage(format!("`{field}`: {error}")))
}

fn set_locks(library: &SqliteLibrary, args: LockArgs, lock: bool) -> Result<(), Failure> {
    if let Some(book) = args.book {
        let mut record = library.book(&book).map_err(library_failure)?;
        for field in &args.fields {
            let field: BookLock = parse_lock(field)?;
            if lock {
                record.locks.insert(field)
            } else {
                record.locks.remove(&field)
            };
        }
        library.save_book(&record).map_err(library_failure)?;
        super::print_line(&json!({"book": book, "locks": record.locks}).to_string());
        return Ok(());
    }
    let series = args.series.expect("clap requires --series or --book");
    let mut record = library.series(&series).map_err(library_failure)?;
    for field in &args.fields {
        let field: SeriesLock = parse_lock(field)?;
        if lock {
            record.locks.insert(field)
        } else {
            record.locks.remove(&field)
        };
    }
    library.save_series(&record).map_err(library_failure)?;
    super::print_line(&json!({"series": series, "locks": record.locks}).to_string());
    Ok(())
}

fn settings(
    library: &SqliteLibrary,
    id: &str,
    rules: Option<String>,
    conditions: Option<String>,
) -> Result<(), Failure> {
    let mut record = library.library(id).map_err(library_failure)?;
    if let Some(rules) = rules {
        let rules: Vec<TitleRule> = read_json_argument("--rules", &rules)?;
        CompiledRules::compile(&rules).map_err(|error| Failure::usage(format!("--rules: {error}")))?;
        record.title_rules = rules;
    }
    if let Some(conditions) = conditions {
        let conditions: Option<Conditions> = read_json_argument("--conditions", &conditions)?;
        if let Some(conditions) = &conditions {
            conditions.check().map_err(|error| Failure::usage(format!("--conditions: {error}")))?;
        }
        record.auto_match_conditions = conditions;
    }
    library.save_library(&record).map_err(library_failure)?;
    super::print_line(&serde_json::to_string(&record).expect("a library serializes"));
    Ok(())
}

fn set_tracking(library: &SqliteLibrary, args: TrackArgs) -> Result<(), Failure> {
    if let Some(threshold) = args.threshold.filter(|value| !(0.0..=1.0).contains(value)) {
        return Err(Failure::usage(format!("--threshold {threshold} is not a confidence between 0 and 1")));
    }
    let mut series = library.series(&args.series).map_err(library_failure)?;
    let tracking = &mut series.tracking;
    tracking.tracked = !args.untrack;
    tracking.track_volumes = args.volumes.unwrap_or(tracking.track_volumes);
    tracking.track_chapters = args.chapters.unwrap_or(tracking.track_chapters);
    if !args.languages.is_empty() {
        tracking.languages = args.languages;
    }
    for alias in args.aliases {
        if !tracking.aliases.contains(&alias) {
            tracking.aliases.push(alias);
        }
    }
    tracking.confidence_threshold = args.threshold.or(tracking.confidence_threshold);
    library.save_series(&series).map_err(library_failure)?;
    if args.latest_chapter.is_some() || args.latest_volume.is_some() {
        let saved = library.series(&series.id).map_err(library_failure)?.tracking;
        let chapter = args.latest_chapter.map_or(saved.latest_chapter, |latest| latest.0);
        let volume = args.latest_volume.map_or(saved.latest_volume, |latest| latest.0);
        library.set_latest_known(&series.id, chapter, volume).map_err(library_failure)?;
    }
    let tracking = library.series(&series.id).map_err(library_failure)?.tracking;
    super::print_line(&serde_json::to_string_pretty(&tracking).expect("tracking serializes"));
    Ok(())
}

/// A latest known chapter or volume as given: a number, or none.
#[derive(Debug, Clone, Copy)]
struct Latest(Option<f64>);

fn latest_number(text: &str) -> Result<Latest, String> {
    if text == "none" {
        return Ok(Latest(None));
    }
    match text.parse::<f64>() {
        Ok(number) if number.is_finite() && number >= 0.0 => Ok(Latest(Some(number))),
        _ => Err(format!("{text:?} is not a chapter or volume number (or `none`)")),
    }
}

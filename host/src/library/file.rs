//! The library file: a documented JSON format to import a library into the host's database
//! and export it again (README, "The library file"). An import is checked whole before
//! anything is written, then written in one transaction: a bad file changes nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashSet};

use super::sqlite::{SqliteLibrary, write_book, write_library, write_series};
use super::{Book, ExternalIds, Library, LibraryError, LibraryPort, Series, SeriesLock, SeriesMetadata, Tracking};
use crate::metadata::conditions::Conditions;
use crate::metadata::rules::{CompiledRules, TitleRule};

/// What the `format` field of a library file says.
pub const FORMAT: &str = "codex-plugin-host/library";
/// The version of the format this host writes and reads.
pub const VERSION: u32 = 1;

/// A library file: one or more libraries, their series and their books.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LibraryFile {
    pub format: String,
    pub version: u32,
    pub libraries: Vec<FileLibrary>,
}

/// A library as a file holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileLibrary {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub title_rules: Vec<TitleRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_match_conditions: Option<Conditions>,
    #[serde(default)]
    pub series: Vec<FileSeries>,
}

/// A series as a file holds it, with its books.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileSeries {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub metadata: SeriesMetadata,
    #[serde(default)]
    pub locks: BTreeSet<SeriesLock>,
    #[serde(default)]
    pub external_ids: ExternalIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub tracking: Tracking,
    #[serde(default)]
    pub books: Vec<Book>,
}

/// A library file that cannot be imported: where, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum LibraryFileError {
    #[error("the library file is not valid: at {path} (line {line}, column {column}): {why}")]
    Malformed { path: String, line: usize, column: usize, why: String },
    #[error("the library file is not valid: at {path}: {why}")]
    Invalid { path: String, why: String },
    #[error(transparent)]
    Library(#[from] LibraryError),
}

/// What an import wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub libraries: usize,
    pub series: usize,
    pub books: usize,
}

impl LibraryFile {
    /// Reads a library file, naming the path (and line) of the first problem.
    pub fn parse(text: &str) -> Result<Self, LibraryFileError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let file: LibraryFile = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            LibraryFileError::Malformed {
                path,
                line: inner.line(),
                column: inner.column(),
                why: strip_position(&inner),
            }
        })?;
        file.check()?;
        Ok(file)
    }

    /// Every rule of the format that its types do not say.
    fn check(&self) -> Result<(), LibraryFileError> {
        let invalid = |path: String, why: String| Err(LibraryFileError::Invalid { path, why });
        if self.format != FORMAT {
            return invalid("format".into(), format!("is {:?}; a library file says {FORMAT:?}", self.format));
        }
        if self.version != VERSION {
            return invalid("version".into(), format!("is {}; this host reads version {VERSION}", self.version));
        }
        let (mut libraries, mut series_ids, mut book_ids) = (HashSet::new(), HashSet::new(), HashSet::new());
        for (l, library) in self.libraries.iter().enumerate() {
            let at = format!("libraries[{l}]");
            check_id(&format!("{at}.id"), &library.id, &mut libraries)?;
            if library.name.trim().is_empty() {
                return invalid(format!("{at}.name"), "is empty".into());
            }
            if let Err(error) = CompiledRules::compile(&library.title_rules) {
                return invalid(format!("{at}.titleRules"), error.to_string());
            }
            if let Some(conditions) = &library.auto_match_conditions
                && let Err(error) = conditions.check()
            {
                return invalid(format!("{at}.autoMatchConditions"), error.to_string());
            }
            for (s, series) in library.series.iter().enumerate() {
                let at = format!("{at}.series[{s}]");
                check_id(&format!("{at}.id"), &series.id, &mut series_ids)?;
                if series.name.trim().is_empty() {
                    return invalid(format!("{at}.name"), "is empty".into());
                }
                for (b, book) in series.books.iter().enumerate() {
                    check_id(&format!("{at}.books[{b}].id"), &book.id, &mut book_ids)?;
                    if !book.position.is_finite() {
                        return invalid(format!("{at}.books[{b}].position"), "is not a number".into());
                    }
                }
            }
        }
        Ok(())
    }

    /// Imports the file: libraries, series and books are created, or replaced when their id
    /// is already there (a series' reading progress and ratings stay). One transaction.
    pub fn import(&self, library: &SqliteLibrary) -> Result<ImportReport, LibraryFileError> {
        self.check()?;
        let mut report = ImportReport::default();
        library.write(|transaction| {
            for file_library in &self.libraries {
                write_library(
                    transaction,
                    &Library {
                        id: file_library.id.clone(),
                        name: file_library.name.clone(),
                        title_rules: file_library.title_rules.clone(),
                        auto_match_conditions: file_library.auto_match_conditions.clone(),
                    },
                )?;
                report.libraries += 1;
                for file_series in &file_library.series {
                    let mut series = file_series.to_series(&file_library.id);
                    series.revision = stored_revision(transaction, "series", &series.id)?;
                    write_series(transaction, &series)?;
                    report.series += 1;
                    for book in &file_series.books {
                        let mut book = book.clone();
                        book.series_id = series.id.clone();
                        book.revision = stored_revision(transaction, "books", &book.id)?;
                        write_book(transaction, &book)?;
                        report.books += 1;
                    }
                }
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// The libraries `ids` (every library when empty) as a file.
    pub fn export(library: &dyn LibraryPort, ids: &[String]) -> Result<Self, LibraryError> {
        let libraries = if ids.is_empty() {
            library.libraries()?
        } else {
            ids.iter().map(|id| library.library(id)).collect::<Result<_, _>>()?
        };
        let mut file = LibraryFile { format: FORMAT.into(), version: VERSION, libraries: Vec::new() };
        for stored in libraries {
            let mut series_list = Vec::new();
            let mut after = None;
            loop {
                let page = library.series_page(&stored.id, after.as_deref(), 500)?;
                for id in &page.ids {
                    let series = library.series(id)?;
                    let books = library.books(id)?;
                    series_list.push(FileSeries::from_series(series, books));
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            file.libraries.push(FileLibrary {
                id: stored.id,
                name: stored.name,
                title_rules: stored.title_rules,
                auto_match_conditions: stored.auto_match_conditions,
                series: series_list,
            });
        }
        Ok(file)
    }
}

impl FileSeries {
    fn to_series(&self, library_id: &str) -> Series {
        Series {
            id: self.id.clone(),
            library_id: library_id.to_owned(),
            name: self.name.clone(),
            metadata: self.metadata.clone(),
            locks: self.locks.clone(),
            external_ids: self.external_ids.clone(),
            custom_metadata: self.custom_metadata.clone(),
            tracking: self.tracking.clone(),
            book_count: self.books.len() as i64,
            revision: 0,
        }
    }

    fn from_series(series: Series, mut books: Vec<Book>) -> Self {
        for book in &mut books {
            // Implied by where the book is listed.
            book.series_id.clear();
            book.revision = 0;
        }
        Self {
            id: series.id,
            name: series.name,
            metadata: series.metadata,
            locks: series.locks,
            external_ids: series.external_ids,
            custom_metadata: series.custom_metadata,
            tracking: series.tracking,
            books,
        }
    }
}

fn check_id(path: &str, id: &str, seen: &mut HashSet<String>) -> Result<(), LibraryFileError> {
    let invalid = |why: String| Err(LibraryFileError::Invalid { path: path.to_owned(), why });
    if id.is_empty() || id.chars().count() > 200 || id.chars().any(char::is_control) {
        return invalid(format!("{id:?} is not an id: 1 to 200 characters without control characters"));
    }
    if !seen.insert(id.to_owned()) {
        return invalid(format!("{id:?} appears twice in the file"));
    }
    Ok(())
}

fn stored_revision(transaction: &rusqlite::Transaction<'_>, table: &str, id: &str) -> Result<i64, LibraryError> {
    use rusqlite::OptionalExtension as _;
    let found = transaction
        .query_row(&format!("SELECT revision FROM {table} WHERE id = ?"), [id], |row| row.get(0))
        .optional()?;
    Ok(found.unwrap_or(0))
}

/// serde_json's message without its " at line L column C" (the error says where already).
fn strip_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

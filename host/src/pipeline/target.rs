//! Search and apply for one series or one book.

use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;

use super::{Pipeline, PipelineError, Provider};
use crate::library::{Book, Library, Save, Series};
use crate::metadata::apply::decode::{Decoded, decode};
use crate::metadata::apply::{Applier, FieldChange, Outcome, plan_book, plan_series};
use crate::metadata::query::{SearchQuery, book_query, series_query};
use crate::metadata::rules::CompiledRules;
use crate::metadata::settings::Target;
use crate::protocol::types::metadata::{BookMetadata, SearchResponse, SearchResult, SeriesMetadata};

/// The search limit auto-match uses (orchestration.md §9).
pub const SEARCH_LIMIT: i64 = 10;

/// Series or book, as reports name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Series,
    Book,
}

/// A search: the query that was built and what came back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchOutcome {
    pub query: SearchQuery,
    pub results: Vec<SearchResult>,
}

/// What an apply may touch.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Report what would change, write nothing.
    pub dry_run: bool,
    /// Only these fields (report names), when given.
    pub only: Option<BTreeSet<String>>,
}

/// The field-by-field report of one apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub target: TargetKind,
    pub id: String,
    pub plugin: String,
    pub external_id: String,
    pub dry_run: bool,
    /// Whether anything was written (never in a dry run).
    pub written: bool,
    pub changes: Vec<FieldChange>,
}

impl ApplyReport {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.changes.iter().filter(|change| change.outcome == outcome).count()
    }
}

impl Pipeline {
    /// The rules a plugin's query in `library` runs: the library's, then the plugin's.
    fn rules(&self, provider: &Provider, library: &Library) -> Result<CompiledRules, PipelineError> {
        Ok(self.library_rules(library)?.then(provider.settings.rules.clone()))
    }

    /// Searches `plugin` for `series`: the query built from its rules and template, and
    /// the results.
    pub async fn search_series(
        &self,
        plugin: &str,
        series: &str,
        limit: Option<i64>,
    ) -> Result<SearchOutcome, PipelineError> {
        let provider = self.provider(plugin).await?;
        provider.require(Target::Series)?;
        let series = self.library.series(series)?;
        provider.check_scope(&series.library_id)?;
        let library = self.library.library(&series.library_id)?;
        self.search_series_with(&provider, &library, &series, limit.unwrap_or(SEARCH_LIMIT)).await
    }

    pub(crate) async fn search_series_with(
        &self,
        provider: &Provider,
        library: &Library,
        series: &Series,
        limit: i64,
    ) -> Result<SearchOutcome, PipelineError> {
        let rules = self.rules(provider, library)?;
        let query = series_query(series, &rules, provider.settings.template.as_ref());
        let params = json!({"query": query.query, "limit": limit});
        provider.pacer.turn().await;
        let answer = self.host.call(&provider.id, None, "metadata/series/search", params).await?;
        Ok(SearchOutcome { query, results: read_search(&provider.id, "metadata/series/search", answer)? })
    }

    /// Searches `plugin` for `book`: by its ISBN when it has one, else by the query.
    pub async fn search_book(
        &self,
        plugin: &str,
        book: &str,
        limit: Option<i64>,
    ) -> Result<SearchOutcome, PipelineError> {
        let provider = self.provider(plugin).await?;
        provider.require(Target::Book)?;
        let book = self.library.book(book)?;
        let series = self.library.series(&book.series_id)?;
        provider.check_scope(&series.library_id)?;
        let library = self.library.library(&series.library_id)?;
        self.search_book_with(&provider, &library, &book, &series, limit.unwrap_or(SEARCH_LIMIT)).await
    }

    pub(crate) async fn search_book_with(
        &self,
        provider: &Provider,
        library: &Library,
        book: &Book,
        series: &Series,
        limit: i64,
    ) -> Result<SearchOutcome, PipelineError> {
        let rules = self.rules(provider, library)?;
        let query = book_query(book, series, &rules, provider.settings.template.as_ref());
        let isbn = book.isbn.clone().or_else(|| book.metadata.isbns.first().cloned());
        let mut params = json!({"query": query.query, "limit": limit});
        if let Some(isbn) = isbn {
            params["isbn"] = Value::String(isbn);
        }
        if let Some(author) = book.metadata.authors.first().or(series.metadata.authors.first()) {
            params["author"] = Value::String(author.name.clone());
        }
        provider.pacer.turn().await;
        let answer = self.host.call(&provider.id, None, "metadata/book/search", params).await?;
        Ok(SearchOutcome { query, results: read_search(&provider.id, "metadata/book/search", answer)? })
    }

    /// Fetches `external_id` from `plugin` and applies it to `series` (or, in a dry run,
    /// reports what it would change).
    pub async fn apply_series(
        &self,
        plugin: &str,
        series: &str,
        external_id: &str,
        options: &ApplyOptions,
    ) -> Result<ApplyReport, PipelineError> {
        check_fields(options)?;
        let provider = self.provider(plugin).await?;
        provider.require(Target::Series)?;
        let series = self.library.series(series)?;
        provider.check_scope(&series.library_id)?;
        self.apply_series_with(&provider, &series, external_id, options).await
    }

    pub(crate) async fn apply_series_with(
        &self,
        provider: &Provider,
        series: &Series,
        external_id: &str,
        options: &ApplyOptions,
    ) -> Result<ApplyReport, PipelineError> {
        let decoded: Decoded<SeriesMetadata> = self.get(provider, "metadata/series/get", external_id).await?;
        let applier = Applier { plugin: &provider.id, grants: &provider.settings.grants, only: options.only.as_ref() };
        let (next, changes) = plan_series(series, &decoded, applier);
        let written = !options.dry_run && next != *series;
        if written {
            self.writer.save(Save::Series(next)).await?;
        }
        Ok(report(
            TargetKind::Series,
            &series.id,
            provider,
            &decoded.metadata.work.external_id,
            options,
            written,
            changes,
        ))
    }

    /// As [`Pipeline::apply_series`], for a book.
    pub async fn apply_book(
        &self,
        plugin: &str,
        book: &str,
        external_id: &str,
        options: &ApplyOptions,
    ) -> Result<ApplyReport, PipelineError> {
        check_fields(options)?;
        let provider = self.provider(plugin).await?;
        provider.require(Target::Book)?;
        let book = self.library.book(book)?;
        let series = self.library.series(&book.series_id)?;
        provider.check_scope(&series.library_id)?;
        self.apply_book_with(&provider, &book, external_id, options).await
    }

    pub(crate) async fn apply_book_with(
        &self,
        provider: &Provider,
        book: &Book,
        external_id: &str,
        options: &ApplyOptions,
    ) -> Result<ApplyReport, PipelineError> {
        let decoded: Decoded<BookMetadata> = self.get(provider, "metadata/book/get", external_id).await?;
        let applier = Applier { plugin: &provider.id, grants: &provider.settings.grants, only: options.only.as_ref() };
        let (next, changes) = plan_book(book, &decoded, applier);
        let written = !options.dry_run && next != *book;
        if written {
            self.writer.save(Save::Book(next)).await?;
        }
        Ok(report(TargetKind::Book, &book.id, provider, &decoded.metadata.work.external_id, options, written, changes))
    }

    /// A `get`, read tolerantly: a wrongly typed field is reported, not a fault.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        provider: &Provider,
        method: &'static str,
        external_id: &str,
    ) -> Result<Decoded<T>, PipelineError> {
        provider.pacer.turn().await;
        let answer = self.host.call(&provider.id, None, method, json!({"externalId": external_id})).await?;
        let decoded =
            decode::<T>(&answer).map_err(|why| PipelineError::Fault { plugin: provider.id.clone(), method, why })?;
        if decoded.legacy_total_book_count {
            self.note_legacy_count(&provider.id);
        }
        for problem in &decoded.problems {
            tracing::warn!(
                plugin = provider.id,
                field = problem.field,
                "left out of `{method}`'s answer: {}",
                problem.why
            );
        }
        Ok(decoded)
    }
}

fn check_fields(options: &ApplyOptions) -> Result<(), PipelineError> {
    let Some(only) = &options.only else { return Ok(()) };
    crate::metadata::apply::check_fields(only)
        .map_err(|unknown| PipelineError::UnknownField(unknown, crate::metadata::apply::REPORT_FIELDS.join(", ")))
}

fn read_search(plugin: &str, method: &'static str, answer: Value) -> Result<Vec<SearchResult>, PipelineError> {
    serde_json::from_value::<SearchResponse>(answer)
        .map(|response| response.results)
        .map_err(|error| PipelineError::Fault { plugin: plugin.to_owned(), method, why: error.to_string() })
}

fn report(
    target: TargetKind,
    id: &str,
    provider: &Provider,
    external_id: &str,
    options: &ApplyOptions,
    written: bool,
    changes: Vec<FieldChange>,
) -> ApplyReport {
    ApplyReport {
        target,
        id: id.to_owned(),
        plugin: provider.id.clone(),
        external_id: external_id.to_owned(),
        dry_run: options.dry_run,
        written,
        changes,
    }
}

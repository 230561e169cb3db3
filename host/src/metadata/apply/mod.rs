//! Apply (orchestration.md §5): what a plugin's `get` answer changes in a series or a book,
//! decided field by field, as a report; the caller writes the changed copy in one
//! transaction, or, in a dry run, only shows the report.
//!
//! Per field present and non-empty in the answer: the optional field filter, then the
//! lock, then the permission, then whether it changes anything. The match's own id is
//! stored under `plugin:<registered id>`; an answer may not write another plugin's
//! `plugin:` source.

mod book;
pub mod decode;
mod series;

pub use book::plan_book;
pub use series::plan_series;

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

use super::permissions::Grants;
use crate::library::{ExternalIds, Link, Rating, StoredExternalId};
use crate::protocol::types::metadata::{ExternalId, ExternalLink, ExternalRating};

/// Every field an apply reports, by the name its report line has (external ids are
/// `externalIds[<source>]`).
pub const REPORT_FIELDS: [&str; 31] = [
    "title",
    "titleSort",
    "alternateTitles",
    "summary",
    "year",
    "status",
    "publisher",
    "ageRating",
    "language",
    "readingDirection",
    "totalVolumeCount",
    "totalChapterCount",
    "genres",
    "tags",
    "authors",
    "externalLinks",
    "externalRatings",
    "coverUrl",
    "subtitle",
    "bookType",
    "volume",
    "chapter",
    "seriesPosition",
    "seriesTotal",
    "translator",
    "edition",
    "originalTitle",
    "originalYear",
    "isbns",
    "subjects",
    "awards",
];

/// Refuses a field filter naming a field no report has (it would filter out everything).
pub fn check_fields<'a>(fields: impl IntoIterator<Item = &'a String>) -> Result<(), String> {
    match fields
        .into_iter()
        .find(|field| !REPORT_FIELDS.contains(&field.as_str()) && !field.starts_with("externalIds["))
    {
        Some(unknown) => Err(unknown.clone()),
        None => Ok(()),
    }
}

/// What happened to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    Unchanged,
    Locked,
    NotPermitted,
    Filtered,
    /// The answer's value was of the wrong type, and left out.
    Invalid,
}

/// One field's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Who applies, and what they may touch.
#[derive(Debug, Clone, Copy)]
pub struct Applier<'a> {
    /// The plugin's registered id: its matches are stored under `plugin:<id>`.
    pub plugin: &'a str,
    pub grants: &'a Grants,
    /// Only these fields (report names), when given.
    pub only: Option<&'a BTreeSet<String>>,
}

impl Applier<'_> {
    pub fn source(&self) -> String {
        format!("plugin:{}", self.plugin)
    }
}

/// Collects the report while the planner changes a copy.
pub(crate) struct Report<'a> {
    applier: Applier<'a>,
    pub changes: Vec<FieldChange>,
}

impl<'a> Report<'a> {
    pub fn new(applier: Applier<'a>, problems: &[decode::FieldProblem]) -> Self {
        let changes = problems
            .iter()
            .map(|problem| FieldChange {
                field: problem.field.clone(),
                before: Value::Null,
                after: problem.value.clone(),
                outcome: Outcome::Invalid,
                why: Some(problem.why.clone()),
            })
            .collect();
        Self { applier, changes }
    }

    /// Decides one field: `before` and `after` as they would be stored, `locked` from the
    /// target's locks, `permission` the write permission's field name. Returns whether to
    /// write it.
    pub fn decide<T: Serialize + PartialEq>(
        &mut self,
        field: &str,
        permission: &str,
        locked: bool,
        before: &T,
        after: &T,
    ) -> bool {
        let outcome = if self.applier.only.is_some_and(|only| !only.contains(field)) {
            Outcome::Filtered
        } else if locked {
            Outcome::Locked
        } else if !self.applier.grants.may_write(permission) {
            Outcome::NotPermitted
        } else if before == after {
            Outcome::Unchanged
        } else {
            Outcome::Applied
        };
        let why = match outcome {
            Outcome::NotPermitted => Some(format!("needs metadata:write:{permission}")),
            _ => None,
        };
        self.push(field, before, after, outcome, why);
        outcome == Outcome::Applied
    }

    pub fn push<T: Serialize>(&mut self, field: &str, before: &T, after: &T, outcome: Outcome, why: Option<String>) {
        let value = |value: &T| serde_json::to_value(value).unwrap_or(Value::Null);
        self.changes.push(FieldChange {
            field: field.into(),
            before: value(before),
            after: value(after),
            outcome,
            why,
        });
    }

    /// External ids of the answer upserted by source (another plugin's `plugin:` source
    /// refused), then the match's own id under `plugin:<id>`, always.
    pub fn external_ids(&mut self, stored: &mut ExternalIds, answered: &[ExternalId], own_id: &str, own_url: &str) {
        let own_source = self.applier.source();
        let mut merged = stored.clone();
        for entry in answered {
            let foreign = entry.source.starts_with("plugin:") && entry.source != own_source;
            let field = format!("externalIds[{}]", entry.source);
            let before = stored.get(&entry.source).map(|id| id.id.clone());
            let after = Some(entry.external_id.clone());
            if foreign {
                let why = Some(format!("`{}` belongs to another plugin", entry.source));
                self.push(&field, &before, &after, Outcome::NotPermitted, why);
            } else if entry.source == own_source || entry.external_id.trim().is_empty() {
                // The match's own id is written below.
            } else if self.decide(&field, "external_ids", false, &before, &after) {
                merged.insert(
                    entry.source.clone(),
                    StoredExternalId { id: entry.external_id.clone(), url: None, hash: None },
                );
            }
        }
        let own = StoredExternalId {
            id: own_id.to_owned(),
            url: Some(own_url.to_owned()).filter(|url| !url.is_empty()),
            hash: stored.get(&own_source).and_then(|id| id.hash.clone()),
        };
        let before = stored.get(&own_source).cloned();
        let outcome = if before.as_ref() == Some(&own) { Outcome::Unchanged } else { Outcome::Applied };
        self.push(&format!("externalIds[{own_source}]"), &before, &Some(own.clone()), outcome, None);
        merged.insert(own_source, own);
        *stored = merged;
    }

    /// Links upserted by label.
    pub fn links(&mut self, stored: &mut Vec<Link>, answered: &[ExternalLink]) {
        if answered.is_empty() {
            return;
        }
        let mut merged = stored.clone();
        for link in answered {
            let link = Link {
                label: link.label.clone(),
                url: link.url.clone(),
                link_type: link
                    .link_type
                    .as_ref()
                    .and_then(|kind| serde_json::to_value(kind).ok()?.as_str().map(str::to_owned)),
            };
            match merged.iter_mut().find(|known| known.label == link.label) {
                Some(known) => *known = link,
                None => merged.push(link),
            }
        }
        if self.decide("externalLinks", "links", false, stored, &merged) {
            *stored = merged;
        }
    }

    /// Ratings upserted by source (`rating` is one more).
    pub fn ratings(&mut self, stored: &mut Vec<Rating>, rating: Option<&ExternalRating>, answered: &[ExternalRating]) {
        let mut merged = stored.clone();
        let all: Vec<&ExternalRating> = rating.into_iter().chain(answered).collect();
        if all.is_empty() {
            return;
        }
        for rating in all {
            let rating = Rating { source: rating.source.clone(), rating: rating.score, votes: rating.vote_count };
            match merged.iter_mut().find(|known| known.source == rating.source) {
                Some(known) => *known = rating,
                None => merged.push(rating),
            }
        }
        if self.decide("externalRatings", "ratings", false, stored, &merged) {
            *stored = merged;
        }
    }
}

/// `Some(text)` when there is text.
pub(crate) fn text(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|text| text.trim()).filter(|text| !text.is_empty()).map(str::to_owned)
}

/// A vocabulary value (status, reading direction, role) as it was written.
pub(crate) fn word<T: Serialize>(value: &Option<T>) -> Option<String> {
    value.as_ref().and_then(|value| serde_json::to_value(value).ok()?.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests;

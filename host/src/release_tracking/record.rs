//! One candidate into the ledger, the same way whether the plugin sent it with
//! `releases/record` or in its poll's answer (Codex checks the two differently): read,
//! checked against its series' tracking, deduped, announced or ignored, and the series'
//! latest known chapter and volume advanced.

use codex_plugin_protocol::types::releases::{RecordResult, ReleaseCandidate};
use serde_json::Value;

use super::store::ReleaseSource;
use super::{Inner, ReleaseError, ReleaseEvent, now_micros, rfc3339_utc};
use crate::library::{LibraryError, Series};
use crate::releases::{Arrival, OwnedBook, advance, arrival, check, confidence_threshold};

/// Why a candidate was not recorded: the plugin's fault (-32602), or the host's.
pub(super) enum Refused {
    Candidate(String),
    Host(ReleaseError),
}

impl From<ReleaseError> for Refused {
    fn from(error: ReleaseError) -> Self {
        Self::Host(error)
    }
}

/// What recording one candidate did.
pub(super) struct Recorded {
    pub result: RecordResult,
    pub announced: bool,
}

impl Inner {
    pub(super) async fn record(&self, source: &ReleaseSource, candidate: &Value) -> Result<Recorded, Refused> {
        let candidate =
            ReleaseCandidate::read(candidate).map_err(|why| Refused::Candidate(format!("candidate: {why}")))?;
        let series_id = candidate.series_match.codex_series_id.clone();
        let found = self
            .library(move |library| match library.series(&series_id) {
                Ok(series) => {
                    let books = library.books(&series.id)?;
                    let owned: Vec<OwnedBook> =
                        books.iter().map(|book| OwnedBook { volume: book.volume, chapter: book.chapter }).collect();
                    Ok(Some((series, owned)))
                }
                Err(LibraryError::NoSeries(_)) => Ok(None),
                Err(error) => Err(error),
            })
            .await?;
        let Some((series, owned)) = found else {
            return Err(Refused::Candidate(format!(
                "series `{}` does not exist",
                candidate.series_match.codex_series_id
            )));
        };
        if !series.tracking.tracked {
            return Err(Refused::Candidate(format!(
                "series `{}` is not tracked; releases are recorded only for series releases/list_tracked lists",
                series.id
            )));
        }
        let threshold = confidence_threshold(series.tracking.confidence_threshold);
        let checked = check(&candidate, threshold, chrono::Utc::now()).map_err(Refused::Candidate)?;
        // A duplicate is answered before anything is worked out for it.
        let (owner, release) = (source.clone(), candidate.clone());
        if let Some(ledger_id) = self.stored(move |store| store.existing_release(&owner, &release)).await? {
            return Ok(Recorded { result: RecordResult { ledger_id, deduped: true }, announced: false });
        }
        let (release, tracking) = (checked.clone(), series.tracking.clone());
        let arrived = tokio::task::spawn_blocking(move || arrival(&release, &tracking, &owned)).await;
        let state = match arrived.map_err(|error| ReleaseError::Store(format!("a ledger task stopped: {error}")))? {
            Arrival::Announced => "announced",
            Arrival::Ignored(_) => "ignored",
        };
        let (owner, release, kept) = (source.clone(), candidate.clone(), checked.clone());
        let (languages, (ledger_id, inserted)) = self
            .stored(move |store| {
                let languages = store.default_languages()?;
                Ok((languages, store.insert_release(&owner, &release, &kept, state, now_micros())?))
            })
            .await?;
        if !inserted {
            return Ok(Recorded { result: RecordResult { ledger_id, deduped: true }, announced: false });
        }
        if let Some((chapter, volume)) = advance(&series.tracking, &languages, &candidate.language, &checked) {
            let id = series.id.clone();
            if let Err(error) = self.library(move |library| library.raise_latest_known(&id, chapter, volume)).await {
                tracing::warn!(series = series.id, "could not advance the latest known chapter: {error}");
            }
        }
        let announced = state == "announced";
        if announced {
            let _ = self.events.send(ReleaseEvent::ReleaseAnnounced {
                ledger_id: ledger_id.clone(),
                series_id: series.id.clone(),
                series_title: title(&series),
                source_id: source.id.clone(),
                plugin_id: source.plugin.clone(),
                chapter: checked.chapter,
                volume: checked.volume,
                language: candidate.language.clone(),
                timestamp: rfc3339_utc(now_micros()),
            });
        }
        Ok(Recorded { result: RecordResult { ledger_id, deduped: false }, announced })
    }
}

fn title(series: &Series) -> String {
    series.metadata.title.clone().unwrap_or_else(|| series.name.clone())
}

//! Release decisions (issue 14, upstream-host.md §10), pure functions over plain values:
//! whether a candidate may be recorded and what the ledger keeps of it, what a new release
//! becomes (announced or ignored), how a tracked series' latest known chapter and volume
//! advance, which sources a plugin may register, what a source is told of a tracked series,
//! how an upstream host backs off, and the line a poll leaves. The service that runs
//! sources and polls is [`crate::release_tracking`].

pub mod backoff;
mod candidate;
mod coverage;
mod latest;
mod registration;
mod summary;
mod tracked;

pub use candidate::{
    CheckedCandidate, DEFAULT_CONFIDENCE_THRESHOLD, MAX_FUTURE_SKEW_SECONDS, check, confidence_threshold, normalize,
};
pub use coverage::{Arrival, OwnedBook, arrival};
pub use latest::{DEFAULT_LANGUAGES, advance, effective_languages};
pub use registration::{
    MAX_DISPLAY_NAME_CHARS, MAX_ETAG_CHARS, MAX_SOURCE_CONFIG_BYTES, MAX_SOURCE_KEY_CHARS, MAX_SOURCES_PER_PLUGIN,
    check_etag, check_sources,
};
pub use summary::{PollCounts, summary_line};
pub use tracked::{aliases, external_ids, tracked_series};

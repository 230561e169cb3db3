//! Recommendation decisions (orchestration.md §8), pure functions over plain values: the
//! user's settings, their library as a recommendation plugin sees it, which entries seed a
//! request and which ids it excludes, and how several plugins' answers merge into one list.
//! The service that asks plugins and keeps their answers is [`crate::integrations`].

mod entries;
mod merge;
mod settings;

pub use entries::{exclude_ids, library_entry, seeds};
pub use merge::{Merged, merge};
pub use settings::{DEFAULT_MAX_AGE_HOURS, RecommendationSettings, max_age_hours};

#[cfg(test)]
mod tests;

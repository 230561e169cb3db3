//! Sync decisions (orchestration.md §7), pure functions over plain values: which settings
//! apply, what a user's reading of a series amounts to, which entries are pushed and with
//! what, how pulled entries change local progress, and when a pull must stop. The service
//! that runs a sync is [`crate::integrations`].

mod engagement;
mod pull;
mod push;
pub mod schedule;
mod settings;

pub use engagement::Engagement;
pub use pull::{MAX_PAGES, PullPager, PullStep, PulledChanges, reconcile};
pub use push::{custom_metadata, metadata_block, push_entry, rfc3339, title};
pub use settings::{EntryContents, MetadataPolicy, SyncMode, SyncSettings, USER_SYNC_KEYS};

#[cfg(test)]
mod tests;

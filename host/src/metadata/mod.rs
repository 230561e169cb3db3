//! The metadata pipeline's decisions (orchestration.md §0, layer 1): pure functions with no
//! I/O that clean a title, render a search query, decide whether a series may be
//! auto-matched, and pick the best search result.

pub mod apply;
pub mod best_match;
pub mod conditions;
pub mod context;
pub mod permissions;
pub mod query;
pub mod rules;
pub mod settings;
pub mod template;

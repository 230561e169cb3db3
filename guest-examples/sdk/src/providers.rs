//! What a plugin can provide. Implement one or more of these traits and give them to
//! [`crate::Plugin`]; the manifest's capabilities follow from the ones given.
//!
//! Methods are `async`: a method may await storage while the plugin keeps answering other
//! requests. Methods with a default body are optional: the default answers -32601, which
//! the host reads as "not supported", never as a fault.

// The SDK runs every plugin on one thread: its futures need not be `Send`, so the auto-trait
// bounds `async fn` in a public trait cannot name are not wanted here.
#![allow(async_fn_in_trait)]

use codex_plugin_protocol::manifest::ReleaseSourceCapability;
use codex_plugin_protocol::types::metadata::{
    BookMatchParams, BookMetadata, BookSearchParams, GetParams, MatchResponse, SearchResponse, SeriesMatchParams,
    SeriesMetadata, SeriesSearchParams,
};
use codex_plugin_protocol::types::recommendations::{self, AnyObject, DismissParams, DismissResponse};
use codex_plugin_protocol::types::releases::{PollParams, PollResponse, SourceRegistration};
use codex_plugin_protocol::types::sync::{
    PullParams, PullResponse, PushParams, PushResponse, StatusResponse, UserInfo,
};

use crate::context::Context;
use crate::error::PluginError;

pub type Result<T> = std::result::Result<T, PluginError>;

/// `metadata/series/*`.
pub trait SeriesProvider {
    async fn search(&self, ctx: &Context, params: SeriesSearchParams) -> Result<SearchResponse>;
    async fn get(&self, ctx: &Context, params: GetParams) -> Result<SeriesMetadata>;
    /// `metadata/series/match`: the best result for a title, with a confidence.
    async fn best_match(&self, _ctx: &Context, _params: SeriesMatchParams) -> Result<MatchResponse> {
        Err(PluginError::MethodNotFound("this plugin has no series match".into()))
    }
}

/// `metadata/book/*`.
pub trait BookProvider {
    async fn search(&self, ctx: &Context, params: BookSearchParams) -> Result<SearchResponse>;
    async fn get(&self, ctx: &Context, params: GetParams) -> Result<BookMetadata>;
    /// `metadata/book/match`.
    async fn best_match(&self, _ctx: &Context, _params: BookMatchParams) -> Result<MatchResponse> {
        Err(PluginError::MethodNotFound("this plugin has no book match".into()))
    }
}

/// `sync/*`: reading progress with an external tracker.
pub trait SyncProvider {
    async fn user_info(&self, ctx: &Context) -> Result<UserInfo>;
    async fn push_progress(&self, ctx: &Context, params: PushParams) -> Result<PushResponse>;
    async fn pull_progress(&self, ctx: &Context, params: PullParams) -> Result<PullResponse>;
    async fn status(&self, _ctx: &Context) -> Result<StatusResponse> {
        Err(PluginError::MethodNotFound("this plugin has no sync status".into()))
    }
}

/// `recommendations/*`.
pub trait RecommendationProvider {
    async fn recommend(
        &self,
        ctx: &Context,
        params: recommendations::GetParams,
    ) -> Result<recommendations::GetResponse>;
    async fn dismiss(&self, _ctx: &Context, _params: DismissParams) -> Result<DismissResponse> {
        Err(PluginError::MethodNotFound("this plugin does not take dismissals".into()))
    }
    async fn clear(&self, _ctx: &Context) -> Result<AnyObject> {
        Err(PluginError::MethodNotFound("this plugin keeps nothing to clear".into()))
    }
}

/// `releases/poll`: a release source, polled by the host one source at a time. Its
/// manifest's `releaseSource` is what [`ReleaseProvider::capability`] says.
pub trait ReleaseProvider {
    /// What it announces and needs of tracked series.
    fn capability(&self) -> ReleaseSourceCapability;
    /// The sources it registers once initialized, as its whole set; `None` (the default):
    /// it registers none itself.
    fn sources(&self, _ctx: &Context) -> Option<Vec<SourceRegistration>> {
        None
    }
    async fn poll(&self, ctx: &Context, params: PollParams) -> Result<PollResponse>;
}

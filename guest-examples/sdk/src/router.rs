//! From a method name and raw params to the provider that answers it.

use codex_plugin_protocol::HostMethod;
use futures::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::rc::Rc;

use crate::context::Context;
use crate::error::PluginError;
use crate::providers::{BookProvider, RecommendationProvider, ReleaseProvider, SeriesProvider, SyncProvider};

type Answer = Result<Value, PluginError>;

/// The providers of one plugin, behind object-safe adapters.
#[derive(Default)]
pub(crate) struct Router {
    pub(crate) series: Option<Rc<dyn Route>>,
    pub(crate) books: Option<Rc<dyn Route>>,
    pub(crate) sync: Option<Rc<dyn Route>>,
    pub(crate) recommendations: Option<Rc<dyn Route>>,
    pub(crate) releases: Option<Rc<dyn Route>>,
}

/// One provider, answering the methods of its family.
pub(crate) trait Route {
    fn route<'a>(&'a self, ctx: &'a Context, method: HostMethod, params: Value) -> LocalBoxFuture<'a, Answer>;

    /// Runs once `initialize` was answered (a release source registers its sources).
    fn initialized<'a>(&'a self, _ctx: &'a Context) -> LocalBoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

impl Router {
    /// The provider for a method, or -32601.
    pub(crate) fn provider_for(&self, method: HostMethod) -> Result<Rc<dyn Route>, PluginError> {
        use HostMethod::*;
        let provider = match method {
            SeriesSearch | SeriesGet | SeriesMatch => &self.series,
            BookSearch | BookGet | BookMatch => &self.books,
            SyncUserInfo | SyncPush | SyncPull | SyncStatus => &self.sync,
            RecommendationsGet | RecommendationsDismiss | RecommendationsClear | RecommendationsUpdateProfile => {
                &self.recommendations
            }
            ReleasesPoll => &self.releases,
            Initialize | Ping | Shutdown => &None,
        };
        provider.clone().ok_or_else(|| PluginError::MethodNotFound(format!("Method not found: {}", method.name())))
    }
}

/// Reads params as `P` (-32602 naming the problem), runs the method, writes the result.
async fn answer<P, R>(params: Value, method: impl AsyncFnOnce(P) -> Result<R, PluginError>) -> Answer
where
    P: DeserializeOwned,
    R: Serialize,
{
    let params = PluginError::params_as(params)?;
    let result = method(params).await?;
    serde_json::to_value(result).map_err(|error| PluginError::Internal(format!("could not encode the result: {error}")))
}

fn not_this_family(method: HostMethod) -> Answer {
    Err(PluginError::MethodNotFound(format!("Method not found: {}", method.name())))
}

/// Wraps a series provider.
pub(crate) struct Series<T>(pub(crate) T);
/// Wraps a book provider.
pub(crate) struct Books<T>(pub(crate) T);
/// Wraps a sync provider.
pub(crate) struct Sync<T>(pub(crate) T);
/// Wraps a recommendation provider.
pub(crate) struct Recommendations<T>(pub(crate) T);
/// Wraps a release provider.
pub(crate) struct Releases<T>(pub(crate) T);

impl<T: SeriesProvider> Route for Series<T> {
    fn route<'a>(&'a self, ctx: &'a Context, method: HostMethod, params: Value) -> LocalBoxFuture<'a, Answer> {
        Box::pin(async move {
            match method {
                HostMethod::SeriesSearch => answer(params, async |p| self.0.search(ctx, p).await).await,
                HostMethod::SeriesGet => answer(params, async |p| self.0.get(ctx, p).await).await,
                HostMethod::SeriesMatch => answer(params, async |p| self.0.best_match(ctx, p).await).await,
                other => not_this_family(other),
            }
        })
    }
}

impl<T: BookProvider> Route for Books<T> {
    fn route<'a>(&'a self, ctx: &'a Context, method: HostMethod, params: Value) -> LocalBoxFuture<'a, Answer> {
        Box::pin(async move {
            match method {
                HostMethod::BookSearch => {
                    answer(params, async |p: codex_plugin_protocol::types::metadata::BookSearchParams| {
                        p.check().map_err(PluginError::InvalidParams)?;
                        self.0.search(ctx, p).await
                    })
                    .await
                }
                HostMethod::BookGet => answer(params, async |p| self.0.get(ctx, p).await).await,
                HostMethod::BookMatch => answer(params, async |p| self.0.best_match(ctx, p).await).await,
                other => not_this_family(other),
            }
        })
    }
}

impl<T: SyncProvider> Route for Sync<T> {
    fn route<'a>(&'a self, ctx: &'a Context, method: HostMethod, params: Value) -> LocalBoxFuture<'a, Answer> {
        Box::pin(async move {
            match method {
                HostMethod::SyncUserInfo => answer(params, async |_: Value| self.0.user_info(ctx).await).await,
                HostMethod::SyncPush => answer(params, async |p| self.0.push_progress(ctx, p).await).await,
                HostMethod::SyncPull => answer(params, async |p| self.0.pull_progress(ctx, p).await).await,
                HostMethod::SyncStatus => answer(params, async |_: Value| self.0.status(ctx).await).await,
                other => not_this_family(other),
            }
        })
    }
}

impl<T: RecommendationProvider> Route for Recommendations<T> {
    fn route<'a>(&'a self, ctx: &'a Context, method: HostMethod, params: Value) -> LocalBoxFuture<'a, Answer> {
        Box::pin(async move {
            match method {
                HostMethod::RecommendationsGet => answer(params, async |p| self.0.recommend(ctx, p).await).await,
                HostMethod::RecommendationsDismiss => answer(params, async |p| self.0.dismiss(ctx, p).await).await,
                HostMethod::RecommendationsClear => answer(params, async |_: Value| self.0.clear(ctx).await).await,
                other => not_this_family(other),
            }
        })
    }
}

impl<T: ReleaseProvider> Route for Releases<T> {
    fn initialized<'a>(&'a self, ctx: &'a Context) -> LocalBoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(sources) = self.0.sources(ctx) else { return };
            let count = sources.len();
            match ctx.releases().register_sources(sources).await {
                Ok(done) => ctx.log().info(format!("registered {count} release sources ({} pruned)", done.pruned)),
                Err(error) => ctx.log().error(format!("register_sources failed: {error}")),
            }
        })
    }

    fn route<'a>(&'a self, ctx: &'a Context, method: HostMethod, params: Value) -> LocalBoxFuture<'a, Answer> {
        Box::pin(async move {
            match method {
                HostMethod::ReleasesPoll => answer(params, async |p| self.0.poll(ctx, p).await).await,
                other => not_this_family(other),
            }
        })
    }
}

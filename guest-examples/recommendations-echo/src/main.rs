//! `recommendations-echo`: recommendations drawn from the library it is given.
//!
//! It shows the recommendation surface of the SDK and plugin storage: every library entry
//! yields a recommendation (`more-<seriesId>`), scored by the reader's rating; ids in
//! `excludeIds` and ids the user dismissed are left out. Dismissals are kept in plugin
//! storage, one key per id (`dismissed:<id>`), so they survive restarts and two dismissals
//! in flight at once never overwrite each other (requests run concurrently: a shared list
//! read, changed and written back across awaits would lose one); `clear` forgets them.
//!
//! ```sh
//! cargo build -p recommendations-echo
//! codex-plugin-host call recommendations/dismiss '{"externalId":"more-1"}' --plugins-dir target -- target/debug/recommendations-echo
//! codex-plugin-host call recommendations/get '{"library":[{"seriesId":"1","title":"Dune"}]}' --plugins-dir target -- target/debug/recommendations-echo
//! ```

use codex_plugin_sdk::prelude::*;
use serde_json::json;
use std::process::ExitCode;

const DISMISSED: &str = "dismissed:";

struct Echo;

impl RecommendationProvider for Echo {
    async fn recommend(
        &self,
        ctx: &Context,
        params: recommendations::GetParams,
    ) -> Result<recommendations::GetResponse> {
        let keys = ctx.storage().list().await?;
        let dismissed: Vec<&str> = keys.iter().filter_map(|info| info.key.strip_prefix(DISMISSED)).collect();
        let limit = params.limit.unwrap_or(20).clamp(0, 100) as usize;
        let recommendations = params
            .library
            .iter()
            .map(|entry| Recommendation {
                external_id: format!("more-{}", entry.series_id),
                title: format!("More like {}", entry.title),
                score: Some(entry.user_rating.map_or(0.5, |rating| (rating / 100.0).clamp(0.0, 1.0))),
                reason: Some(format!("Because you read {}", entry.title)),
                based_on: vec![entry.series_id.clone()],
                genres: entry.genres.clone(),
                ..Recommendation::default()
            })
            .filter(|recommendation| !params.exclude_ids.contains(&recommendation.external_id))
            .filter(|recommendation| !dismissed.contains(&recommendation.external_id.as_str()))
            .take(limit)
            .collect();
        Ok(recommendations::GetResponse { recommendations, generated_at: None, cached: false })
    }

    async fn dismiss(&self, ctx: &Context, params: DismissParams) -> Result<DismissResponse> {
        let reason = params.reason.map(|reason| reason.as_str().to_owned());
        let key = format!("{DISMISSED}{}", params.external_id);
        match ctx.storage().set(&key, json!({"reason": reason}), None).await {
            Ok(()) => Ok(DismissResponse { dismissed: true }),
            // A host that refuses the write (a full quota): not dismissed, and the user can
            // try again; not a fault of the plugin.
            Err(codex_plugin_sdk::StorageError::Refused(error)) => {
                ctx.log().warn(format!("dismissal of {} not kept: {}", params.external_id, error.message));
                Ok(DismissResponse { dismissed: false })
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn clear(&self, ctx: &Context) -> Result<AnyObject> {
        let deleted = ctx.storage().clear().await?;
        let answer = json!({"cleared": true, "deletedCount": deleted});
        Ok(AnyObject(answer.as_object().cloned().unwrap_or_default()))
    }
}

fn main() -> ExitCode {
    let info = PluginInfo::new(
        "recommendations-echo",
        "Recommendations Echo",
        "0.1.0",
        "Recommendations from your own library",
    );
    Plugin::new(info).recommendations(Echo).run()
}

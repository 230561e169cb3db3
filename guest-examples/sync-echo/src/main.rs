//! `sync-echo`: a reading-progress sync plugin over a deterministic reading list.
//!
//! It shows the sync surface of the SDK: `getUserInfo` uses the access token from the
//! credentials and fails with an auth error when there is none; `pullProgress` pages
//! through a fixed list of 23 entries (`page` or `cursor`, `limit` per page, default 10)
//! with `hasMore`; `pushProgress` reports each entry: ids starting with `missing-` fail,
//! the others are updated; `status` summarizes.
//!
//! ```sh
//! cargo build -p sync-echo
//! codex-plugin-host call sync/pullProgress '{"page":2,"limit":10}' --plugins-dir target -- target/debug/sync-echo
//! codex-plugin-host call sync/getUserInfo --credentials '{"access_token":"t0ken"}' --plugins-dir target -- target/debug/sync-echo
//! ```

use codex_plugin_sdk::prelude::*;
use std::process::ExitCode;

const ENTRIES: i64 = 23;
const DEFAULT_PAGE_SIZE: i64 = 10;

struct Echo;

impl Echo {
    fn entry(index: i64) -> SyncEntry {
        let statuses =
            [ReadingStatus::Reading, ReadingStatus::Completed, ReadingStatus::OnHold, ReadingStatus::PlanToRead];
        SyncEntry {
            progress: Some(Progress {
                volumes: Some((index % 7) as f64),
                chapters: Some((index * 3) as f64),
                ..Progress::default()
            }),
            score: Some((50 + index * 2) as f64),
            started_at: Some(format!("2026-01-{:02}T00:00:00Z", index % 28 + 1)),
            latest_updated_at: Some(format!("2026-02-{:02}T00:00:00Z", index % 28 + 1)),
            title: Some(format!("Series {index}")),
            ..SyncEntry::new(format!("series-{index:02}"), statuses[(index % 4) as usize].clone())
        }
    }
}

impl SyncProvider for Echo {
    async fn user_info(&self, ctx: &Context) -> Result<UserInfo> {
        let token = ctx
            .credential("access_token")
            .ok_or_else(|| PluginError::Auth("no access token in the credentials".into()))?;
        let short: String = token.chars().take(4).collect();
        Ok(UserInfo {
            external_id: format!("user-{short}"),
            username: format!("reader-{short}"),
            avatar_url: None,
            profile_url: Some(format!("https://echo.example/users/{short}")),
        })
    }

    async fn push_progress(&self, _ctx: &Context, params: PushParams) -> Result<PushResponse> {
        let (failed, succeeded): (Vec<_>, Vec<_>) =
            params.entries.into_iter().partition(|entry| entry.external_id.starts_with("missing-"));
        Ok(PushResponse {
            success: succeeded
                .into_iter()
                .map(|entry| EntryResult {
                    external_id: entry.external_id,
                    status: EntryResultStatus::Updated,
                    error: None,
                })
                .collect(),
            failed: failed
                .into_iter()
                .map(|entry| EntryResult {
                    error: Some(format!("no series {} on the tracker", entry.external_id)),
                    external_id: entry.external_id,
                    status: EntryResultStatus::Failed,
                })
                .collect(),
        })
    }

    async fn pull_progress(&self, _ctx: &Context, params: PullParams) -> Result<PullResponse> {
        let size = params.limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, 100);
        let start = match (&params.cursor, params.page) {
            (Some(cursor), _) => cursor
                .parse::<i64>()
                .ok()
                .filter(|start| (0..=ENTRIES).contains(start))
                .ok_or_else(|| PluginError::InvalidParams(format!("bad cursor {cursor:?}")))?,
            (None, Some(page)) => page.clamp(1, ENTRIES + 1).saturating_sub(1).saturating_mul(size).min(ENTRIES),
            (None, None) => 0,
        };
        let end = start.saturating_add(size).min(ENTRIES);
        let has_more = end < ENTRIES;
        Ok(PullResponse {
            entries: (start..end).map(Self::entry).collect(),
            has_more,
            next_page: has_more.then(|| end / size + 1),
            next_cursor: has_more.then(|| end.to_string()),
        })
    }

    async fn status(&self, _ctx: &Context) -> Result<StatusResponse> {
        Ok(StatusResponse {
            last_sync_at: None,
            external_count: Some(ENTRIES),
            pending_push: 0,
            pending_pull: 0,
            conflicts: 0,
        })
    }
}

fn main() -> ExitCode {
    let mut info = PluginInfo::new("sync-echo", "Sync Echo", "0.1.0", "Reading progress from a fixed reading list");
    info.external_id_source = Some("api:echo".into());
    Plugin::new(info).sync(Echo).run()
}

//! `sync-echo`: a reading-progress sync plugin over a deterministic reading list.
//!
//! It shows the sync surface of the SDK: `getUserInfo` uses the access token from the
//! credentials and fails with an auth error when there is none; `pullProgress` pages
//! through a fixed list of entries (`page` or `cursor`, `limit` per page, default 10, at
//! most 100) with `hasMore`, only those changed after `updatedSince` when given;
//! `pushProgress` reports each entry: ids starting with `missing-` or listed in `failIds`
//! fail, the others are updated, and it keeps a count of its pushes in storage
//! (`pushLog`); `status` summarizes.
//!
//! The admin config shapes the list, for tests and benches:
//! - `entries`: how many (default 23); entry `i` is `series-<i>` (two digits at least),
//!   changed on 2026-02-(i mod 28 + 1);
//! - `pagination`: `"page"` (only `nextPage`), `"cursor"` (only `nextCursor`), or both;
//! - `repeatPage`: after this page, point back at the first (a plugin whose pages loop);
//! - `failIds`: external ids whose push fails.
//!
//! ```sh
//! cargo build -p sync-echo
//! codex-plugin-host call sync/pullProgress '{"page":2,"limit":10}' --plugins-dir target -- target/debug/sync-echo
//! codex-plugin-host call sync/getUserInfo --credentials '{"access_token":"t0ken"}' --plugins-dir target -- target/debug/sync-echo
//! ```

use codex_plugin_sdk::prelude::*;
use serde_json::{Value, json};
use std::process::ExitCode;

const DEFAULT_ENTRIES: i64 = 23;
const DEFAULT_PAGE_SIZE: i64 = 10;

struct Echo;

/// The list as the admin config shapes it.
struct Shape {
    entries: i64,
    pages: bool,
    cursors: bool,
    repeat_page: Option<i64>,
    fail_ids: Vec<String>,
}

impl Shape {
    fn of(ctx: &Context) -> Self {
        let config = ctx.admin_config();
        let pagination = config.get("pagination").and_then(Value::as_str).unwrap_or("both");
        Self {
            entries: ctx.admin_integer("entries").unwrap_or(DEFAULT_ENTRIES).max(0),
            pages: pagination != "cursor",
            cursors: pagination != "page",
            repeat_page: ctx.admin_integer("repeatPage"),
            fail_ids: config
                .get("failIds")
                .and_then(Value::as_array)
                .map(|ids| ids.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
        }
    }
}

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

    async fn push_progress(&self, ctx: &Context, params: PushParams) -> Result<PushResponse> {
        let shape = Shape::of(ctx);
        let log = ctx.storage().get("pushLog").await?.unwrap_or_else(|| json!({}));
        let count = |key: &str| log.get(key).and_then(Value::as_i64).unwrap_or(0);
        let logged =
            json!({"batches": count("batches") + 1, "entries": count("entries") + params.entries.len() as i64});
        // The log is bookkeeping: a host that refuses the write (a full quota) does not fail
        // the push.
        if let Err(error) = ctx.storage().set("pushLog", logged, None).await {
            ctx.log().warn(format!("the push log was not kept: {error}"));
        }
        let (failed, succeeded): (Vec<_>, Vec<_>) = params.entries.into_iter().partition(|entry| {
            entry.external_id.starts_with("missing-") || shape.fail_ids.contains(&entry.external_id)
        });
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

    async fn pull_progress(&self, ctx: &Context, params: PullParams) -> Result<PullResponse> {
        let shape = Shape::of(ctx);
        let total = shape.entries;
        let size = params.limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, 100);
        let start = match (&params.cursor, params.page) {
            (Some(cursor), _) => cursor
                .parse::<i64>()
                .ok()
                .filter(|start| (0..=total).contains(start))
                .ok_or_else(|| PluginError::InvalidParams(format!("bad cursor {cursor:?}")))?,
            (None, Some(page)) => page.clamp(1, total + 1).saturating_sub(1).saturating_mul(size).min(total),
            (None, None) => 0,
        };
        let end = start.saturating_add(size).min(total);
        let has_more = end < total;
        let page = start / size + 1;
        // A plugin whose pages loop: after `repeatPage`, the next page is the first again.
        let next = if shape.repeat_page == Some(page) { 0 } else { end };
        let since = params.updated_since.as_deref().or(params.since.as_deref());
        Ok(PullResponse {
            entries: (start..end)
                .map(Self::entry)
                .filter(|entry| since.is_none_or(|since| entry.latest_updated_at.as_deref() > Some(since)))
                .collect(),
            has_more,
            next_page: (has_more && shape.pages).then(|| next / size + 1),
            next_cursor: (has_more && shape.cursors).then(|| next.to_string()),
        })
    }

    async fn status(&self, ctx: &Context) -> Result<StatusResponse> {
        Ok(StatusResponse {
            last_sync_at: None,
            external_count: Some(Shape::of(ctx).entries),
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

-- OAuth (orchestration.md §6): flows waiting for their callback (a state is consumed once,
-- by deleting its row), and each connection's token state. The tokens themselves are in
-- plugin_credentials, sealed by the vault: the access token as `access_token`, what the
-- plugin is given; the refresh token as `_codex.refresh_token`, which it never sees. The
-- token URL is pinned when a flow starts: a plugin that later names another in its
-- manifest never gets the refresh token sent there.
CREATE TABLE IF NOT EXISTS oauth_flows (
    state        TEXT    PRIMARY KEY,
    plugin_id    TEXT    NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    user_id      TEXT    NOT NULL,
    verifier     TEXT    NOT NULL,
    redirect_uri TEXT    NOT NULL,
    token_url    TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS oauth_flows_by_user ON oauth_flows (user_id, expires_at);
CREATE TABLE IF NOT EXISTS oauth_tokens (
    plugin_id        TEXT    NOT NULL,
    user_id          TEXT    NOT NULL,
    issued_at        INTEGER NOT NULL,
    expires_at       INTEGER,
    token_url        TEXT    NOT NULL,
    scope            TEXT,
    reconnect_reason TEXT,
    failures         TEXT    NOT NULL DEFAULT '[]',
    retry_after      INTEGER,
    refresher        TEXT,
    refreshing_until INTEGER,
    PRIMARY KEY (plugin_id, user_id),
    FOREIGN KEY (plugin_id, user_id) REFERENCES plugin_users (plugin_id, user_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS oauth_tokens_by_expiry ON oauth_tokens (expires_at);

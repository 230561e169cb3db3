-- API tokens (issue 15): who may use the host's HTTP API and its page. A token is 256
-- random bits, shown once when it is made; only its SHA-256 digest is kept, so a copy of
-- the database gives no token. An admin token may do everything; a user token acts only
-- for its user. A revoked token is kept (revoked_at set) so that the list says so.
CREATE TABLE IF NOT EXISTS api_tokens (
    id           TEXT    PRIMARY KEY,
    digest       BLOB    NOT NULL UNIQUE,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
    user_id      TEXT,
    label        TEXT,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER,
    CHECK ((role = 'user') = (user_id IS NOT NULL))
);

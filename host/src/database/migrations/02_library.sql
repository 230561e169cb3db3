-- The library (orchestration.md §0): what the host knows of a collection. Metadata, locks
-- and custom metadata are JSON documents (TEXT), read and written whole by the library's
-- adapter; external ids, tracking, reading progress and ratings are rows, since they are
-- looked up by value. Portable SQL: no SQLite-only syntax beyond `WITHOUT ROWID`.
CREATE TABLE IF NOT EXISTS libraries (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    title_rules           TEXT NOT NULL DEFAULT '[]',
    auto_match_conditions TEXT
);
CREATE TABLE IF NOT EXISTS series (
    id              TEXT PRIMARY KEY,
    library_id      TEXT NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    metadata        TEXT NOT NULL DEFAULT '{}',
    locks           TEXT NOT NULL DEFAULT '[]',
    custom_metadata TEXT,
    revision        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS series_by_library ON series (library_id, id);
CREATE TABLE IF NOT EXISTS series_external_ids (
    series_id   TEXT NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    url         TEXT,
    hash        TEXT,
    PRIMARY KEY (series_id, source)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS series_external_ids_by_value ON series_external_ids (source, external_id);
CREATE TABLE IF NOT EXISTS series_tracking (
    series_id      TEXT PRIMARY KEY REFERENCES series (id) ON DELETE CASCADE,
    tracked        INTEGER NOT NULL DEFAULT 0,
    track_volumes  INTEGER NOT NULL DEFAULT 1,
    track_chapters INTEGER NOT NULL DEFAULT 1,
    languages      TEXT NOT NULL DEFAULT '[]',
    latest_chapter REAL,
    latest_volume  REAL
);
CREATE TABLE IF NOT EXISTS books (
    id              TEXT PRIMARY KEY,
    series_id       TEXT NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    position        REAL NOT NULL,
    volume          REAL,
    chapter         REAL,
    title           TEXT NOT NULL,
    isbn            TEXT,
    page_count      INTEGER,
    file_format     TEXT,
    metadata        TEXT NOT NULL DEFAULT '{}',
    locks           TEXT NOT NULL DEFAULT '[]',
    custom_metadata TEXT,
    revision        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS books_by_series ON books (series_id, position);
CREATE TABLE IF NOT EXISTS book_external_ids (
    book_id     TEXT NOT NULL REFERENCES books (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    url         TEXT,
    hash        TEXT,
    PRIMARY KEY (book_id, source)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reading_progress (
    user_id      TEXT NOT NULL,
    book_id      TEXT NOT NULL REFERENCES books (id) ON DELETE CASCADE,
    page         INTEGER NOT NULL DEFAULT 0,
    completed    INTEGER NOT NULL DEFAULT 0,
    completed_at INTEGER,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, book_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series_ratings (
    user_id    TEXT NOT NULL,
    series_id  TEXT NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    rating     INTEGER NOT NULL CHECK (rating BETWEEN 0 AND 100),
    notes      TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, series_id)
) WITHOUT ROWID;

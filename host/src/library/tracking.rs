//! Release tracking in the SQLite library: the tracked series, paged by id, and the latest
//! known chapter and volume raised in one statement (never lowered, whoever else writes).

use rusqlite::{Connection, params};

use super::sqlite::read_series;
use super::{LibraryError, Series};

pub(super) fn tracked_series(connection: &Connection, offset: u64, limit: usize) -> Result<Vec<Series>, LibraryError> {
    let ids: Vec<String> = connection
        .prepare_cached("SELECT series_id FROM series_tracking WHERE tracked = 1 ORDER BY series_id LIMIT ? OFFSET ?")?
        .query_map(params![limit as i64, offset as i64], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    ids.iter().map(|id| read_series(connection, id)).collect()
}

pub(super) fn count_tracked(connection: &Connection) -> Result<u64, LibraryError> {
    let count: i64 = connection
        .prepare_cached("SELECT COUNT(*) FROM series_tracking WHERE tracked = 1")?
        .query_row([], |row| row.get(0))?;
    Ok(count as u64)
}

pub(super) fn raise_latest_known(
    connection: &Connection,
    series: &str,
    chapter: Option<f64>,
    volume: Option<f64>,
) -> Result<(), LibraryError> {
    connection
        .prepare_cached(
            "UPDATE series_tracking SET
                 latest_chapter = CASE WHEN ?2 IS NOT NULL AND (latest_chapter IS NULL OR latest_chapter < ?2)
                                       THEN ?2 ELSE latest_chapter END,
                 latest_volume = CASE WHEN ?3 IS NOT NULL AND (latest_volume IS NULL OR latest_volume < ?3)
                                      THEN ?3 ELSE latest_volume END
             WHERE series_id = ?1",
        )?
        .execute(params![series, chapter, volume])?;
    Ok(())
}

pub(super) fn set_latest_known(
    connection: &Connection,
    series: &str,
    chapter: Option<f64>,
    volume: Option<f64>,
) -> Result<(), LibraryError> {
    let changed = connection
        .prepare_cached("UPDATE series_tracking SET latest_chapter = ?2, latest_volume = ?3 WHERE series_id = ?1")?
        .execute(params![series, chapter, volume])?;
    if changed == 0 {
        return Err(LibraryError::NoSeries(series.to_owned()));
    }
    Ok(())
}

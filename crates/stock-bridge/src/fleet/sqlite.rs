//! The fleet on one node: one SQLite file (`STOCK_BRIDGE_FLEET_DB`), bundled SQLite, WAL.
//! Each [`Batch`] is one transaction (the fleet writes at most one a second), so a crash
//! loses at most the last second of changes.

use super::record::{TIMELINE_MAX, TillRecord, TimelineEntry};
use super::store::{Batch, FleetStore, StoreError};
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// See the module docs.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS tills (key TEXT PRIMARY KEY, record TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS timeline (n INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, entry TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS timeline_by_key ON timeline (key, n);
";

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError { store: "sqlite", why: e.to_string() }
}

impl SqliteStore {
    /// Opens (or creates) the file at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(|e| failed(format!("cannot open {}: {e}", path.display())))?;
        conn.execute_batch(SCHEMA).map_err(|e| failed(format!("{}: {e}", path.display())))?;
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), path: path.to_owned() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the connection on a blocking thread.
    fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let conn = self.conn.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                work(&mut conn)
            })
            .await
            .map_err(failed)?
            .map_err(failed)
        })
    }
}

impl FleetStore for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn load(&self) -> BoxFuture<'_, Result<Vec<TillRecord>, StoreError>> {
        let read = self.with(|conn| {
            let mut statement = conn.prepare("SELECT record FROM tills")?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
        });
        Box::pin(async move {
            let rows = read.await?;
            // A row this version cannot read is skipped (and said), not fatal.
            Ok(rows
                .into_iter()
                .filter_map(|row| {
                    serde_json::from_str(&row)
                        .map_err(|e| tracing::warn!("a till in the fleet file cannot be read and is skipped: {e}"))
                        .ok()
                })
                .collect())
        })
    }

    fn write(&self, batch: Batch) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO tills (key, record) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET record = excluded.record",
                )?;
                for record in &batch.records {
                    let json = serde_json::to_string(record).unwrap_or_default();
                    upsert.execute(params![record.key, json])?;
                }
                let mut append = tx.prepare_cached("INSERT INTO timeline (key, entry) VALUES (?1, ?2)")?;
                let mut trim = tx.prepare_cached(
                    "DELETE FROM timeline WHERE key = ?1 AND n <= (SELECT n FROM timeline WHERE key = ?1 ORDER BY n DESC LIMIT 1 OFFSET ?2)",
                )?;
                for (key, entry) in &batch.timeline {
                    append.execute(params![key, serde_json::to_string(entry).unwrap_or_default()])?;
                }
                let mut trimmed = std::collections::HashSet::new();
                for (key, _) in &batch.timeline {
                    if trimmed.insert(key.as_str()) {
                        trim.execute(params![key, TIMELINE_MAX as i64])?;
                    }
                }
                let mut forget_till = tx.prepare_cached("DELETE FROM tills WHERE key = ?1")?;
                let mut forget_timeline = tx.prepare_cached("DELETE FROM timeline WHERE key = ?1")?;
                for key in &batch.forget {
                    forget_till.execute(params![key])?;
                    forget_timeline.execute(params![key])?;
                }
            }
            tx.commit()
        })
    }

    fn timeline<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<TimelineEntry>, StoreError>> {
        let key = key.to_owned();
        let read = self.with(move |conn| {
            let mut statement = conn.prepare_cached("SELECT entry FROM timeline WHERE key = ?1 ORDER BY n")?;
            let rows = statement.query_map(params![key], |row| row.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
        });
        Box::pin(async move { Ok(read.await?.iter().filter_map(|e| serde_json::from_str(e).ok()).collect()) })
    }
}

/// The number of tills in the file at `path` (for tests and the benchmark).
pub fn count_tills(path: &Path) -> Result<u64, StoreError> {
    let conn = Connection::open(path).map_err(failed)?;
    let count: Option<i64> =
        conn.query_row("SELECT COUNT(*) FROM tills", [], |row| row.get(0)).optional().map_err(failed)?;
    Ok(count.unwrap_or(0).max(0) as u64)
}

//! The SQLite capability (`spin:sqlite/sqlite@3.0.0`) over the `libsql`
//! crate: an embedded database file in the data dir, in WAL mode.
//!
//! Life cycle, as in Spin's factor crates: [`SqliteCapability::open`]
//! configures the databases from [`runtime_config`] once; each request's
//! store gets an [`InstanceState`] naming the databases its component may
//! open; `host.rs` implements the WIT interface.
//!
//! Write transactions (`BEGIN IMMEDIATE`) from concurrent requests are
//! serialised by an async lock per database, taken before the statement
//! runs, so a waiting writer parks its task instead of spinning in SQLite's
//! busy handler; readers never wait (WAL). Derivation (a background
//! instance) lets requests write first: it takes the lock only when it is
//! free and no request waits, polling for up to [`BACKGROUND_YIELD`] per
//! transaction before it queues like anyone (so a steady stream of writes
//! delays it but cannot starve it). Connections are pooled; one
//! dropped mid-transaction is rolled back before it returns to the pool.
//!
//! Checkpoints run on a background thread (`PRAGMA wal_checkpoint(PASSIVE)`
//! once a second when the WAL has grown) instead of inside whichever commit
//! crosses SQLite's auto-checkpoint threshold, so no request pays for the
//! checkpoint's fsync.

pub mod host;

use crate::state::Priority;
pub mod runtime_config;

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use runtime_config::SqliteConfig;

/// One configured database: its handle, idle connections and writer lock.
pub struct SqliteDb {
    pub label: String,
    db: libsql::Database,
    idle: Mutex<Vec<PooledConn>>,
    pub(crate) writer: Arc<tokio::sync::Mutex<()>>,
    /// Requests waiting for `writer` (derivation lets them go first).
    pub(crate) foreground_waiting: std::sync::atomic::AtomicUsize,
    config: SqliteConfig,
}

/// Longest a background transaction waits for queued requests to go first.
pub const BACKGROUND_YIELD: std::time::Duration = std::time::Duration::from_millis(50);

impl SqliteDb {
    async fn open(label: &str, config: &SqliteConfig) -> Result<SqliteDb> {
        if let Some(parent) = config.path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let db = libsql::Builder::new_local(&config.path)
            .build()
            .await
            .with_context(|| format!("opening sqlite database {}", config.path.display()))?;
        let this = SqliteDb {
            label: label.to_string(),
            db,
            idle: Mutex::new(Vec::new()),
            writer: Arc::new(tokio::sync::Mutex::new(())),
            foreground_waiting: Default::default(),
            config: config.clone(),
        };
        // WAL is a property of the file; set it once, up front.
        let conn = this.new_connection().await?;
        let mut rows = conn.query("PRAGMA journal_mode=WAL", ()).await?;
        while rows.next().await?.is_some() {}
        drop(rows);
        this.release(PooledConn::new(conn));
        Ok(this)
    }

    /// Starts the background checkpointer for this database.
    fn start_checkpointer(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let interval = std::time::Duration::from_millis(self.config.checkpoint_interval_ms);
        std::thread::Builder::new()
            .name(format!("cairn-ckpt-{}", self.label))
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else { return };
                let mut conn: Option<libsql::Connection> = None;
                loop {
                    std::thread::sleep(interval);
                    let Some(db) = weak.upgrade() else { return };
                    if conn.is_none() {
                        conn = rt.block_on(db.new_connection()).ok();
                    }
                    if let Some(c) = &conn
                        && let Err(e) = rt.block_on(checkpoint(c))
                    {
                        tracing::warn!(database = %db.label, error = %e, "wal checkpoint failed");
                    }
                }
            })
            .expect("spawning checkpointer");
    }

    async fn new_connection(&self) -> Result<libsql::Connection> {
        let conn = self.db.connect()?;
        conn.busy_timeout(std::time::Duration::from_millis(self.config.busy_timeout_ms))?;
        for pragma in [
            format!("PRAGMA synchronous={}", self.config.synchronous.as_pragma()),
            "PRAGMA foreign_keys=ON".to_string(),
            "PRAGMA temp_store=MEMORY".to_string(),
            format!("PRAGMA cache_size=-{}", self.config.cache_kib),
            format!("PRAGMA mmap_size={}", self.config.mmap_bytes),
            // Checkpoints are the background thread's job.
            "PRAGMA wal_autocheckpoint=0".to_string(),
        ] {
            let mut rows = conn.query(&pragma, ()).await?;
            while rows.next().await?.is_some() {}
        }
        Ok(conn)
    }

    /// An idle pooled connection, or a new one.
    pub async fn acquire(&self) -> Result<PooledConn> {
        if let Some(c) = self.idle.lock().expect("pool lock").pop() {
            return Ok(c);
        }
        Ok(PooledConn::new(self.new_connection().await?))
    }

    /// Returns a connection (outside any transaction) to the pool.
    pub fn release(&self, conn: PooledConn) {
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < self.config.max_idle_connections {
            idle.push(conn);
        }
    }
}

/// A pooled connection and its prepared statements, reused across requests
/// so hot statements are parsed and planned once per connection.
pub struct PooledConn {
    pub conn: libsql::Connection,
    statements: HashMap<String, libsql::Statement>,
}

/// Most statements a connection keeps prepared (dynamic SQL beyond this
/// just clears the cache).
const MAX_CACHED_STATEMENTS: usize = 256;

impl PooledConn {
    fn new(conn: libsql::Connection) -> PooledConn {
        PooledConn { conn, statements: HashMap::new() }
    }

    /// The cached prepared statement for `sql`, preparing and caching it on
    /// first use. `None` when its parameter count differs from `params` (the
    /// caller then prepares a fresh one, so no binding from an earlier use
    /// can survive into this one).
    pub async fn cached(&mut self, sql: &str, params: usize) -> libsql::Result<Option<&libsql::Statement>> {
        if !self.statements.contains_key(sql) {
            let stmt = self.conn.prepare(sql).await?;
            if self.statements.len() >= MAX_CACHED_STATEMENTS {
                self.statements.clear();
            }
            self.statements.insert(sql.to_string(), stmt);
        }
        let stmt = &self.statements[sql];
        if stmt.parameter_count() != params {
            return Ok(None);
        }
        stmt.reset();
        Ok(Some(stmt))
    }
}

/// One passive checkpoint; returns without waiting for readers or writers.
async fn checkpoint(conn: &libsql::Connection) -> Result<()> {
    let mut rows = conn.query("PRAGMA wal_checkpoint(PASSIVE)", ()).await?;
    while rows.next().await?.is_some() {}
    Ok(())
}

/// Every database the app may open, by label.
#[derive(Clone)]
pub struct SqliteCapability {
    dbs: Arc<HashMap<String, Arc<SqliteDb>>>,
}

impl SqliteCapability {
    /// Opens the configured databases (`default` always exists).
    pub async fn open(configs: &HashMap<String, SqliteConfig>) -> Result<SqliteCapability> {
        let mut dbs = HashMap::new();
        for (label, cfg) in configs {
            let db = Arc::new(SqliteDb::open(label, cfg).await?);
            db.start_checkpointer();
            dbs.insert(label.clone(), db);
        }
        Ok(SqliteCapability { dbs: Arc::new(dbs) })
    }

    pub fn get(&self, label: &str) -> Option<&Arc<SqliteDb>> {
        self.dbs.get(label)
    }

    /// Per-instance state for a component allowed to open `allowed`,
    /// counting into `stats`.
    pub fn instance(&self, allowed: &[String], stats: Arc<DbStats>, priority: Priority) -> InstanceState {
        InstanceState { capability: self.clone(), allowed: Arc::new(allowed.to_vec()), stats, priority }
    }
}

/// What one request's store knows about SQLite.
pub struct InstanceState {
    pub capability: SqliteCapability,
    pub allowed: Arc<Vec<String>>,
    /// Statements run and time spent in SQLite by this request (for its log line).
    pub stats: Arc<DbStats>,
    pub priority: Priority,
}

/// Per-request database counters, shared with the request's log line.
#[derive(Default, Debug)]
pub struct DbStats {
    pub statements: std::sync::atomic::AtomicU64,
    pub micros: std::sync::atomic::AtomicU64,
    /// Time to instantiate the component for the request.
    pub instantiate_us: std::sync::atomic::AtomicU64,
    /// Time spent waiting for the database's write lock (another writer —
    /// a request or derivation — held it).
    pub lock_wait_us: std::sync::atomic::AtomicU64,
    /// Time in PostgreSQL statements (`spin:postgres`; connecting, and a
    /// write transaction's writer lock, included).
    pub postgres_us: std::sync::atomic::AtomicU64,
}

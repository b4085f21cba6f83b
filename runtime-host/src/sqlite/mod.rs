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
//! busy handler; readers never wait (WAL). Connections are pooled; one
//! dropped mid-transaction is rolled back before it returns to the pool.

pub mod host;
pub mod runtime_config;

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use runtime_config::SqliteConfig;

/// One configured database: its handle, idle connections and writer lock.
pub struct SqliteDb {
    pub label: String,
    db: libsql::Database,
    idle: Mutex<Vec<libsql::Connection>>,
    pub(crate) writer: Arc<tokio::sync::Mutex<()>>,
    config: SqliteConfig,
}

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
            config: config.clone(),
        };
        // WAL is a property of the file; set it once, up front.
        let conn = this.new_connection().await?;
        let mut rows = conn.query("PRAGMA journal_mode=WAL", ()).await?;
        while rows.next().await?.is_some() {}
        this.release(conn);
        Ok(this)
    }

    async fn new_connection(&self) -> Result<libsql::Connection> {
        let conn = self.db.connect()?;
        conn.busy_timeout(std::time::Duration::from_millis(self.config.busy_timeout_ms))?;
        for pragma in [
            format!("PRAGMA synchronous={}", self.config.synchronous.as_pragma()),
            "PRAGMA foreign_keys=ON".to_string(),
            "PRAGMA temp_store=MEMORY".to_string(),
            format!("PRAGMA cache_size=-{}", self.config.cache_kib),
        ] {
            let mut rows = conn.query(&pragma, ()).await?;
            while rows.next().await?.is_some() {}
        }
        Ok(conn)
    }

    /// An idle pooled connection, or a new one.
    pub async fn acquire(&self) -> Result<libsql::Connection> {
        if let Some(c) = self.idle.lock().expect("pool lock").pop() {
            return Ok(c);
        }
        self.new_connection().await
    }

    /// Returns a connection (outside any transaction) to the pool.
    pub fn release(&self, conn: libsql::Connection) {
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < self.config.max_idle_connections {
            idle.push(conn);
        }
    }
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
            dbs.insert(label.clone(), Arc::new(SqliteDb::open(label, cfg).await?));
        }
        Ok(SqliteCapability { dbs: Arc::new(dbs) })
    }

    pub fn get(&self, label: &str) -> Option<&Arc<SqliteDb>> {
        self.dbs.get(label)
    }

    /// Per-instance state for a component allowed to open `allowed`.
    pub fn instance(&self, allowed: &[String]) -> InstanceState {
        InstanceState { capability: self.clone(), allowed: Arc::new(allowed.to_vec()) }
    }
}

/// What one request's store knows about SQLite.
pub struct InstanceState {
    pub capability: SqliteCapability,
    pub allowed: Arc<Vec<String>>,
}

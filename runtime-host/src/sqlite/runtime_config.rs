//! The operator's SQLite knobs (`cairn up` flags): where the file lives and
//! how durable a commit is.

use std::path::PathBuf;

/// `PRAGMA synchronous`: `normal` keeps every committed write across a
/// process crash (SIGKILL) with WAL; `full` also across power loss, at the
/// cost of an fsync per commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Synchronous {
    Normal,
    Full,
}

impl Synchronous {
    pub fn as_pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqliteConfig {
    pub path: PathBuf,
    pub synchronous: Synchronous,
    pub busy_timeout_ms: u64,
    pub max_idle_connections: usize,
    /// Page cache per connection, KiB.
    pub cache_kib: u64,
    /// Bytes of the file read through a memory map (`PRAGMA mmap_size`,
    /// `CAIRN_SQLITE_MMAP_MB`, default 1024; 0 turns it off). Reads need no
    /// copy into each connection's page cache. The cost: a commit that grows
    /// the database makes every connection remap the file on its next read
    /// (strace under recall load: hundreds of remaps a second); measured at
    /// 100k memories it still wins (recall p95 8–10 ms with, 13–17 ms
    /// without; writes unchanged).
    pub mmap_bytes: u64,
    /// How often the background checkpointer runs.
    pub checkpoint_interval_ms: u64,
}

/// The default database's file in a data dir.
pub const DEFAULT_DATABASE_FILE: &str = "cairn.db";

impl SqliteConfig {
    /// The default database of a data dir: `<data-dir>/cairn.db`.
    pub fn default_in(data_dir: &std::path::Path, synchronous: Synchronous) -> SqliteConfig {
        SqliteConfig {
            path: data_dir.join(DEFAULT_DATABASE_FILE),
            synchronous,
            busy_timeout_ms: 5000,
            max_idle_connections: 64,
            cache_kib: 2 * 1024,
            mmap_bytes: std::env::var("CAIRN_SQLITE_MMAP_MB")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map(|mb| mb << 20)
                .unwrap_or(1 << 30),
            checkpoint_interval_ms: std::env::var("CAIRN_CHECKPOINT_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000),
        }
    }
}

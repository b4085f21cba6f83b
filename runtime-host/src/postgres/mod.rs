//! The PostgreSQL capability (`spin:postgres/postgres@4.0.0`) over
//! `tokio-postgres`, pooled per address with `deadpool-postgres`, the way
//! Spin's outbound-pg factor does it.
//!
//! - A component may open only the addresses its manifest grants in
//!   `allowed_outbound_hosts` (`postgres://host:port`; Spin's rule, and Spin
//!   too rejects Unix sockets). The address is a connection URL
//!   (`postgres://user@host:port/db`); one pool per distinct URL, at most
//!   [`POOL_SIZE`] connections each.
//! - Statements are prepared once per pooled connection (`prepare_cached`).
//! - There is no transaction API in the interface: a guest sends `BEGIN` …
//!   `COMMIT` through `execute` on one connection. Pools recycle
//!   connections without ending an open transaction, so a connection a
//!   guest drops inside one (a trap, a timeout, a bug) is rolled back
//!   before it goes back to the pool ([`host`]).
//! - TLS: not yet. `sslmode=require` is refused with a clear error rather
//!   than silently sent in the clear; `disable` and `prefer` connect
//!   without TLS.
//! - Values ([`values`]): booleans, integers, floats, text, bytea, jsonb,
//!   uuid, date/time/timestamp and int/text arrays both ways; decimals,
//!   ranges and intervals are refused as parameters and come back as
//!   `unsupported` (their wire bytes), which Cairn's kernel does not use.

pub mod host;
pub mod values;

use crate::spin_bindings::postgres::Error;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// Connections per address (Spin's default is 64; a Cairn instance serves
/// at most `--max-concurrency` requests, most of them on SQLite).
pub const POOL_SIZE: usize = 16;

/// The `host:port` a connection URL names, as `postgres://{{ database_host }}`
/// in spin.toml's `allowed_outbound_hosts` grants it ([`host_of`]).
pub fn grant_for(url: &str) -> anyhow::Result<String> {
    let host = host_of(url).map_err(|e| anyhow::anyhow!("--database-url: {e}"))?;
    Ok(host.trim_start_matches("postgres://").to_string())
}

/// One pool per address, shared by every instance.
pub struct PostgresCapability {
    pools: Mutex<HashMap<String, Pool>>,
    pool_size: usize,
}

impl PostgresCapability {
    pub fn new() -> Arc<PostgresCapability> {
        Self::with_pool_size(POOL_SIZE)
    }

    pub fn with_pool_size(pool_size: usize) -> Arc<PostgresCapability> {
        Arc::new(PostgresCapability { pools: Mutex::default(), pool_size: pool_size.max(1) })
    }

    /// A pooled connection to `address` (a connection URL).
    pub async fn connect(&self, address: &str) -> Result<deadpool_postgres::Object, Error> {
        let pool = self.pool(address)?;
        pool.get().await.map_err(|e| Error::ConnectionFailed(format!("{e}")))
    }

    fn pool(&self, address: &str) -> Result<Pool, Error> {
        let mut pools = self.pools.lock().expect("pool map lock");
        if let Some(p) = pools.get(address) {
            return Ok(p.clone());
        }
        let config = tokio_postgres::Config::from_str(address)
            .map_err(|e| Error::ConnectionFailed(format!("invalid address: {e}")))?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(Error::ConnectionFailed(
                "sslmode=require: cairn's host does not speak TLS to PostgreSQL yet (use sslmode=disable on a trusted network)"
                    .into(),
            ));
        }
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::ConnectionFailed(e.to_string()))?;
        pools.insert(address.to_string(), pool.clone());
        Ok(pool)
    }
}

/// `postgres://host:port` of a connection URL, as `allowed_outbound_hosts`
/// names it (port 5432 when the URL has none).
pub fn host_of(address: &str) -> Result<String, String> {
    let config = tokio_postgres::Config::from_str(address).map_err(|e| format!("invalid address: {e}"))?;
    let host = match config.get_hosts() {
        [tokio_postgres::config::Host::Tcp(h)] => h.clone(),
        [] => return Err("the address names no host".into()),
        [_] => return Err("Unix sockets are not allowed (use a TCP host:port)".into()),
        _ => return Err("the address names more than one host".into()),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    Ok(format!("postgres://{host}:{port}"))
}

/// What one instance may open.
#[derive(Clone)]
pub struct InstanceState {
    pub capability: Arc<PostgresCapability>,
    /// `postgres://host:port` entries of the component's
    /// `allowed_outbound_hosts`.
    pub allowed: Arc<Vec<String>>,
    /// The request's counters (time in PostgreSQL).
    pub stats: Arc<crate::sqlite::DbStats>,
}

impl InstanceState {
    /// Counts the time since `started` as time in PostgreSQL.
    fn spent(&self, started: std::time::Instant) {
        let us = started.elapsed().as_micros() as u64;
        self.stats.postgres_us.fetch_add(us, std::sync::atomic::Ordering::Relaxed);
    }
}

impl InstanceState {
    /// Whether `address` is granted.
    pub fn check(&self, address: &str) -> Result<(), Error> {
        let host = host_of(address).map_err(Error::ConnectionFailed)?;
        if self.allowed.iter().any(|a| a == &host) {
            Ok(())
        } else {
            Err(Error::ConnectionFailed(format!(
                "{host} is not allowed: add it to the component's allowed_outbound_hosts"
            )))
        }
    }
}

#[cfg(test)]
mod tests;

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
//! - TLS (`tokio-postgres-rustls`): `sslmode=require` connects over TLS
//!   and verifies the server's certificate and name against Mozilla's
//!   roots (`webpki-roots`) and the operator's CA file
//!   (`--database-ca-file`), as Spin verifies against the system's;
//!   stricter than libpq's `require`, which checks nothing. `disable` and
//!   `prefer` (the default) connect without TLS: `prefer` would otherwise
//!   fail where a server offers a certificate nobody can verify.
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
    /// For `sslmode=require`: the roots a server's certificate must chain to.
    tls: tokio_postgres_rustls::MakeRustlsConnect,
}

/// The TLS client config: Mozilla's roots, plus every certificate in the
/// PEM file `ca_file` (a private CA, e.g. a cluster's).
pub fn tls_config(ca_file: Option<&std::path::Path>) -> anyhow::Result<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let mut added = 0;
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| anyhow::anyhow!("--database-ca-file {}: {e}", path.display()))?
        {
            let cert = cert.map_err(|e| anyhow::anyhow!("--database-ca-file {}: {e}", path.display()))?;
            roots.add(cert).map_err(|e| anyhow::anyhow!("--database-ca-file {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            anyhow::bail!("--database-ca-file {}: no PEM certificate in it", path.display());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl PostgresCapability {
    #[cfg(test)]
    pub fn new() -> Arc<PostgresCapability> {
        Self::with_pool_size(POOL_SIZE)
    }

    #[cfg(test)]
    pub fn with_pool_size(pool_size: usize) -> Arc<PostgresCapability> {
        Self::with_tls(pool_size, tls_config(None).expect("the built-in roots make a TLS config"))
    }

    pub fn with_tls(pool_size: usize, tls: rustls::ClientConfig) -> Arc<PostgresCapability> {
        Arc::new(PostgresCapability {
            pools: Mutex::default(),
            pool_size: pool_size.max(1),
            tls: tokio_postgres_rustls::MakeRustlsConnect::new(tls),
        })
    }

    /// A pooled connection to `address` (a connection URL).
    pub async fn connect(&self, address: &str) -> Result<deadpool_postgres::Object, Error> {
        let pool = self.pool(address)?;
        pool.get().await.map_err(|e| Error::ConnectionFailed(error_chain(&e)))
    }

    fn pool(&self, address: &str) -> Result<Pool, Error> {
        let mut pools = self.pools.lock().expect("pool map lock");
        if let Some(p) = pools.get(address) {
            return Ok(p.clone());
        }
        let config = parse_config(address).map_err(Error::ConnectionFailed)?;
        let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Require => Manager::from_config(config, self.tls.clone(), recycling),
            _ => {
                let mut config = config;
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                Manager::from_config(config, tokio_postgres::NoTls, recycling)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::ConnectionFailed(e.to_string()))?;
        pools.insert(address.to_string(), pool.clone());
        Ok(pool)
    }
}

/// An error with its causes (a TLS failure's reason is the driver
/// error's source: "invalid peer certificate: UnknownIssuer").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        cause = c.source();
    }
    out
}

/// A connection URL's settings. libpq's `sslmode=verify-ca` and
/// `verify-full`, which tokio-postgres does not parse, mean `require` here:
/// `require` verifies the certificate and the host name.
fn parse_config(address: &str) -> Result<tokio_postgres::Config, String> {
    let normalized =
        address.replace("sslmode=verify-full", "sslmode=require").replace("sslmode=verify-ca", "sslmode=require");
    tokio_postgres::Config::from_str(&normalized).map_err(|e| format!("invalid address: {e}"))
}

/// `postgres://host:port` of a connection URL, as `allowed_outbound_hosts`
/// names it (port 5432 when the URL has none).
pub fn host_of(address: &str) -> Result<String, String> {
    let config = parse_config(address)?;
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

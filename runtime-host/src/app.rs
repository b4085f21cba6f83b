//! Loading the app: read the manifest, compose each triggered component (HTTP
//! routes, cron schedules) with its dependencies, compile (or load from
//! cache), link the host capabilities and pre-instantiate, ready for one
//! fresh instance per request or tick.

use crate::app_manifest::AppManifest;
use crate::engine;
use crate::llm::LlmCapability;
use crate::spin_bindings::derive::DeriveExportsPre;
use crate::sqlite::SqliteCapability;
use crate::state::RequestState;
use crate::variables::{AppVariables, ComponentVariables};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, InstancePre, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// A component ready to serve requests or ticks.
pub struct Handler {
    pub id: String,
    /// Present when the component exports `wasi:http/incoming-handler`.
    pub proxy: Option<ProxyPre<RequestState>>,
    /// Present when it exports `cairn:derive/derive` and `handle-cron-event`.
    pub derive: Option<DeriveExportsPre<RequestState>>,
    pub sqlite_databases: Vec<String>,
    /// `postgres://host:port` addresses the component may open.
    pub postgres_hosts: Arc<Vec<String>>,
    pub variables: ComponentVariables,
    pub ai_models: Arc<Vec<String>>,
    /// Background for the derivation component (see [`Priority`]).
    pub priority: crate::state::Priority,
}

/// Operator settings that shape how requests run.
#[derive(Debug, Clone)]
pub struct RunLimits {
    pub request_timeout: Duration,
    pub max_memory_bytes: usize,
}

pub struct App {
    pub engine: Engine,
    pub manifest: AppManifest,
    pub handlers: HashMap<String, Handler>,
    pub sqlite: SqliteCapability,
    pub postgres: Arc<crate::postgres::PostgresCapability>,
    pub llm: Arc<LlmCapability>,
    pub limits: RunLimits,
    /// The app's resolved variables (the host reads a few itself, e.g.
    /// `memory_auth_mode` before it listens).
    pub variables: AppVariables,
    /// Per-tenant runtime caps from the tier profiles.
    pub tenant_limits: crate::tenant_limits::TenantLimits,
    /// Request telemetry and recall audit rows, written off the request path.
    pub bookkeeping: crate::batch_writer::BatchWriter,
    /// The database the host reads and writes itself (the components' own).
    pub host_db: crate::host_db::HostDb,
    /// Every request's split (time in SQLite, waiting for the write lock,
    /// instantiating, embedding), summed.
    pub request_totals: crate::http_server::RequestCounters,
    /// Prometheus metrics (`GET /metrics`).
    pub metrics: crate::metrics::Metrics,
    /// Where guests run (`--guest-threads`).
    pub lanes: crate::lanes::Lanes,
}

/// Everything needed to load an app.
pub struct LoadOptions {
    pub manifest: AppManifest,
    pub variables: AppVariables,
    pub sqlite: SqliteCapability,
    pub postgres: Arc<crate::postgres::PostgresCapability>,
    pub llm: Arc<LlmCapability>,
    pub cache_dir: Option<PathBuf>,
    pub pool: engine::PoolLimits,
    pub limits: RunLimits,
    /// Worker threads of the guest lane (0: none).
    pub guest_threads: usize,
}

/// The linker with every host capability a Cairn component may import.
pub fn linker(engine: &Engine) -> Result<Linker<RequestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::spin_bindings::sqlite::add_to_linker::<RequestState, HasSelf<RequestState>>(&mut linker, |s| s)?;
    crate::spin_bindings::postgres::add_to_linker::<RequestState, HasSelf<RequestState>>(&mut linker, |s| s)?;
    crate::spin_bindings::variables::add_to_linker::<RequestState, HasSelf<RequestState>>(&mut linker, |s| s)?;
    crate::spin_bindings::llm::add_to_linker::<RequestState, HasSelf<RequestState>>(&mut linker, |s| s)?;
    Ok(linker)
}

impl App {
    /// The component that exports the derivation verbs (the cron target).
    pub fn derive_handler(&self) -> Result<&Handler> {
        let mut ids: Vec<&String> = self.handlers.keys().collect();
        ids.sort();
        ids.into_iter()
            .map(|id| &self.handlers[id])
            .find(|h| h.derive.is_some())
            .context("no component exports cairn:derive/derive (is the derive component on a trigger in the manifest?)")
    }

    pub fn load(opts: LoadOptions) -> Result<App> {
        let engine = engine::build(&opts.pool)?;
        engine::start_epoch_ticker(&engine);
        let linker = linker(&engine)?;
        let mut handlers = HashMap::new();
        let mut compiled = HashMap::new();
        let http: Vec<&str> = opts.manifest.http_routes.iter().map(|r| r.component.as_str()).collect();
        let cron: Vec<&str> = opts.manifest.cron.iter().map(|c| c.component.as_str()).collect();
        for id in http.iter().chain(&cron) {
            if handlers.contains_key(*id) {
                continue;
            }
            let decl = &opts.manifest.components[*id];
            let started = std::time::Instant::now();
            let bytes = crate::compose::compose(decl)?;
            // Two manifest components may run one wasm (derive and the
            // governance schedule): compiled once.
            let digest = cairn_core::digest::sha256_hex(&bytes);
            let component = match compiled.get(&digest) {
                Some(c) => wasmtime::component::Component::clone(c),
                None => {
                    let c = engine::load_component(&engine, &bytes, opts.cache_dir.as_deref())
                        .with_context(|| format!("compiling component '{}'", decl.id))?;
                    compiled.insert(digest, c.clone());
                    c
                }
            };
            let pre: InstancePre<RequestState> = linker.instantiate_pre(&component).map_err(|e| {
                anyhow::Error::from(e).context(format!(
                    "linking component '{}' (does it import something the host does not provide?)",
                    decl.id
                ))
            })?;
            let proxy = match ProxyPre::new(pre.clone()) {
                Ok(p) => Some(p),
                Err(e) if http.contains(id) => {
                    return Err(anyhow::Error::from(e)
                        .context(format!("component '{}' does not export wasi:http/incoming-handler", decl.id)));
                }
                Err(_) => None,
            };
            let derive = match DeriveExportsPre::new(pre) {
                Ok(d) => Some(d),
                Err(e) if cron.contains(id) => {
                    return Err(anyhow::Error::from(e).context(format!(
                        "component '{}' is on a cron trigger but does not export handle-cron-event (fermyon:spin-cron@2.0.0)",
                        decl.id
                    )));
                }
                Err(_) => None,
            };
            tracing::info!(
                component = %decl.id,
                dependencies = decl.dependencies.len(),
                bytes = bytes.len(),
                http = proxy.is_some(),
                derive = derive.is_some(),
                ms = started.elapsed().as_millis() as u64,
                "component ready"
            );
            handlers.insert(
                decl.id.clone(),
                Handler {
                    id: decl.id.clone(),
                    proxy,
                    priority: if derive.is_some() {
                        crate::state::Priority::Background
                    } else {
                        crate::state::Priority::Foreground
                    },
                    derive,
                    sqlite_databases: decl.sqlite_databases.clone(),
                    postgres_hosts: Arc::new(decl.postgres_hosts(|t| opts.variables.expand(t))?),
                    variables: opts.variables.for_component(decl)?,
                    ai_models: Arc::new(decl.ai_models.clone()),
                },
            );
        }
        let postgres = opts.postgres.clone();
        let host_db = match opts.variables.get("database_url").map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => crate::host_db::HostDb::Postgres { capability: postgres.clone(), url: url.to_string() },
            None => crate::host_db::HostDb::Sqlite(opts.sqlite.clone()),
        };
        Ok(App {
            engine,
            manifest: opts.manifest,
            handlers,
            bookkeeping: crate::batch_writer::BatchWriter::start(host_db.clone()),
            host_db,
            metrics: crate::metrics::Metrics::new(env!("CARGO_PKG_VERSION"), &opts.llm.embedder.label()),
            sqlite: opts.sqlite,
            postgres,
            llm: opts.llm,
            limits: opts.limits,
            tenant_limits: crate::tenant_limits::TenantLimits::from_variables(&opts.variables),
            variables: opts.variables,
            request_totals: Default::default(),
            lanes: crate::lanes::Lanes::new(opts.guest_threads)?,
        })
    }

    /// A fresh store for one request to `handler`, counting its database
    /// work into `stats`.
    pub fn new_store(&self, handler: &Handler, stats: &crate::state::RequestStats) -> wasmtime::Store<RequestState> {
        self.new_store_with(handler, stats, &self.limits)
    }

    /// A fresh store under `limits` (a tenant's runtime caps).
    pub fn new_store_with(
        &self,
        handler: &Handler,
        stats: &crate::state::RequestStats,
        limits: &RunLimits,
    ) -> wasmtime::Store<RequestState> {
        let state = RequestState::new(
            self.sqlite.instance(&handler.sqlite_databases, stats.db.clone(), handler.priority),
            crate::postgres::InstanceState {
                capability: self.postgres.clone(),
                allowed: handler.postgres_hosts.clone(),
                stats: stats.db.clone(),
            },
            handler.variables.clone(),
            crate::llm::InstanceState {
                capability: self.llm.clone(),
                allowed_models: handler.ai_models.clone(),
                stats: stats.embed.clone(),
                priority: handler.priority,
            },
            limits.max_memory_bytes,
        );
        let mut store = wasmtime::Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let ticks = (limits.request_timeout.as_millis() / engine::EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }
}

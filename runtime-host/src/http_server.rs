//! Serving HTTP with hyper and `wasmtime-wasi-http`: each request gets a
//! fresh instance of the component its route names (pre-instantiated, from
//! the pool), one log line when its response head is ready, and a JSON
//! error envelope when the guest fails. On shutdown the listener closes and
//! in-flight requests are allowed to finish.

use crate::app::App;
use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Header the gateway sets so the host can log the tenant; never sent out.
const TENANT_HEADER: &str = "x-cairn-tenant";
/// Characters of an API key the control plane keeps as its public prefix.
const KEY_PREFIX_LEN: usize = 14;

fn json_body(status: u16, code: &str, message: &str, request_id: &str) -> hyper::Response<HyperOutgoingBody> {
    let body = serde_json::json!({"error": code, "message": message}).to_string();
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-request-id", request_id)
        .body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync())
        .expect("static response parts are valid")
}

fn incoming_request_id(req: &hyper::Request<Incoming>) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .unwrap_or_else(|| "-".to_string())
}

/// Sums over every request served, for benches (and, later, metrics):
/// each request's log-line split, added up.
#[derive(Default, Debug)]
pub struct RequestCounters {
    requests: AtomicU64,
    latency_us: AtomicU64,
    db_us: AtomicU64,
    lock_wait_us: AtomicU64,
    instantiate_us: AtomicU64,
    embed_us: AtomicU64,
    embed_cache_misses: AtomicU64,
}

/// A reading of [`RequestCounters`].
#[derive(Default, Debug, Clone, Copy)]
pub struct RequestTotals {
    pub requests: u64,
    pub latency_us: u64,
    pub db_us: u64,
    pub lock_wait_us: u64,
    pub instantiate_us: u64,
    pub embed_us: u64,
    pub embed_cache_misses: u64,
}

impl RequestTotals {
    /// What happened between `earlier` and this reading.
    pub fn minus(&self, earlier: &RequestTotals) -> RequestTotals {
        RequestTotals {
            requests: self.requests - earlier.requests,
            latency_us: self.latency_us - earlier.latency_us,
            db_us: self.db_us - earlier.db_us,
            lock_wait_us: self.lock_wait_us - earlier.lock_wait_us,
            instantiate_us: self.instantiate_us - earlier.instantiate_us,
            embed_us: self.embed_us - earlier.embed_us,
            embed_cache_misses: self.embed_cache_misses - earlier.embed_cache_misses,
        }
    }
}

impl RequestCounters {
    fn add(&self, s: &crate::state::RequestStats, latency_us: u64) {
        self.requests.fetch_add(1, Relaxed);
        self.latency_us.fetch_add(latency_us, Relaxed);
        self.db_us.fetch_add(s.db.micros.load(Relaxed), Relaxed);
        self.lock_wait_us.fetch_add(s.db.lock_wait_us.load(Relaxed), Relaxed);
        self.instantiate_us.fetch_add(s.db.instantiate_us.load(Relaxed), Relaxed);
        self.embed_us.fetch_add(s.embed.micros.load(Relaxed), Relaxed);
        self.embed_cache_misses.fetch_add(s.embed.cache_misses.load(Relaxed), Relaxed);
    }

    pub fn snapshot(&self) -> RequestTotals {
        RequestTotals {
            requests: self.requests.load(Relaxed),
            latency_us: self.latency_us.load(Relaxed),
            db_us: self.db_us.load(Relaxed),
            lock_wait_us: self.lock_wait_us.load(Relaxed),
            instantiate_us: self.instantiate_us.load(Relaxed),
            embed_us: self.embed_us.load(Relaxed),
            embed_cache_misses: self.embed_cache_misses.load(Relaxed),
        }
    }
}

/// Handles one request end to end.
pub async fn handle(app: Arc<App>, req: hyper::Request<Incoming>) -> Result<hyper::Response<HyperOutgoingBody>> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let fallback_rid = incoming_request_id(&req);
    // The routes the host answers itself, ahead of the components: one list
    // (`HOST_ROUTES`), which the OpenAPI test holds docs/openapi.yaml to.
    match host_route(&path) {
        Some("/metrics") => return Ok(metrics_response(&app, &req, &fallback_rid).await),
        Some(_) if crate::console::is_console(&path) => return Ok(crate::console::response(req.method(), &path)),
        _ => {}
    }
    // The API key's public prefix (the control plane's 14 characters) for
    // the telemetry row's key-usage view; never the key itself.
    let key_prefix = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| k.len() >= KEY_PREFIX_LEN)
        .and_then(|k| k.get(..KEY_PREFIX_LEN))
        .map(str::to_string);
    let stats = crate::state::RequestStats::default();
    let mut resp = match dispatch(&app, req, &path, &stats).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(%method, %path, request_id = %fallback_rid, error = format!("{e:#}"), "request failed in the host");
            json_body(500, "internal_error", "internal error", &fallback_rid)
        }
    };
    // One reading for the telemetry row, the totals and the log line.
    let elapsed = started.elapsed();
    let tenant = resp.headers_mut().remove(TENANT_HEADER);
    if let http::header::Entry::Occupied(rows) = resp.headers_mut().entry(crate::recall_audit::HEADER) {
        for value in rows.remove_entry_mult().1 {
            match crate::recall_audit::Row::from_header(value.as_bytes()) {
                Some(row) => app.bookkeeping.recall_audit(row),
                None => tracing::warn!("a recall audit header the host cannot read; dropped"),
            }
        }
    }
    let tenant_id = tenant.as_ref().and_then(|t| t.to_str().ok()).filter(|t| *t != "-").unwrap_or("default");
    if let Some(endpoint) = crate::telemetry::endpoint_of(&path) {
        app.bookkeeping.telemetry(crate::telemetry::Row {
            tenant_id: tenant_id.to_string(),
            endpoint,
            status: resp.status().as_u16(),
            latency_ms: elapsed.as_secs_f64() * 1000.0,
            request_id: resp
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(&fallback_rid)
                .to_string(),
            api_key_prefix: key_prefix,
            created_at: cairn_core::time_fmt::rfc3339_millis(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0),
            ),
        });
    }
    let rid = resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or(&fallback_rid).to_string();
    app.request_totals.add(&stats, elapsed.as_micros() as u64);
    let metrics_tenant = if app.metrics.enabled { app.tenant_limits.metrics_tenant(tenant_id) } else { String::new() };
    app.metrics.request(&crate::metrics::Observed {
        tenant: &metrics_tenant,
        endpoint: crate::metrics::endpoint_class(&path),
        status: resp.status().as_u16(),
        seconds: elapsed.as_secs_f64(),
        instantiate_seconds: stats.db.instantiate_us.load(Relaxed) as f64 / 1e6,
        sqlite_seconds: stats.db.micros.load(Relaxed) as f64 / 1e6,
        postgres_seconds: stats.db.postgres_us.load(Relaxed) as f64 / 1e6,
    });
    app.metrics.embedder(
        stats.embed.calls.load(Relaxed),
        stats.embed.micros.load(Relaxed) as f64 / 1e6,
        stats.embed.cache_hits.load(Relaxed),
    );
    tracing::info!(
        target: "cairn::request",
        %method,
        %path,
        status = resp.status().as_u16(),
        latency_us = elapsed.as_micros() as u64,
        db_us = stats.db.micros.load(Relaxed),
        postgres_us = stats.db.postgres_us.load(Relaxed),
        db_statements = stats.db.statements.load(Relaxed),
        lock_wait_us = stats.db.lock_wait_us.load(Relaxed),
        instantiate_us = stats.db.instantiate_us.load(Relaxed),
        embed_us = stats.embed.micros.load(Relaxed),
        embed_cache_hits = stats.embed.cache_hits.load(Relaxed),
        embed_cache_misses = stats.embed.cache_misses.load(Relaxed),
        tenant = tenant.as_ref().and_then(|t| t.to_str().ok()).unwrap_or("-"),
        request_id = %rid,
    );
    Ok(resp)
}

/// The template of the [`HOST_ROUTES`](cairn_core::path_template::HOST_ROUTES)
/// entry `path` fits: `/metrics`, or one of the console's.
fn host_route(path: &str) -> Option<&'static str> {
    cairn_core::path_template::HOST_ROUTES
        .iter()
        .map(|(_, template)| *template)
        .find(|t| cairn_core::path_template::match_path_template(t, path).is_some())
}

/// `GET /metrics`: the OpenMetrics exposition, for `Authorization: Bearer
/// <metrics_token>` (else the admin token); 503 when neither is set.
async fn metrics_response(
    app: &Arc<App>,
    req: &hyper::Request<Incoming>,
    rid: &str,
) -> hyper::Response<HyperOutgoingBody> {
    if req.method() != hyper::Method::GET {
        return json_body(405, "method_not_allowed", "GET /metrics only", rid);
    }
    if !app.metrics.enabled {
        return json_body(503, "metrics_disabled", "metrics are off on this server (CAIRN_METRICS=0)", rid);
    }
    let token = app
        .variables
        .get("metrics_token")
        .filter(|t| !t.trim().is_empty())
        .or_else(|| app.variables.get("admin_token"))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let presented = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Err(e) = cairn_core::admin_token::check(token, presented) {
        let (code, message) = if e.status == 503 {
            ("metrics_not_configured", "set the metrics_token variable (or an admin token) to scrape /metrics")
        } else {
            ("unauthorized_metrics", "GET /metrics needs Authorization: Bearer <metrics_token or admin token>")
        };
        return json_body(e.status, code, message, rid);
    }
    // The derivation backlog, read now (a component call: one query).
    match crate::derive_calls::call_ok(app, crate::derive_calls::Verb::OutboxStatus(vec![("limit".into(), "1".into())]), rid)
        .await
    {
        Ok(s) => app.metrics.outbox(&s, |t| app.tenant_limits.metrics_tenant(t)),
        Err(e) => tracing::warn!(error = format!("{e:#}"), "metrics: reading the outbox backlog failed"),
    }
    hyper::Response::builder()
        .status(200)
        .header("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
        .header("x-request-id", rid)
        .body(Full::new(Bytes::from(app.metrics.encode())).map_err(|never| match never {}).boxed_unsync())
        .expect("static response parts are valid")
}

async fn dispatch(
    app: &Arc<App>,
    req: hyper::Request<Incoming>,
    path: &str,
    stats: &crate::state::RequestStats,
) -> Result<hyper::Response<HyperOutgoingBody>> {
    let rid = incoming_request_id(&req);
    let Some(route) = app.manifest.route_for(path) else {
        return Ok(json_body(404, "not_found", "no route", &rid));
    };
    let handler = &app.handlers[&route.component];
    let limits = app.tenant_limits.for_request(&app.host_db, path, req.headers(), &app.limits).await;
    let mut store = app.new_store_with(handler, stats, &limits);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let wreq = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
    let out = store.data_mut().http().new_response_outparam(sender)?;
    let pre = handler.proxy.clone().expect("HTTP-routed components export incoming-handler (checked at load)");
    let component = handler.id.clone();
    let stats2 = stats.db.clone();
    let run = async move {
        let t = Instant::now();
        let proxy = pre.instantiate_async(&mut store).await?;
        stats2.instantiate_us.store(t.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        proxy.wasi_http_incoming_handler().call_handle(&mut store, wreq, out).await
    };
    let task = app.lanes.spawn_request(path, run);
    match receiver.await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(code)) => {
            tracing::error!(%component, error = ?code, request_id = %rid, "guest returned an HTTP error code");
            Ok(json_body(500, "internal_error", "internal error", &rid))
        }
        Err(_) => {
            let reason = match task.await {
                Ok(Ok(())) => "the component did not produce a response".to_string(),
                Ok(Err(e)) => format!("{e:?}"),
                Err(e) => e.to_string(),
            };
            let timed_out = reason.contains("interrupt");
            let out_of_memory = reason.contains("memory");
            tracing::error!(%component, request_id = %rid, error = %reason, "component failed");
            if timed_out {
                Ok(json_body(503, "request_timeout", "the request exceeded its time limit", &rid))
            } else if out_of_memory {
                Ok(json_body(503, "request_memory_exceeded", "the request exceeded its memory limit", &rid))
            } else {
                Ok(json_body(500, "internal_error", "internal error", &rid))
            }
        }
    }
}

/// Serves until `shutdown` resolves, then stops accepting and waits up to
/// `drain` for in-flight requests.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
    drain: Duration,
) -> Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer): (tokio::net::TcpStream, SocketAddr) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let conn = http1::Builder::new().keep_alive(true).serve_connection(
                    TokioIo::new(stream),
                    hyper::service::service_fn(move |req| handle(app.clone(), req)),
                );
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection closed with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, waiting for in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all requests finished"),
        _ = tokio::time::sleep(drain) => tracing::warn!(seconds = drain.as_secs(), "drain timeout; exiting with requests in flight"),
    }
    Ok(())
}

//! The metrics capability: Prometheus metrics of the host (`GET /metrics`,
//! OpenMetrics text from `prometheus-client`), behind a bearer token —
//! the `metrics_token` variable, else the admin token.
//!
//! What is counted: every request by tenant, endpoint class and status
//! class, its latency (histogram), time instantiating and in SQLite;
//! embedder calls and latency, query-cache hits; quota denials (429) by
//! tenant; derivation jobs by kind and state and the oldest pending job's
//! age, and each tenant label's backlog and oldest pending age (read from
//! the outbox at scrape time); build info.
//!
//! Label cardinality is bounded by the tier profiles: a tenant gets its own
//! `tenant` label only when its tier's `observability` is tenant-level
//! (`tenant...` or `per_contract`); every other tenant is counted under
//! `tenant="_service"`. Endpoint and status labels are small fixed sets.
//!
//! `CAIRN_METRICS=0` turns recording off (and `/metrics` answers 503), so
//! the cost on the request path can be measured A/B in one binary.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The `tenant` label of tenants without their own.
pub const AGGREGATE_TENANT: &str = "_service";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub tenant: String,
    pub endpoint: String,
    pub status_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub tenant: String,
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub kind: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    embedder: String,
}

type Seconds = Counter<f64, AtomicU64>;

/// Latency buckets: 0.5 ms doubling to ~16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

pub struct Metrics {
    /// False with `CAIRN_METRICS=0`: nothing is recorded.
    pub enabled: bool,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    instantiate: Family<EndpointLabels, Seconds>,
    sqlite: Family<EndpointLabels, Seconds>,
    postgres: Family<EndpointLabels, Seconds>,
    quota_denied: Family<TenantLabels, Counter>,
    embed_calls: Counter,
    embed_latency: Histogram,
    embed_cache_hits: Counter,
    outbox_jobs: Family<JobLabels, Gauge>,
    outbox_oldest_age: Gauge,
    outbox_tenant_backlog: Family<TenantLabels, Gauge>,
    outbox_tenant_oldest_age: Family<TenantLabels, Gauge>,
}

/// One request, as the host saw it.
pub struct Observed<'a> {
    pub tenant: &'a str,
    pub endpoint: &'a str,
    pub status: u16,
    pub seconds: f64,
    pub instantiate_seconds: f64,
    pub sqlite_seconds: f64,
    pub postgres_seconds: f64,
}

impl Metrics {
    pub fn new(version: &str, embedder: &str) -> Metrics {
        let mut registry = Registry::with_prefix("cairn");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "Requests by tenant, endpoint class and status class", requests.clone());
        let latency: Family<EndpointLabels, Histogram> = Family::new_with_constructor(latency_histogram);
        registry.register("http_request_duration_seconds", "Request latency, as the host measured it", latency.clone());
        let instantiate = Family::<EndpointLabels, Seconds>::default();
        registry.register(
            "instantiate_seconds",
            "Time spent instantiating components for requests",
            instantiate.clone(),
        );
        let sqlite = Family::<EndpointLabels, Seconds>::default();
        registry.register("sqlite_seconds", "Time requests spent in SQLite statements", sqlite.clone());
        let postgres = Family::<EndpointLabels, Seconds>::default();
        registry.register("postgres_seconds", "Time requests spent in PostgreSQL statements", postgres.clone());
        let quota_denied = Family::<TenantLabels, Counter>::default();
        // A zero series from the start, so alert expressions over it have data.
        drop(quota_denied.get_or_create(&TenantLabels { tenant: AGGREGATE_TENANT.into() }));
        registry.register("quota_denials", "Requests refused by a tenant quota (429)", quota_denied.clone());
        let embed_calls = Counter::default();
        registry.register("embedder_calls", "Calls to the embedder (cache misses and batches)", embed_calls.clone());
        let embed_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register("embedder_call_duration_seconds", "Embedder call latency", embed_latency.clone());
        let embed_cache_hits = Counter::default();
        registry.register("embedder_cache_hits", "Query embeddings served from the cache", embed_cache_hits.clone());
        let outbox_jobs = Family::<JobLabels, Gauge>::default();
        registry.register(
            "outbox_jobs",
            "Derivation jobs by kind and state (pending, retrying, dead_letter, done), read at scrape time",
            outbox_jobs.clone(),
        );
        let outbox_oldest_age = Gauge::default();
        registry.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest pending derivation job, read at scrape time",
            outbox_oldest_age.clone(),
        );
        let outbox_tenant_backlog = Family::<TenantLabels, Gauge>::default();
        registry.register(
            "outbox_tenant_backlog_jobs",
            "Derivation jobs not done (pending, retrying, dead_letter) per tenant label, read at scrape time",
            outbox_tenant_backlog.clone(),
        );
        let outbox_tenant_oldest_age = Family::<TenantLabels, Gauge>::default();
        registry.register(
            "outbox_tenant_oldest_pending_age_seconds",
            "Age of the tenant label's oldest pending derivation job, read at scrape time",
            outbox_tenant_oldest_age.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { version: version.into(), embedder: embedder.into() }).set(1);
        registry.register("build_info", "The cairn build serving", build);
        Metrics {
            enabled: !std::env::var("CAIRN_METRICS").is_ok_and(|v| v == "0"),
            registry,
            requests,
            latency,
            instantiate,
            sqlite,
            postgres,
            quota_denied,
            embed_calls,
            embed_latency,
            embed_cache_hits,
            outbox_jobs,
            outbox_oldest_age,
            outbox_tenant_backlog,
            outbox_tenant_oldest_age,
        }
    }

    /// Records one request.
    pub fn request(&self, o: &Observed) {
        if !self.enabled {
            return;
        }
        let class = match o.status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let (tenant, endpoint) = (o.tenant.to_string(), o.endpoint.to_string());
        self.requests
            .get_or_create(&RequestLabels {
                tenant: tenant.clone(),
                endpoint: endpoint.clone(),
                status_class: class.into(),
            })
            .inc();
        let e = EndpointLabels { tenant: tenant.clone(), endpoint };
        self.latency.get_or_create(&e).observe(o.seconds);
        self.instantiate.get_or_create(&e).inc_by(o.instantiate_seconds);
        self.sqlite.get_or_create(&e).inc_by(o.sqlite_seconds);
        if o.postgres_seconds > 0.0 {
            self.postgres.get_or_create(&e).inc_by(o.postgres_seconds);
        }
        if o.status == 429 {
            self.quota_denied.get_or_create(&TenantLabels { tenant }).inc();
        }
    }

    /// Records a request's embedder use.
    pub fn embedder(&self, calls: u64, seconds: f64, cache_hits: u64) {
        if !self.enabled {
            return;
        }
        if calls > 0 {
            self.embed_calls.inc_by(calls);
            self.embed_latency.observe(seconds / calls as f64);
        }
        if cache_hits > 0 {
            self.embed_cache_hits.inc_by(cache_hits);
        }
    }

    /// Sets the scrape-time derivation gauges from `GET
    /// /v1/admin/control/outbox`'s answer (`by_event_type`, the oldest age,
    /// `by_tenant`); `label_of` maps a tenant to its metrics label.
    pub fn outbox(&self, status: &serde_json::Value, label_of: impl Fn(&str) -> String) {
        for k in status["by_event_type"].as_array().into_iter().flatten() {
            let kind = k["event_type"].as_str().unwrap_or("unknown").to_string();
            for state in ["pending", "retrying", "dead_letter", "done"] {
                let n = k[state].as_i64().unwrap_or(0);
                self.outbox_jobs.get_or_create(&JobLabels { kind: kind.clone(), state: state.into() }).set(n);
            }
        }
        self.outbox_oldest_age.set(status["outbox"]["oldest_pending_age_sec"].as_i64().unwrap_or(0));
        // Per tenant label (`label_of` bounds the cardinality as for
        // requests): sums of the backlog, the oldest age. Cleared first so a
        // drained tenant's series goes away rather than staying stale.
        let mut per: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
        for t in status["by_tenant"].as_array().into_iter().flatten() {
            let e = per.entry(label_of(t["tenant_id"].as_str().unwrap_or_default())).or_default();
            e.0 += ["pending", "retrying", "dead_letter"].iter().map(|k| t[*k].as_i64().unwrap_or(0)).sum::<i64>();
            e.1 = e.1.max(t["oldest_pending_age_sec"].as_i64().unwrap_or(0));
        }
        self.outbox_tenant_backlog.clear();
        self.outbox_tenant_oldest_age.clear();
        for (tenant, (backlog, age)) in per {
            self.outbox_tenant_backlog.get_or_create(&TenantLabels { tenant: tenant.clone() }).set(backlog);
            self.outbox_tenant_oldest_age.get_or_create(&TenantLabels { tenant }).set(age);
        }
    }

    /// The exposition (OpenMetrics text).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// The endpoint class a path is counted under (a small fixed set).
pub fn endpoint_class(path: &str) -> &'static str {
    if let Some(e) = crate::telemetry::endpoint_of(path) {
        return e;
    }
    if path.starts_with("/v1/memory/rules") || path.starts_with("/v1/memory/tools") {
        "policy"
    } else if path.starts_with("/v1/memory/") {
        "memory_other"
    } else if path.starts_with("/v1/admin/") {
        "admin"
    } else if path == "/health" {
        "health"
    } else {
        "other"
    }
}

/// Whether a tier's `observability` gives its tenants their own label.
pub fn tenant_level(observability: Option<&str>) -> bool {
    observability.is_some_and(|o| o.starts_with("tenant") || o == "per_contract")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_class_and_429s_as_quota_denials() {
        let m = Metrics::new("0.1.0", "lexical");
        let o = |status, endpoint| Observed {
            tenant: "acme",
            endpoint,
            status,
            seconds: 0.002,
            instantiate_seconds: 0.0001,
            sqlite_seconds: 0.0005,
            postgres_seconds: 0.0,
        };
        m.request(&o(200, "write"));
        m.request(&o(200, "write"));
        m.request(&o(429, "write"));
        m.request(&o(503, "recall"));
        let text = m.encode();
        assert!(
            text.contains("cairn_http_requests_total{tenant=\"acme\",endpoint=\"write\",status_class=\"2xx\"} 2"),
            "{text}"
        );
        assert!(text.contains("cairn_http_requests_total{tenant=\"acme\",endpoint=\"write\",status_class=\"4xx\"} 1"));
        assert!(text.contains("cairn_http_requests_total{tenant=\"acme\",endpoint=\"recall\",status_class=\"5xx\"} 1"));
        assert!(text.contains("cairn_quota_denials_total{tenant=\"acme\"} 1"));
        assert!(text.contains("cairn_http_request_duration_seconds_count{tenant=\"acme\",endpoint=\"write\"} 3"));
        assert!(text.contains("cairn_build_info{version=\"0.1.0\",embedder=\"lexical\"} 1"));
        assert!(text.trim_end().ends_with("# EOF"));
    }

    #[test]
    fn tenant_backlog_is_folded_by_label_and_drained_tenants_disappear() {
        let m = Metrics::new("0.1.0", "lexical");
        let status = |rows: serde_json::Value| serde_json::json!({"outbox": {}, "by_tenant": rows});
        // acme has its own label; beta and gamma are counted under _service.
        let label = |t: &str| if t == "acme" { t.to_string() } else { AGGREGATE_TENANT.to_string() };
        m.outbox(
            &status(serde_json::json!([
                {"tenant_id": "acme", "pending": 3, "retrying": 1, "dead_letter": 2, "oldest_pending_age_sec": 40},
                {"tenant_id": "beta", "pending": 5, "retrying": 0, "dead_letter": 0, "oldest_pending_age_sec": 7},
                {"tenant_id": "gamma", "pending": 1, "retrying": 0, "dead_letter": 1, "oldest_pending_age_sec": 90},
            ])),
            label,
        );
        let text = m.encode();
        assert!(text.contains("cairn_outbox_tenant_backlog_jobs{tenant=\"acme\"} 6"), "{text}");
        assert!(text.contains("cairn_outbox_tenant_backlog_jobs{tenant=\"_service\"} 7"), "{text}");
        assert!(text.contains("cairn_outbox_tenant_oldest_pending_age_seconds{tenant=\"_service\"} 90"), "{text}");
        m.outbox(&status(serde_json::json!([])), label);
        assert!(!m.encode().contains("cairn_outbox_tenant_backlog_jobs{"), "a drained backlog leaves no series");
    }

    #[test]
    fn classes_and_granularity() {
        assert_eq!(endpoint_class("/v1/memory/write"), "write");
        assert_eq!(endpoint_class("/v1/memory/tools/select"), "policy");
        assert_eq!(endpoint_class("/v1/memory/commits"), "memory_other");
        assert_eq!(endpoint_class("/v1/admin/control/tenants"), "admin");
        assert_eq!(endpoint_class("/health"), "health");
        assert_eq!(endpoint_class("/nope"), "other");
        assert!(
            tenant_level(Some("tenant"))
                && tenant_level(Some("tenant_and_contract_slo"))
                && tenant_level(Some("per_contract"))
        );
        assert!(!tenant_level(Some("service")) && !tenant_level(None));
    }
}

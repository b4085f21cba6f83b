//! `GET /metrics` after a known mix of requests: the counters and histogram
//! counts are exact, the exposition parses with a real Prometheus parser,
//! tenants get their own label only on tiers with tenant-level
//! observability, and scraping needs the token.

use cairn_e2e::{Options, Server, event_write};
use serde_json::json;

const TOKEN: &str = "metrics-test-admin-token";

fn scrape(s: &Server) -> prometheus_parse::Scrape {
    let r = s.get_with("/metrics", &[("authorization", &format!("Bearer {TOKEN}"))]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").unwrap().starts_with("application/openmetrics-text"));
    assert!(r.text.trim_end().ends_with("# EOF"), "{}", r.text);
    prometheus_parse::Scrape::parse(r.text.lines().map(|l| Ok(l.to_string()))).expect("the exposition parses")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.samples.iter().find_map(|s| {
        let matches = s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v));
        if !matches {
            return None;
        }
        match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(*v),
            prometheus_parse::Value::Histogram(buckets) => buckets.iter().map(|b| b.count).reduce(f64::max),
            _ => None,
        }
    })
}

/// Requests counted under `labels` for `cairn_http_requests_total`.
fn requests(scrape: &prometheus_parse::Scrape, tenant: &str, endpoint: &str, class: &str) -> f64 {
    value(scrape, "cairn_http_requests_total", &[("tenant", tenant), ("endpoint", endpoint), ("status_class", class)])
        .unwrap_or(0.0)
}

/// A histogram's observation count, however the parser groups it.
fn observations(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(scrape, &format!("{name}_count"), labels).or_else(|| value(scrape, name, labels)).unwrap_or(0.0)
}

#[test]
fn counters_and_histograms_are_exact_after_a_known_mix() {
    let s = Server::start_with(Options { admin_token: Some(TOKEN.into()), ..Default::default() });
    for i in 0..3 {
        assert_eq!(s.post("/v1/memory/write", &event_write(&format!("m{i}"), "a counted memory")).status, 200);
    }
    assert_eq!(s.post("/v1/memory/write", &json!({"nodes": "not a list"})).status, 400);
    for _ in 0..2 {
        assert_eq!(s.post("/v1/memory/find", &json!({"client_id": "m0"})).status, 200);
    }
    assert_eq!(s.post("/v1/memory/recall_text", &json!({"query_text": "counted memory"})).status, 200);

    let m = scrape(&s);
    // The default tier (solo) has service-level observability: no tenant label.
    let agg = "_service";
    assert_eq!(requests(&m, agg, "write", "2xx"), 3.0);
    assert_eq!(requests(&m, agg, "write", "4xx"), 1.0);
    assert_eq!(requests(&m, agg, "recall", "2xx"), 2.0);
    assert_eq!(requests(&m, agg, "recall_text", "2xx"), 1.0);
    assert_eq!(requests(&m, "default", "write", "2xx"), 0.0, "no per-tenant series on a service-level tier");
    let write = [("tenant", agg), ("endpoint", "write")];
    assert_eq!(observations(&m, "cairn_http_request_duration_seconds", &write), 4.0);
    let db_seconds = match cairn_e2e::backend() {
        cairn_e2e::Backend::Sqlite => "cairn_sqlite_seconds_total",
        cairn_e2e::Backend::Postgres => "cairn_postgres_seconds_total",
    };
    assert!(value(&m, db_seconds, &write).unwrap() > 0.0);
    assert!(value(&m, "cairn_instantiate_seconds_total", &write).unwrap() > 0.0);
    assert_eq!(value(&m, "cairn_build_info", &[("embedder", "local:lexical-hash-v2")]), Some(1.0));
    // The derivation backlog (cron is off in tests) as the outbox route tells it.
    let outbox = s.get_with("/v1/admin/control/outbox", &[("x-admin-token", TOKEN)]);
    let pending = outbox.body["outbox"]["pending"].as_f64().unwrap();
    assert!(pending >= 3.0, "{}", outbox.text);
    let kinds = outbox.body["by_event_type"].as_array().unwrap();
    assert!(!kinds.is_empty());
    let mut scraped = 0.0;
    for k in kinds {
        let kind = k["event_type"].as_str().unwrap();
        let v = value(&m, "cairn_outbox_jobs", &[("kind", kind), ("state", "pending")]).unwrap();
        assert_eq!(v, k["pending"].as_f64().unwrap(), "{kind}");
        scraped += v;
    }
    assert_eq!(scraped, pending, "the kinds add up to the backlog");
    // Scrapes are not counted themselves.
    let again = scrape(&s);
    assert_eq!(requests(&again, agg, "write", "2xx"), 3.0);
    assert_eq!(requests(&again, agg, "other", "2xx"), 0.0);
}

#[test]
fn tenant_level_tiers_get_their_own_label() {
    let s = Server::start_with(Options { admin_token: Some(TOKEN.into()), ..Default::default() });
    let admin = [("x-admin-token", TOKEN)];
    assert_eq!(s.post_with("/v1/admin/control/tenants", &json!({"tenant_id": "acme"}), &admin).status, 200);
    let p = s.post_with("/v1/admin/control/tenants/acme/provision", &json!({"tier": "growth"}), &admin);
    assert_eq!(p.status, 200, "{}", p.text);
    for i in 0..2 {
        let r = s.post_with(
            "/v1/memory/write",
            &event_write(&format!("a{i}"), "acme's memory"),
            &[("x-tenant-id", "acme")],
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let m = scrape(&s);
    assert_eq!(requests(&m, "acme", "write", "2xx"), 2.0, "growth has tenant-level observability");
    assert_eq!(requests(&m, "_service", "write", "2xx"), 0.0);
    // The backlog per tenant: acme's own series, matching the outbox route.
    let outbox = s.get_with("/v1/admin/control/outbox", &admin);
    let rows = outbox.body["by_tenant"].as_array().unwrap();
    let acme = rows.iter().find(|r| r["tenant_id"] == "acme").expect("acme's backlog is listed");
    let waiting = acme["pending"].as_f64().unwrap() + acme["retrying"].as_f64().unwrap();
    assert!(waiting >= 2.0, "{}", outbox.text);
    assert_eq!(value(&m, "cairn_outbox_tenant_backlog_jobs", &[("tenant", "acme")]), Some(waiting));
    assert!(value(&m, "cairn_outbox_tenant_oldest_pending_age_seconds", &[("tenant", "acme")]).is_some());
    assert_eq!(value(&m, "cairn_outbox_tenant_backlog_jobs", &[("tenant", "_service")]), None, "only acme has jobs");
}

#[test]
fn scraping_needs_the_token() {
    let s = Server::start_with(Options { admin_token: Some(TOKEN.into()), ..Default::default() });
    let r = s.get("/metrics");
    assert_eq!((r.status, r.body["error"].as_str()), (401, Some("unauthorized_metrics")), "{}", r.text);
    let r = s.get_with("/metrics", &[("authorization", "Bearer wrong")]);
    assert_eq!(r.status, 401);
    let r = s.post_with("/metrics", &json!({}), &[("authorization", &format!("Bearer {TOKEN}"))]);
    assert_eq!(r.status, 405);
    // Its own token, when set, replaces the admin token.
    let own = Server::start_with(Options {
        admin_token: Some(TOKEN.into()),
        extra_args: vec!["--var".into(), "metrics_token=scraper-token".into()],
        ..Default::default()
    });
    assert_eq!(own.get_with("/metrics", &[("authorization", "Bearer scraper-token")]).status, 200);
    assert_eq!(own.get_with("/metrics", &[("authorization", &format!("Bearer {TOKEN}"))]).status, 401);
    // Neither set: 503.
    let none = Server::start();
    let r = none.get("/metrics");
    assert_eq!((r.status, r.body["error"].as_str()), (503, Some("metrics_not_configured")), "{}", r.text);
}

/// deploy/prometheus/cairn-rules.yaml: well-formed rules over metrics this
/// server serves, each with a severity and a runbook section that exists.
#[test]
fn the_shipped_alerting_rules_use_served_metrics_and_existing_runbooks() {
    let root = cairn_e2e::repo_root();
    let text = std::fs::read_to_string(root.join("deploy/prometheus/cairn-rules.yaml")).unwrap();
    let doc: serde_json::Value = serde_norway::from_str(&text).expect("the rules file is YAML");
    let runbook = std::fs::read_to_string(root.join("docs/operations.md")).unwrap();
    // Served metric names (a scrape after one write, so every family has a sample).
    let s = Server::start_with(Options { admin_token: Some(TOKEN.into()), ..Default::default() });
    assert_eq!(s.post("/v1/memory/write", &event_write("r", "rules")).status, 200);
    let exposition = s.get_with("/metrics", &[("authorization", &format!("Bearer {TOKEN}"))]).text;
    let families: Vec<&str> =
        exposition.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
    let groups = doc["groups"].as_array().expect("groups");
    let mut alerts = 0;
    for g in groups {
        assert!(g["name"].is_string(), "{g}");
        for r in g["rules"].as_array().expect("rules") {
            alerts += 1;
            let name = r["alert"].as_str().expect("alert name");
            let expr = r["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "{name}: no expr");
            let for_ = r["for"].as_str().unwrap_or_default();
            assert!(for_.ends_with('m') && for_[..for_.len() - 1].parse::<u32>().is_ok(), "{name}: for {for_:?}");
            assert!(matches!(r["labels"]["severity"].as_str(), Some("warning" | "critical")), "{name}");
            assert!(r["annotations"]["summary"].as_str().is_some_and(|t| !t.is_empty()), "{name}");
            let url = r["annotations"]["runbook_url"].as_str().unwrap_or_default();
            let anchor = url.strip_prefix("docs/operations.md#").unwrap_or_else(|| panic!("{name}: {url}"));
            assert_eq!(anchor, format!("alert-{}", name.to_lowercase()), "{name}");
            assert!(runbook.contains(&format!("### Alert: {name}\n")), "{name}: no runbook section");
            // Every cairn_* metric the expression reads is served.
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(m) = word.strip_prefix("cairn_") {
                    let served = families.iter().any(|f| {
                        let f = f.strip_prefix("cairn_").unwrap_or(f);
                        m == f || m.strip_suffix("_total") == Some(f) || m.strip_suffix("_bucket") == Some(f)
                    });
                    assert!(served, "{name}: cairn_{m} is not served by /metrics");
                }
            }
        }
    }
    assert!(alerts >= 8, "{alerts} alerts");
}

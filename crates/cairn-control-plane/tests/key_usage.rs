//! Key usage on seeded telemetry: pages of (key, endpoint) rows through a
//! cursor that pins the snapshot and is bound to its route and tenant.

mod common;

use cairn_control_plane::{key_usage, timeseries};
use cairn_spin::native_sqlite::NativeSqlite;
use common::{Telemetry, ctx, q};

const T0: i64 = 1_800_000_000_000;

fn seed(db: &NativeSqlite, tenant: &str, key: &str, at_ms: i64, status: i64, latency_ms: f64) {
    let row = Telemetry { tenant, endpoint: "write", status, latency_ms, at_ms, key: Some(key) };
    common::seed(db, &row, 1);
}

#[test]
fn pages_follow_a_pinned_snapshot_and_a_spike_is_flagged() {
    let db = common::db(T0);
    // Three keys. k1: 7 requests a day over the baseline week (49), then 40
    // in the last hour — a spike (40 / 7 ≈ 5.7). k2, k3: a few requests.
    for d in 1..8 {
        for i in 0..7 {
            seed(&db, "acme", "cairn_k1aaaaaa", T0 - d * 86_400_000 - (i + 1) * 60_000, 200, 10.0);
        }
    }
    for i in 0..40 {
        seed(&db, "acme", "cairn_k1aaaaaa", T0 - 1000 - i * 1000, 200, 10.0);
    }
    seed(&db, "acme", "cairn_k2bbbbbb", T0 - 5000, 200, 12.0);
    seed(&db, "acme", "cairn_k3cccccc", T0 - 5000, 500, 12.0);
    seed(&db, "other", "cairn_k9zzzzzz", T0 - 5000, 200, 1.0);

    let all = key_usage::tenant(&db, &ctx(T0), "acme", &[]).unwrap();
    assert_eq!(all["page"]["total"], 3);
    assert_eq!(all["cursor"]["next"], serde_json::Value::Null);
    let k1 = &all["keys"][0];
    assert_eq!((k1["api_key_prefix"].as_str(), k1["recent"]["total"].as_i64()), (Some("cairn_k1aaaaaa"), Some(40)));
    assert_eq!(k1["baseline"]["total"], 49);
    assert_eq!(k1["anomaly"]["reasons"], serde_json::json!(["request_spike"]));
    assert_eq!(all["anomalies"]["count_in_page"], 1);

    let p1 = key_usage::tenant(&db, &ctx(T0), "acme", &q(&[("limit", "2")])).unwrap();
    assert_eq!((p1["keys"].as_array().unwrap().len(), p1["page"]["has_more"].as_bool()), (2, Some(true)));
    let cursor = p1["cursor"]["next"].as_str().unwrap().to_string();
    // A fourth key appears after the snapshot: page two still ends the set.
    seed(&db, "acme", "cairn_k0dddddd", T0 + 1000, 200, 5.0);
    let p2 = key_usage::tenant(&db, &ctx(T0 + 60_000), "acme", &q(&[("cursor", &cursor)])).unwrap();
    assert_eq!(p2["keys"].as_array().unwrap().len(), 1);
    assert_eq!(p2["keys"][0]["api_key_prefix"], "cairn_k3cccccc");
    assert_eq!((p2["page"]["total"].as_i64(), p2["page"]["offset"].as_i64()), (Some(3), Some(2)));
    assert_eq!(p2["snapshot"], p1["snapshot"]);

    // Bound to its route and tenant.
    let e = key_usage::tenant(&db, &ctx(T0), "other", &q(&[("cursor", &cursor)])).unwrap_err();
    assert_eq!((e.status, e.message.as_str()), (400, "cursor tenant mismatch"));
    let e = timeseries::tenant(&db, &ctx(T0), "acme", &q(&[("cursor", &cursor)])).unwrap_err();
    assert_eq!((e.status, e.message.as_str()), (400, "cursor kind mismatch: expected timeseries"));
}

#[test]
fn the_anomaly_job_pages_every_tenant_and_fails_only_when_strict() {
    let db = common::db(T0);
    // acme: one steady key and one failing key (3 of 4 recent requests 5xx
    // against a clean baseline); beta: a steady key.
    for tenant in ["acme", "beta"] {
        for d in 1..8 {
            seed(&db, tenant, &format!("cairn_{tenant}_ok__"), T0 - d * 86_400_000 - 60_000, 200, 10.0);
        }
        seed(&db, tenant, &format!("cairn_{tenant}_ok__"), T0 - 1000, 200, 10.0);
    }
    for d in 1..8 {
        seed(&db, "acme", "cairn_acme_bad_", T0 - d * 86_400_000 - 60_000, 200, 10.0);
    }
    for i in 0..4 {
        seed(&db, "acme", "cairn_acme_bad_", T0 - 1000 - i, if i == 0 { 200 } else { 500 }, 10.0);
    }
    let body = serde_json::json!({"min_requests": 2, "limit": 1});
    let r = key_usage::anomaly_report(&db, &ctx(T0), &body).unwrap();
    assert_eq!((r["tenants_checked"].as_i64(), r["keys_checked"].as_i64()), (Some(2), Some(3)), "{r}");
    assert_eq!(r["anomalies_count"], 1);
    let a = &r["anomalies"][0];
    assert_eq!((a["tenant_id"].as_str(), a["api_key_prefix"].as_str()), (Some("acme"), Some("cairn_acme_bad_")));
    assert!(a["reasons"].as_array().unwrap().contains(&serde_json::json!("error_budget_regression")), "{a}");
    assert_eq!((r["exit_code"].as_i64(), r["ok"].as_bool()), (Some(0), Some(true)));
    let strict =
        key_usage::anomaly_report(&db, &ctx(T0), &serde_json::json!({"min_requests": 2, "strict": true})).unwrap();
    assert_eq!((strict["exit_code"].as_i64(), strict["ok"].as_bool()), (Some(2), Some(false)));
    let one =
        key_usage::anomaly_report(&db, &ctx(T0), &serde_json::json!({"tenant_id": "beta", "min_requests": 2})).unwrap();
    assert_eq!((one["tenants_checked"].as_i64(), one["anomalies_count"].as_i64()), (Some(1), Some(0)));
    let bad = key_usage::anomaly_report(&db, &ctx(T0), &serde_json::json!({"zscore_threshold": 0.1})).unwrap_err();
    assert_eq!(bad.status, 400);
}

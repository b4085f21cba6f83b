//! The tenant timeseries on seeded telemetry: hourly buckets per endpoint,
//! newest first, error classes and percentiles exact, paging by a cursor
//! that pins its snapshot.

mod common;

use cairn_control_plane::admin::AdminCtx;
use cairn_control_plane::timeseries;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::native_sqlite::NativeSqlite;
use common::{Telemetry, q};
use serde_json::{Value, json};

// 20 minutes past a whole hour (1_800_000_000_000 ms is one): the rows of
// the last 20 minutes share a bucket, the hour before is the next.
const T0: i64 = 1_800_000_000_000 + 20 * 60_000;
const HOUR: i64 = 3_600_000;

fn seed(db: &NativeSqlite, tenant: &str, endpoint: &str, at_ms: i64, status: i64, latency_ms: f64) {
    common::seed(db, &Telemetry { tenant, endpoint, status, latency_ms, at_ms, key: None }, 1);
}

fn ctx() -> AdminCtx<'static> {
    common::ctx(T0)
}

#[test]
fn hourly_buckets_newest_first_with_exact_classes_and_a_stable_cursor() {
    let db = common::db(T0);
    // This hour: writes 10..100 ms, one 500, one 429, one 400.
    for (i, status) in [200, 200, 200, 200, 200, 200, 200, 500, 429, 400].iter().enumerate() {
        seed(&db, "acme", "write", T0 - 60_000 * i as i64, *status, 10.0 * (i + 1) as f64);
    }
    // The hour before: two recalls.
    seed(&db, "acme", "recall", T0 - HOUR, 200, 5.0);
    seed(&db, "acme", "recall", T0 - HOUR, 503, 7.0);
    // Another tenant, and a row from the future: never counted.
    seed(&db, "other", "write", T0 - 1000, 500, 1.0);
    seed(&db, "acme", "write", T0 + 5000, 200, 1.0);

    let r = timeseries::tenant(&db, &ctx(), "acme", &[]).unwrap();
    let series = r["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    let w = &series[0];
    assert_eq!(w["bucket_utc"], rfc3339_millis(T0 - 20 * 60_000));
    assert_eq!(w["endpoint"], "write");
    assert_eq!(
        (w["total"].as_i64(), w["server_errors"].as_i64(), w["throttled"].as_i64(), w["client_errors"].as_i64()),
        (Some(10), Some(1), Some(1), Some(1))
    );
    assert_eq!((w["error_budget_consumed"].as_i64(), w["error_rate"].as_f64()), (Some(2), Some(0.2)));
    // Latencies 10..100: nearest rank p50 = 60 (index round(4.5) = 5), p95 = 100, p99 = 100.
    assert_eq!((w["latency_p50_ms"].as_f64(), w["latency_p95_ms"].as_f64()), (Some(60.0), Some(100.0)));
    assert_eq!(series[1]["endpoint"], "recall");
    assert_eq!(series[1]["server_errors"], 1);
    let budget: Vec<&Value> = r["budget"].as_array().unwrap().iter().collect();
    assert_eq!(budget.len(), 2);
    assert_eq!(r["page"], json!({"limit": 5000, "offset": 0, "total": 2, "has_more": false}));
    assert_eq!(r["retention"]["truncated"], false);

    // One bucket a page: the cursor carries the snapshot to page two.
    let p1 = timeseries::tenant(&db, &ctx(), "acme", &q(&[("limit", "1")])).unwrap();
    assert_eq!(p1["page"]["has_more"], true);
    let cursor = p1["cursor"]["next"].as_str().unwrap().to_string();
    // A new row in this hour after the snapshot: the next page does not shift.
    let later = AdminCtx { now_ms: T0 + 10 * 60_000, ..ctx() };
    seed(&db, "acme", "recall_text", T0 + 60_000, 200, 3.0);
    let p2 = timeseries::tenant(&db, &later, "acme", &q(&[("cursor", &cursor)])).unwrap();
    assert_eq!(p2["series"][0]["endpoint"], "recall");
    assert_eq!((p2["page"]["total"].as_i64(), p2["page"]["has_more"].as_bool()), (Some(2), Some(false)));
    assert_eq!(p2["snapshot"], p1["snapshot"]);

    // Filters, retention and bad input.
    let f = timeseries::tenant(&db, &ctx(), "acme", &q(&[("endpoint", "recall")])).unwrap();
    assert_eq!(f["series"].as_array().unwrap().len(), 1);
    let long = timeseries::tenant(&db, &ctx(), "acme", &q(&[("window_hours", "2000")])).unwrap();
    assert_eq!((long["window_hours"].as_i64(), long["retention"]["truncated"].as_bool()), (Some(720), Some(true)));
    assert_eq!(timeseries::tenant(&db, &ctx(), "acme", &q(&[("endpoint", "nope")])).unwrap_err().status, 400);
    let e = timeseries::tenant(&db, &ctx(), "other", &q(&[("cursor", &cursor)])).unwrap_err();
    assert_eq!((e.status, e.code.as_str(), e.message.as_str()), (400, "invalid_request", "cursor tenant mismatch"));
}

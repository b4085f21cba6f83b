//! Alert events of a tenant from its stored state: an SLO breach, a key past
//! the rotation SLA, a key's traffic spike and dead letters each raise their
//! event; a healthy tenant raises none.

mod common;

use cairn_control_plane::admin::AdminCtx;
use cairn_control_plane::alerts::events;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::Sql;
use common::Telemetry;
use serde_json::json;

const T0: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;

fn telemetry(db: &NativeSqlite, tenant: &str, status: i64, key: Option<&str>, n: usize) {
    let row = Telemetry { tenant, endpoint: "write", status, latency_ms: 5.0, at_ms: T0 - 60_000, key };
    common::seed(db, &row, n);
}

#[test]
fn each_condition_raises_its_event() {
    let db = common::db(T0);
    let now = rfc3339_millis(T0);
    let tiers = json!({"tiers": {"solo": {"slo": {"objectives": [{"name": "availability", "sli": "availability", "target": 0.99}]}}}}).to_string();
    let ctx = AdminCtx { tier_profiles: Some(&tiers), ..common::ctx(T0) };
    for t in ["acme", "calm"] {
        db.exec(
            "INSERT INTO control_tenants (tenant_id, status, created_at, updated_at) VALUES (?, 'active', ?, ?)",
            &[t.into(), now.as_str().into(), now.as_str().into()],
        )
        .unwrap();
    }
    // acme: 40 keyed requests in the last hour, 10 of them failing; a key
    // made 40 days ago; a dead-lettered job.
    telemetry(&db, "acme", 200, Some("ck_acme_000001"), 30);
    telemetry(&db, "acme", 503, Some("ck_acme_000001"), 10);
    db.exec(
        "INSERT INTO control_api_keys (id, tenant_id, key_hash, key_prefix, status, created_at) VALUES ('k1', 'acme', 'h', 'ck_acme_000001', 'active', ?)",
        &[rfc3339_millis(T0 - 40 * DAY).into()],
    )
    .unwrap();
    db.exec(
        "INSERT INTO memory_outbox (scope, commit_id, event_type, payload, payload_sha256, job_key, created_at, failed_at) \
         VALUES ('tenant:acme::scope:s', 'c', 'embed_nodes', '{}', 'x', 'k', ?, ?)",
        &[now.as_str().into(), now.as_str().into()],
    )
    .unwrap();
    // calm: all well.
    telemetry(&db, "calm", 200, None, 40);

    let acme = events(&db, &ctx, "acme").unwrap();
    let kinds: Vec<&str> = acme.iter().map(|e| e.event_type).collect();
    assert_eq!(kinds, ["slo_at_risk", "key_rotation_sla_failed", "key_usage_anomaly", "outbox_dead_letters"]);
    assert_eq!(acme[0].severity, "critical", "10 of 40 failing breaches 99%");
    assert_eq!(acme[1].payload["stale_count_for_tenant"], 1);
    assert_eq!(acme[2].payload["keys"][0]["api_key_prefix"], "ck_acme_000001");
    assert_eq!(acme[3].payload["dead_letter"], 1);
    assert!(events(&db, &ctx, "calm").unwrap().is_empty());
}

//! The evidence publish queue's states: a job is claimed when due, backs
//! off after a failure, is dead-lettered after its attempts, replayed, and
//! succeeds; a lease that runs out frees a job a dead worker held; targets
//! and unknown tenants are refused before anything is queued.

mod common;

use cairn_control_plane::admin::AdminCtx;
use cairn_control_plane::evidence_publish::{LEASE_MS, handle};
use cairn_core::time_fmt::parse_rfc3339_millis;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};

fn t0() -> i64 {
    parse_rfc3339_millis("2027-04-01T00:00:00.000Z").unwrap()
}

fn ctx(now_ms: i64) -> AdminCtx<'static> {
    AdminCtx { random: &common::counter_random, ..common::ctx(now_ms) }
}

/// A database with tenant `acme`.
fn with_acme(t: i64) -> cairn_spin::native_sqlite::NativeSqlite {
    let db = common::db(t);
    db.exec(
        "INSERT INTO control_tenants (tenant_id, status, metadata, created_at, updated_at) VALUES ('acme', 'active', '{}', 'x', 'x')",
        &[],
    )
    .unwrap();
    db
}

fn op(db: &dyn cairn_spin::sql::Sql, now_ms: i64, body: Value) -> Value {
    handle(db, &ctx(now_ms), &body).unwrap_or_else(|e| panic!("{body}: {} {}", e.code, e.message))
}

fn claimed(db: &dyn cairn_spin::sql::Sql, now_ms: i64) -> Vec<String> {
    op(db, now_ms, json!({"op": "claim"}))["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_string())
        .collect()
}

fn fail(db: &dyn cairn_spin::sql::Sql, now_ms: i64, id: &str) -> Value {
    op(db, now_ms, json!({"op": "record", "job_id": id, "ok": false, "response_code": 503, "error": "down"}))["job"]
        .clone()
}

#[test]
fn a_job_backs_off_dead_letters_is_replayed_and_succeeds() {
    let t = t0();
    let db = with_acme(t);
    let sha = "a".repeat(64);
    let q = op(
        &db,
        t,
        json!({"op": "enqueue", "tenant_id": "acme", "target": "https://evidence.example.com/in", "payload": "{}",
               "index_sha256": sha, "max_attempts": 3, "retry_base_ms": 1000, "retry_max_ms": 1500}),
    );
    let id = q["job"]["job_id"].as_str().unwrap().to_string();
    assert_eq!(q["job"]["status"], "pending");

    // Attempt 1 fails: due again 1 s later, not before.
    assert_eq!(claimed(&db, t), std::slice::from_ref(&id));
    assert_eq!(claimed(&db, t), Vec::<String>::new(), "a claimed job is not handed out twice");
    let j = fail(&db, t, &id);
    assert_eq!((j["status"].as_str(), j["attempts"].as_i64()), (Some("failed"), Some(1)));
    assert_eq!(j["next_attempt_at"], "2027-04-01T00:00:01.000Z");
    assert!(claimed(&db, t + 999).is_empty());
    // Attempt 2 fails: the backoff doubles, up to the cap (1.5 s).
    assert_eq!(claimed(&db, t + 1000), std::slice::from_ref(&id));
    let j = fail(&db, t + 1000, &id);
    assert_eq!(j["next_attempt_at"], "2027-04-01T00:00:02.500Z");
    // Attempt 3 fails: dead-lettered, and recorded in the audit chain.
    assert_eq!(claimed(&db, t + 2500), std::slice::from_ref(&id));
    let j = fail(&db, t + 2500, &id);
    assert_eq!((j["status"].as_str(), j["last_response_code"].as_i64()), (Some("dead_letter"), Some(503)));
    assert!(claimed(&db, t + 999_999).is_empty(), "a dead letter waits for a decision");
    let n = db
        .query_one("SELECT count(*) FROM control_audit_events WHERE action = 'evidence.publish.dead_letter'", &[])
        .unwrap()
        .unwrap()
        .int(0);
    assert_eq!(n, 1);
    // Recording an unclaimed job is refused.
    let e = handle(&db, &ctx(t + 3000), &json!({"op": "record", "job_id": id, "ok": true})).unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (409, "publish_job_not_claimed"));

    // Previewed, replayed, sent.
    let p = op(&db, t + 4000, json!({"op": "replay", "tenant_id": "acme", "dry_run": true}));
    assert_eq!((p["replayed"].as_i64(), p["jobs"].as_array().map(Vec::len)), (Some(0), Some(1)));
    assert!(claimed(&db, t + 4000).is_empty());
    assert_eq!(op(&db, t + 4000, json!({"op": "replay", "job_ids": [id]}))["replayed"], 1);
    assert_eq!(claimed(&db, t + 4000), std::slice::from_ref(&id));
    let j = op(&db, t + 4000, json!({"op": "record", "job_id": id, "ok": true, "response_code": 201}))["job"].clone();
    assert_eq!((j["status"].as_str(), j["attempts"].as_i64()), (Some("succeeded"), Some(1)));
    assert!(j["published_at"].is_string());
    let listed = cairn_control_plane::evidence_publish::list(&db, &[("status".into(), "succeeded".into())]).unwrap();
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 1);
}

#[test]
fn a_dead_workers_lease_runs_out_and_bad_requests_queue_nothing() {
    let t = t0();
    let db = with_acme(t);
    let enqueue = |target: &str, tenant: &str| {
        handle(
            &db,
            &ctx(t),
            &json!({"op": "enqueue", "tenant_id": tenant, "target": target, "payload": "{}", "index_sha256": "b".repeat(64)}),
        )
    };
    let id = enqueue("https://evidence.example.com/in", "acme").unwrap()["job"]["job_id"].as_str().unwrap().to_string();
    assert_eq!(claimed(&db, t), std::slice::from_ref(&id));
    // Its worker died: nothing is recorded; the lease frees it.
    assert!(claimed(&db, t + LEASE_MS - 1).is_empty());
    let again = op(&db, t + LEASE_MS, json!({"op": "claim"}));
    assert_eq!(
        (again["jobs"][0]["job_id"].as_str(), again["jobs"][0]["attempt"].as_i64()),
        (Some(id.as_str()), Some(2))
    );

    for (target, why) in [
        ("http://evidence.example.com/in", "https://"),
        ("https://127.0.0.1/in", "not a public address"),
        ("ftp://x/y", "https://"),
    ] {
        let e = enqueue(target, "acme").unwrap_err();
        assert_eq!(e.status, 400, "{target}");
        assert!(format!("{} {:?}", e.message, e.details).contains(why), "{target}: {} {:?}", e.message, e.details);
    }
    assert_eq!(enqueue("https://evidence.example.com/in", "ghost").unwrap_err().status, 404);
    let n = db.query_one("SELECT count(*) FROM control_evidence_publish_jobs", &[]).unwrap().unwrap().int(0);
    assert_eq!(n, 1);
}

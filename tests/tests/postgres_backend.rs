//! `cairn up --database-url`: the kernel's memories in PostgreSQL (a
//! throwaway server per test, `cairn-testpg`), spoken to over HTTP like any
//! other deployment. What is ported so far (docs/postgres.md): write, find,
//! sessions, packs, the commit log and its verification.

use cairn_e2e::{Options, Server, event_write};
use serde_json::json;

fn on_postgres(pg: &cairn_testpg::TestPg) -> Server {
    Server::start_with(Options { extra_args: vec!["--database-url".into(), pg.url("postgres")], ..Default::default() })
}

#[test]
fn memories_written_over_http_live_in_postgres_and_verify() {
    let pg = cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("{e}"));
    let s = on_postgres(&pg);
    let health = s.get("/health");
    assert_eq!(health.body["memory_store_backend"], "postgres", "{}", health.text);
    assert!(health.body["database_target_hash"].as_str().is_some_and(|h| h.len() == 64), "{}", health.text);
    let first = s.post("/v1/memory/write", &event_write("e1", "the deploy went out on friday"));
    assert_eq!(first.status, 200, "{}\n{}", first.text, s.log());
    let second = s.post("/v1/memory/write", &event_write("e2", "rollback on monday"));
    assert_eq!(second.status, 200, "{}", second.text);
    let retry = s.post("/v1/memory/write", &event_write("e1", "the deploy went out on friday"));
    assert_eq!(retry.body["commit_id"], first.body["commit_id"], "an identical retry returns the first commit");

    let found = s.post("/v1/memory/find", &json!({"text_contains": "ROLLBACK"}));
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.body["nodes"].as_array().unwrap().len(), 1, "{}", found.text);
    assert_eq!(found.body["nodes"][0]["client_id"], "e2");

    let commits = s.get("/v1/memory/commits");
    assert_eq!(commits.status, 200, "{}", commits.text);
    assert_eq!(commits.body["commits"].as_array().unwrap().len(), 2);
    assert_eq!(commits.body["commits"][0]["parent_hash"], first.body["commit_hash"]);
    let v = s.post("/v1/memory/commits/verify", &json!({}));
    assert_eq!((v.status, &v.body["ok"], &v.body["checked"]), (200, &json!(true), &json!(2)), "{}", v.text);

    // The rows are in PostgreSQL, not in the data dir's SQLite.
    let psql = |sql: &str| pg.psql("postgres", sql).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(psql("SELECT count(*) FROM memory_commits").trim(), "2");
    assert_eq!(psql("SELECT count(*) FROM memory_nodes").trim(), "2");

    // A tampered row is found by the verifier.
    psql("UPDATE memory_nodes SET text_summary = 'the deploy went out on sunday' WHERE client_id = 'e1'");
    let broken = s.post("/v1/memory/commits/verify", &json!({}));
    assert_eq!(broken.body["ok"], false, "{}", broken.text);
    assert_eq!(broken.body["first_broken"]["commit_id"], first.body["commit_id"]);
}

/// The consistency checks and the health gate run on PostgreSQL: a fresh
/// database passes both (the black-box checks of their findings run on
/// both backends, tests/consistency_check.rs).
#[test]
fn the_consistency_check_and_health_gate_run_on_postgresql() {
    let pg = cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("{e}"));
    let s = Server::start_with(Options {
        admin_token: Some("adm".into()),
        extra_args: vec!["--database-url".into(), pg.url("postgres")],
        ..Default::default()
    });
    assert_eq!(
        s.post("/v1/memory/write", &json!({"input_text": "x", "nodes": [{"type": "event", "text_summary": "x"}]}))
            .status,
        200
    );
    let r = s.post_with("/v1/admin/control/consistency-check", &json!({"strict": true}), &[("x-admin-token", "adm")]);
    assert_eq!(r.status, 200, "{}", r.text);
    let errors: Vec<&serde_json::Value> =
        r.body["checks"].as_array().unwrap().iter().filter(|c| c.get("error").is_some()).collect();
    assert!(errors.is_empty(), "no check fails on PostgreSQL's SQL: {errors:?}");
    assert_eq!(r.body["summary"]["errors"], 0, "{}", r.text);
    let r = s.post_with("/v1/admin/control/health-gate", &json!({}), &[("x-admin-token", "adm")]);
    assert!(r.status == 200, "{}", r.text);
}

#[test]
fn a_bad_database_url_is_refused_at_start() {
    let (status, _, err) =
        cairn_e2e::cairn(&["up", "--listen", "127.0.0.1:0", "--database-url", "postgres:///db?host=/run/pg"]);
    assert!(!status.success());
    assert!(err.contains("--database-url"), "{err}");
}

/// Three `cairn up` processes on one PostgreSQL, derivation running in each
/// (cron on), take concurrent writes to one scope, to tenants of their own
/// and to a tenant with a small write quota, while one process is killed
/// with SIGKILL and started again. Every acknowledged write is there
/// exactly once, every chain verifies (no fork), every derivation job ran
/// once, and the quota's grants across the three never exceed its bucket.
#[test]
fn three_instances_on_one_database_keep_every_promise_through_a_sigkill() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    const ADMIN: &str = "multi-admin";
    const BURST: usize = 8;
    let pg = cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("{e}"));
    let url = pg.url("postgres");
    let dirs: Vec<cairn_e2e::TempDir> = (0..3).map(|_| cairn_e2e::TempDir::new("multi")).collect();
    // A short claim timeout, so the killed process's claims expire quickly.
    let tiers = dirs[0].path().join("tiers-claims.yaml");
    std::fs::write(
        &tiers,
        "default_tier: solo\ntiers:\n  solo:\n    resource_caps: {embedding_dims: 384}\n    \
         ops:\n      outbox: {max_attempts: 25, retry_base_ms: 0, retry_max_ms: 0, claim_timeout_ms: 1000}\n",
    )
    .unwrap();
    let opts = || Options {
        admin_token: Some(ADMIN.into()),
        extra_args: vec!["--database-url".into(), url.clone(), "--tiers".into(), tiers.to_str().unwrap().into()],
        cron: true,
        ..Default::default()
    };
    let mut servers: Vec<Server> = dirs.iter().map(|d| Server::start_on(d.path(), &opts())).collect();
    let admin = [("x-admin-token", ADMIN)];
    let r = servers[0].post_with("/v1/admin/control/tenants", &json!({"tenant_id": "quota-t"}), &admin);
    assert_eq!(r.status, 200, "{}", r.text);
    // BURST writes, then one more every ~3 hours.
    let quota = json!({"recall_rps": 100, "recall_burst": 100, "write_rps": 0.0001, "write_burst": BURST,
                       "write_max_wait_ms": 0, "debug_embed_rps": 1, "debug_embed_burst": 1,
                       "recall_text_embed_rps": 1, "recall_text_embed_burst": 1, "recall_text_embed_max_wait_ms": 0});
    let r = servers[2].put_with("/v1/admin/control/tenant-quotas/quota-t", &quota, &admin);
    assert_eq!(r.status, 200, "{}", r.text);

    // (tenant, scope, client_id) of every acknowledged write.
    let acked: Mutex<Vec<(String, String, String)>> = Mutex::new(Vec::new());
    let (quota_granted, quota_denied) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(5);
    std::thread::scope(|sc| {
        for w in 0..6usize {
            let (servers, acked, quota_granted, quota_denied) = (&servers, &acked, &quota_granted, &quota_denied);
            sc.spawn(move || {
                let mut i = 0usize;
                while Instant::now() < deadline {
                    let s = &servers[(w + i) % 3];
                    let (tenant, scope) = match w % 3 {
                        0 => ("default".to_string(), "shared".to_string()),
                        1 => (format!("tenant-{w}"), "own".to_string()),
                        _ => ("quota-t".to_string(), "q".to_string()),
                    };
                    let client_id = format!("w{w}-{i}");
                    let mut body = event_write(&client_id, &format!("writer {w} event {i} about the deploy"));
                    body["tenant_id"] = json!(tenant);
                    body["scope"] = json!(scope);
                    i += 1;
                    // A killed instance refuses the connection: not acknowledged.
                    let Some(r) = s.try_post("/v1/memory/write", &body) else { continue };
                    match (r.status, tenant.as_str()) {
                        (200, "quota-t") => {
                            quota_granted.fetch_add(1, Ordering::Relaxed);
                            acked.lock().unwrap().push((tenant, scope, client_id));
                        }
                        (200, _) => acked.lock().unwrap().push((tenant, scope, client_id)),
                        (429, "quota-t") => {
                            quota_denied.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1500));
        // SAFETY: kill(2) on a child process we started.
        unsafe {
            libc::kill(servers[1].pid() as i32, libc::SIGKILL);
        }
    });
    servers[1] = Server::start_on(dirs[1].path(), &opts());
    let acked = acked.into_inner().unwrap();
    assert!(acked.len() > 50, "only {} writes were acknowledged", acked.len());

    // Every acknowledged write, exactly once, through any instance.
    for (n, (tenant, scope, client_id)) in acked.iter().enumerate() {
        let f = servers[n % 3]
            .post("/v1/memory/find", &json!({"tenant_id": tenant, "scope": scope, "client_id": client_id}));
        assert_eq!(f.body["nodes"].as_array().map(Vec::len), Some(1), "{tenant}/{scope}/{client_id}: {}", f.text);
    }
    // Every chain verifies: one chain per scope, no fork.
    let mut tenants: Vec<&str> = acked.iter().map(|(t, _, _)| t.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    for tenant in &tenants {
        let v = servers[0].post("/v1/memory/commits/verify", &json!({"tenant_id": tenant, "all_scopes": true}));
        assert_eq!(v.body["ok"], true, "{tenant}: {}", v.text);
    }
    let psql = |sql: &str| pg.psql("postgres", sql).unwrap_or_else(|e| panic!("{e}")).trim().to_string();
    assert_eq!(
        psql("SELECT count(*) FROM (SELECT scope, seq FROM memory_commits GROUP BY scope, seq HAVING count(*) > 1) d"),
        "0"
    );
    // The quota's bucket held across the three.
    let granted = quota_granted.load(Ordering::Relaxed);
    assert!(granted <= BURST + 1, "{granted} quota writes granted from a bucket of {BURST}");
    assert!(granted >= 1 && quota_denied.load(Ordering::Relaxed) > 0, "the quota was exercised");

    // Derivation drains (the restarted instance's cron included), and no
    // job ran twice: one rollup commit per rollup job that wrote one, one
    // topic membership per clustered event.
    let drained = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        let r = servers[0].post_with("/v1/admin/derive/tick", &json!({}), &admin);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["claimed"] == 0
            && psql("SELECT count(*) FROM memory_outbox WHERE published_at IS NULL AND failed_at IS NULL") == "0"
    });
    assert!(drained, "the outbox did not drain");
    assert_eq!(psql("SELECT count(*) FROM memory_outbox WHERE failed_at IS NOT NULL"), "0");
    assert_eq!(
        psql("SELECT count(*) FROM memory_commits WHERE kind = 'compression_rollup'"),
        psql(
            "SELECT count(*) FROM memory_outbox WHERE event_type = 'compression_rollup' AND result LIKE '%\"commit_hash\":\"%'"
        )
    );
    assert_eq!(
        psql(
            "SELECT count(*) FROM (SELECT e.src_id FROM memory_edges e JOIN memory_nodes t ON t.id = e.dst_id \
             WHERE e.type = 'part_of' AND t.type = 'topic' GROUP BY e.src_id HAVING count(*) > 1) d"
        ),
        "0",
        "an event clustered twice"
    );
}

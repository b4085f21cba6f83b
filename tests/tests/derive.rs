//! Derivation over HTTP and the CLI: the outbox drains after writes, ticks
//! never double-process, a failing embedder never blocks a write, poison
//! jobs dead-letter and replay, rebuilds reproduce derived data, and cron
//! drives it all without a manual call.

use cairn_e2e::{FakeEmbedder, Options, Server, TempDir, cairn, db_query, event_write, tiers_with_outbox};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TOKEN: &str = "derive-test-token";

fn opts(extra: &[&str]) -> Options {
    Options {
        admin_token: Some(TOKEN.into()),
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn admin_post(s: &Server, path: &str, body: &Value) -> cairn_e2e::Resp {
    s.post_with(path, body, &[("x-admin-token", TOKEN)])
}

fn admin_get(s: &Server, path: &str) -> cairn_e2e::Resp {
    s.get_with(path, &[("x-admin-token", TOKEN)])
}

fn tick(s: &Server, body: &Value) -> Value {
    let r = admin_post(s, "/v1/admin/derive/tick", body);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// Ticks until a tick claims nothing.
fn drain(s: &Server) -> Vec<Value> {
    let mut reps = Vec::new();
    for _ in 0..200 {
        let r = tick(s, &json!({}));
        let claimed = r["claimed"].as_i64().unwrap();
        reps.push(r);
        if claimed == 0 {
            return reps;
        }
    }
    panic!("outbox did not drain");
}

fn outbox(s: &Server, query: &str) -> Value {
    let r = admin_get(s, &format!("/v1/admin/control/outbox{query}"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

fn find_all(s: &Server, extra: Value) -> Vec<Value> {
    let mut body = json!({"limit": 200, "include_meta": true, "include_slots": true});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let r = s.post("/v1/memory/find", &body);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["nodes"].as_array().unwrap().clone()
}

fn verify_ok(s: &Server) {
    let r = s.post("/v1/memory/commits/verify", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["ok"], true, "verify: {}", r.text);
}

fn int(v: &libsql::Value) -> i64 {
    match v {
        libsql::Value::Integer(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

#[test]
fn jobs_drain_after_writes_nodes_become_ready_and_topics_form() {
    let s = Server::start_with(opts(&["--no-cron"]));
    for (i, text) in
        ["deploy rollback failed on node a", "deploy rollback failed on node b", "invoice paid late"].iter().enumerate()
    {
        let r = s.post("/v1/memory/write", &event_write(&format!("e{i}"), text));
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["embedding_backfill"], json!({"enqueued": true, "pending_nodes": 1}));
    }
    let before = outbox(&s, "");
    assert_eq!(before["outbox"]["pending"], 3, "{before}");
    assert!(find_all(&s, json!({"type": "event"})).iter().all(|n| n["embedding_status"] == "pending"));

    let reps = drain(&s);
    let done: i64 = reps.iter().map(|r| r["done"].as_i64().unwrap()).sum();
    assert_eq!(done, 6, "3 embed jobs + 3 topic_cluster jobs: {reps:?}");
    let events = find_all(&s, json!({"type": "event"}));
    assert_eq!(events.len(), 3);
    for n in &events {
        assert_eq!(n["embedding_status"], "ready", "{n}");
        assert_eq!(n["embedding_model"], "local:lexical-hash-v2");
    }
    let topics = find_all(&s, json!({"type": "topic"}));
    assert!(!topics.is_empty(), "clustering created topics");
    let members: i64 = topics.iter().map(|t| t["member_count"].as_i64().unwrap()).sum();
    assert_eq!(members, 3, "every event is in exactly one topic: {topics:?}");
    let after = outbox(&s, "");
    assert_eq!((after["outbox"]["pending"].as_i64(), after["outbox"]["done"].as_i64()), (Some(0), Some(6)));
    // Topic clustering is on the chain, and the chain verifies.
    let commits = s.get("/v1/memory/commits?limit=50");
    let kinds: Vec<&str> =
        commits.body["commits"].as_array().unwrap().iter().filter_map(|c| c["kind"].as_str()).collect();
    assert!(kinds.contains(&"topic_cluster"), "{kinds:?}");
    verify_ok(&s);
    // The status route needs the admin token.
    assert_eq!(s.get("/v1/admin/control/outbox").status, 401);
    assert_eq!(s.post("/v1/admin/derive/tick", &json!({})).status, 401);
}

#[test]
fn concurrent_ticks_never_process_a_job_twice() {
    let s = Server::start_with(opts(&["--no-cron"]));
    let n = 120;
    for i in 0..n {
        let r = s.post(
            "/v1/memory/write",
            &event_write(&format!("c{i}"), &format!("memory number {i} about topic {}", i % 7)),
        );
        assert_eq!(r.status, 200);
    }
    let claimed: i64 = std::thread::scope(|sc| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                sc.spawn(|| {
                    let mut claimed = 0;
                    loop {
                        let r = tick(&s, &json!({"batch_size": 5, "max_jobs": 20}));
                        claimed += r["claimed"].as_i64().unwrap();
                        if r["claimed"] == 0 {
                            return claimed;
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    // Every job was claimed exactly once: n embed + n topic_cluster jobs,
    // plus the summaries of topics that became active and their embeddings.
    let jobs = db_query(
        &s.data_dir,
        "SELECT count(*), count(*) FILTER (WHERE event_type = 'compression_rollup') FROM memory_outbox",
    );
    let (total, rollup_jobs) = (int(&jobs[0][0]), int(&jobs[0][1]));
    assert!(total >= 2 * n && rollup_jobs > 0, "{total} jobs, {rollup_jobs} rollups");
    assert_eq!(claimed, total);
    // Side effects: each node embedded once, each event in one topic.
    let rows =
        db_query(&s.data_dir, "SELECT embedding_attempts, count(*) FROM memory_nodes WHERE type = 'event' GROUP BY 1");
    assert_eq!(rows.len(), 1, "every event embedded exactly once: {rows:?}");
    assert_eq!((int(&rows[0][0]), int(&rows[0][1])), (1, n));
    let rows = db_query(
        &s.data_dir,
        "SELECT count(*), count(DISTINCT e.src_id) FROM memory_edges e JOIN memory_nodes n ON n.id = e.src_id \
         WHERE e.type = 'part_of' AND n.type = 'event'",
    );
    assert_eq!((int(&rows[0][0]), int(&rows[0][1])), (n, n));
    let rows = db_query(&s.data_dir, "SELECT count(*) FROM memory_commits WHERE kind = 'topic_cluster'");
    assert_eq!(int(&rows[0][0]), n, "one topic_cluster commit per job");
    // A rollup job commits at most once (none when its topic's sources did not change).
    let rows = db_query(
        &s.data_dir,
        "SELECT (SELECT count(*) FROM memory_commits WHERE kind = 'compression_rollup'), \
         (SELECT count(*) FROM memory_outbox WHERE event_type = 'compression_rollup' AND result LIKE '%\"commit_hash\":\"%')",
    );
    assert_eq!(int(&rows[0][0]), int(&rows[0][1]), "one compression_rollup commit per job that wrote a summary");
    let rows = db_query(&s.data_dir, "SELECT count(*) FROM memory_outbox WHERE published_at IS NULL OR attempts <> 1");
    assert_eq!(int(&rows[0][0]), 0);
    verify_ok(&s);
}

/// Derivation holds no lock while it computes: with a tick's embedding
/// call in flight (the fake embedder holds it as long as the test wants),
/// a write commits and returns, and the tick finishes only afterwards.
#[test]
fn a_write_commits_while_a_derivation_batch_is_in_flight() {
    let fake = FakeEmbedder::start();
    let s = Server::start_with(opts(&["--no-cron", "--embedder", "openai", "--embedder-url", &fake.url]));
    for i in 0..20 {
        let r = s.post("/v1/memory/write", &event_write(&format!("b{i}"), &format!("batch memory {i}")));
        assert_eq!(r.status, 200, "{}", r.text);
    }
    fake.set(|f| f.hold = true);
    std::thread::scope(|scope| {
        let batch = scope.spawn(|| tick(&s, &json!({"batch_size": 64})));
        // Wait (not a timing assertion) until the batch is inside its
        // embedding call.
        let deadline = Instant::now() + Duration::from_secs(30);
        while fake.state.lock().unwrap().held == 0 {
            assert!(Instant::now() < deadline, "the tick never reached the embedder");
            std::thread::sleep(Duration::from_millis(5));
        }
        let r = s.post("/v1/memory/write", &event_write("mid", "written while derivation embeds"));
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(!batch.is_finished(), "the write returned while the batch was still in flight");
        assert_eq!(fake.state.lock().unwrap().held, 1, "the batch's embedding call is still held");
        fake.set(|f| f.hold = false);
        let rep = batch.join().unwrap();
        assert!(
            rep["nodes_embedded"].as_i64().unwrap_or(0) >= 20
                || rep["embed"]["nodes_embedded"].as_i64().unwrap_or(0) >= 20,
            "{rep}"
        );
    });
    drain(&s);
    let mid = &find_all(&s, json!({"client_id": "mid"}))[0];
    assert_eq!(mid["embedding_status"], "ready", "the mid-batch write is derived by a later batch");
    verify_ok(&s);
}

#[test]
fn a_failing_embedder_never_blocks_writes_and_jobs_drain_once_it_recovers() {
    // 1. The embedder switched to fail: writes still succeed; jobs back off.
    let dir = TempDir::new("failemb");
    let tiers = tiers_with_outbox(dir.path(), 50, 50, 100);
    let tiers = tiers.to_str().unwrap();
    {
        let s = Server::start_on(dir.path(), &opts(&["--no-cron", "--embedder", "fail", "--tiers", tiers]));
        let r = s.post("/v1/memory/write", &event_write("f1", "written while the embedder fails"));
        assert_eq!(r.status, 200, "{}", r.text);
        let t = tick(&s, &json!({}));
        assert_eq!((t["retrying"].as_i64(), t["done"].as_i64()), (Some(1), Some(0)), "{t}");
        let n = &find_all(&s, json!({"client_id": "f1"}))[0];
        assert_eq!(n["embedding_status"], "pending");
        let o = outbox(&s, "?status=retrying");
        assert_eq!(o["outbox"]["retrying"], 1, "{o}");
        assert!(o["samples"][0]["last_error"].as_str().unwrap().contains("configured to fail"), "{o}");
    }
    // 2. An endpoint that is down, then recovers.
    let fake = FakeEmbedder::start();
    fake.set(|f| f.down = true);
    let s = Server::start_on(
        dir.path(),
        &opts(&["--no-cron", "--embedder", "openai", "--embedder-url", &fake.url, "--tiers", tiers]),
    );
    for i in 0..5 {
        let r = s.post("/v1/memory/write", &event_write(&format!("d{i}"), &format!("written while down {i}")));
        assert_eq!(r.status, 200, "{}", r.text);
    }
    std::thread::sleep(Duration::from_millis(150));
    let t = tick(&s, &json!({}));
    assert_eq!(t["done"], 0, "{t}");
    assert!(t["retrying"].as_i64().unwrap() >= 5, "{t}");
    assert!(fake.state.lock().unwrap().requests >= 1);
    fake.set(|f| f.down = false);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        std::thread::sleep(Duration::from_millis(120));
        tick(&s, &json!({}));
        let o = outbox(&s, "");
        if o["outbox"]["pending"] == 0 && o["outbox"]["retrying"] == 0 {
            assert_eq!(o["outbox"]["dead_letter"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "jobs did not drain after recovery: {o}");
    }
    for n in find_all(&s, json!({"type": "event"})) {
        assert_eq!(n["embedding_status"], "ready", "{n}");
        assert_eq!(n["embedding_model"], "openai:text-embedding-3-small");
    }
    verify_ok(&s);
}

#[test]
fn poison_jobs_dead_letter_and_replay_completes_them_after_the_fix() {
    let dir = TempDir::new("poison");
    let tiers = tiers_with_outbox(dir.path(), 3, 0, 0);
    let fake = FakeEmbedder::start();
    fake.set(|f| {
        f.retryable_poison = Some("POISON".into());
        f.fatal_poison = Some("REJECT".into());
    });
    let s = Server::start_on(
        dir.path(),
        &opts(&["--no-cron", "--embedder", "openai", "--embedder-url", &fake.url, "--tiers", tiers.to_str().unwrap()]),
    );
    for (cid, text) in
        [("ok1", "a healthy memory"), ("p1", "a POISON memory"), ("r1", "a REJECT memory"), ("ok2", "another one")]
    {
        let mut w = event_write(cid, text);
        w["trigger_topic_cluster"] = json!(false);
        assert_eq!(s.post("/v1/memory/write", &w).status, 200);
    }
    // Attempt 1: the batch fails, each job is retried alone: two succeed, the
    // 400 dead-letters at once, the 503 backs off. Attempts 2 and 3 exhaust it.
    let mut dead = 0;
    for _ in 0..4 {
        dead += tick(&s, &json!({}))["dead_lettered"].as_i64().unwrap();
    }
    assert_eq!(dead, 2);
    let o = outbox(&s, "?status=dead_letter");
    assert_eq!(o["outbox"]["dead_letter"], 2, "{o}");
    let reasons: Vec<&str> =
        o["samples"].as_array().unwrap().iter().map(|j| j["failed_reason"].as_str().unwrap()).collect();
    assert!(reasons.iter().any(|r| r.starts_with("max_attempts_exceeded")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("fatal")), "{reasons:?}");
    assert!(o["samples"].as_array().unwrap().iter().all(|j| j["attempts"].as_i64().unwrap() <= 3));
    let status = |cid: &str| find_all(&s, json!({"client_id": cid}))[0]["embedding_status"].clone();
    assert_eq!((status("ok1"), status("p1"), status("r1")), (json!("ready"), json!("failed"), json!("failed")));

    // Replay needs a tenant or ids.
    let r = admin_post(&s, "/v1/admin/control/outbox/replay", &json!({}));
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error"], "invalid_request");
    // A dry run changes nothing.
    let r = admin_post(&s, "/v1/admin/control/outbox/replay", &json!({"tenant_id": "default", "dry_run": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.body["candidate_count"].as_i64(), r.body["replayed_count"].as_i64()), (Some(2), Some(0)));
    assert_eq!(outbox(&s, "")["outbox"]["dead_letter"], 2);
    assert_eq!(status("p1"), json!("failed"));

    // Fix the cause, replay one through HTTP and one through the CLI.
    fake.set(|f| {
        f.retryable_poison = None;
        f.fatal_poison = None;
    });
    let p1_job = o["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["failed_reason"].as_str().unwrap().starts_with("max"))
        .unwrap()["id"]
        .clone();
    let r = admin_post(&s, "/v1/admin/control/outbox/replay", &json!({"ids": [p1_job], "reason": "provider fixed"}));
    assert_eq!((r.status, r.body["replayed_count"].as_i64()), (200, Some(1)), "{}", r.text);
    let (st, out, err) = cairn(&[
        "job",
        "outbox-replay",
        "--tenant",
        "default",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--tiers",
        tiers.to_str().unwrap(),
        "--embedder",
        "openai",
        "--embedder-url",
        &fake.url,
    ]);
    assert!(st.success(), "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["replayed_count"], 1, "{v}");
    drain(&s);
    assert_eq!((status("p1"), status("r1")), (json!("ready"), json!("ready")));
    let o = outbox(&s, "");
    assert_eq!((o["outbox"]["dead_letter"].as_i64(), o["outbox"]["pending"].as_i64()), (Some(0), Some(0)), "{o}");
    // Every replay call — the dry run too — is an audit event, hash-chained.
    let rows =
        db_query(dir.path(), "SELECT action, actor, prev_hash, event_hash FROM control_audit_events ORDER BY seq");
    let actions: Vec<String> = rows.iter().map(|r| format!("{:?}/{:?}", r[0], r[1])).collect();
    assert_eq!(rows.len(), 3, "{actions:?}");
    assert!(actions[0].contains("outbox.replay.preview") && actions[0].contains("admin_token"), "{actions:?}");
    assert!(actions[2].contains("operator"), "{actions:?}");
    assert_eq!(rows[1][2], rows[0][3], "events are chained");
    verify_ok(&s);
}

#[test]
fn rebuild_derived_reproduces_the_same_derived_data() {
    let dir = TempDir::new("rebuild");
    let s = Server::start_on(dir.path(), &opts(&["--no-cron", "--var", "memory_scope=default"]));
    let texts = [
        "the deploy pipeline failed at the migration step",
        "the deploy pipeline failed at the migration step again",
        "customer asked about invoice due dates",
        "customer asked about invoice due dates twice",
        "lunch",
    ];
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(s.post("/v1/memory/write", &event_write(&format!("r{i}"), t)).status, 200);
    }
    // One node written with its own vector (never touched by a rebuild).
    let mut w = event_write("client-vec", "has a client vector");
    w["nodes"][0]["embedding"] = json!(vec![0.25f32; 384]);
    assert_eq!(s.post("/v1/memory/write", &w).status, 200);
    // The CLI runs the same ticks as the HTTP route.
    let data = dir.path().to_str().unwrap();
    let (st, out, err) = cairn(&["job", "derive", "--once", "--data-dir", data]);
    assert!(st.success(), "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["done"].as_i64().unwrap() >= 6, "{v}");
    drain(&s);
    let snapshot = || {
        (
            find_all(&s, json!({})),
            db_query(dir.path(), "SELECT node_id, model, vector FROM memory_derived_vectors ORDER BY node_id")
                .into_iter()
                .map(|r| format!("{r:?}"))
                .collect::<Vec<_>>(),
            db_query(dir.path(), "SELECT topic_id, member_count, sum FROM memory_topic_centroids ORDER BY topic_id")
                .into_iter()
                .map(|r| format!("{r:?}"))
                .collect::<Vec<_>>(),
        )
    };
    let before = snapshot();
    assert!(before.0.iter().any(|n| n["type"] == "topic"));
    assert!(before.1.len() >= 6, "derived vectors exist");

    let (st, out, err) = cairn(&["job", "rebuild-derived", "--scope", "default", "--data-dir", data]);
    assert!(st.success(), "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["vectors_dropped"].as_i64().unwrap() >= 6, "{v}");
    assert_eq!(v["nodes_reset"], 5, "{v}");
    let after = snapshot();
    assert_eq!(before.0, after.0, "find results are identical");
    assert_eq!(before.1, after.1, "derived vectors are identical");
    assert_eq!(before.2, after.2, "topic centroids are identical");
    verify_ok(&s);
    // Unknown scope → 404 envelope, no half-done rebuild.
    let (st, _, err) = cairn(&["job", "rebuild-derived", "--scope", "nope", "--data-dir", data]);
    assert!(!st.success());
    assert!(err.contains("scope_not_found"), "{err}");
}

#[test]
fn cron_drives_derivation_without_any_manual_call() {
    let s = Server::start_with(Options { cron: true, ..Default::default() });
    let r = s.post("/v1/memory/write", &event_write("cron1", "derived by the scheduler"));
    assert_eq!(r.status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = &find_all(&s, json!({"client_id": "cron1"}))[0];
        if n["embedding_status"] == "ready" {
            break;
        }
        assert!(Instant::now() < deadline, "cron did not derive the node; log:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(s.log().contains("cron schedule started"));
}

#[test]
fn active_topics_get_a_compression_rollup_summary() {
    let s = Server::start_with(opts(&["--no-cron"]));
    let write = |i: usize| {
        let text = format!("the nightly deploy of the billing service failed at the database migration step, run {i}");
        assert_eq!(s.post("/v1/memory/write", &event_write(&format!("n{i}"), &text)).status, 200);
    };
    for i in 0..5 {
        write(i);
    }
    drain(&s);
    let topics = find_all(&s, json!({"type": "topic"}));
    assert_eq!(topics.len(), 1, "{topics:?}");
    assert_eq!((topics[0]["topic_state"].as_str(), topics[0]["member_count"].as_i64()), (Some("active"), Some(5)));
    let summaries = find_all(&s, json!({"type": "concept"}));
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    let sum = &summaries[0];
    assert_eq!(sum["slots"]["summary_kind"], "compression_rollup");
    assert_eq!(sum["slots"]["topic_id"], topics[0]["id"]);
    assert_eq!(sum["slots"]["source_event_count"], 5);
    assert!(
        sum["text_summary"].as_str().unwrap().contains("run 0")
            && sum["text_summary"].as_str().unwrap().contains("run 4")
    );
    assert_eq!(sum["embedding_status"], "ready", "the summary is embedded too");
    // Five more members: the summary is rewritten (at most 12 events) and re-attested.
    for i in 5..10 {
        write(i);
    }
    drain(&s);
    let sum = &find_all(&s, json!({"type": "concept"}))[0];
    assert_eq!(sum["slots"]["source_event_count"], 10);
    let commits = s.get("/v1/memory/commits?limit=100");
    let rollups =
        commits.body["commits"].as_array().unwrap().iter().filter(|c| c["kind"] == "compression_rollup").count();
    assert_eq!(rollups, 2);
    verify_ok(&s);
}

#[test]
fn a_crash_mid_derivation_loses_and_duplicates_nothing() {
    let dir = TempDir::new("derivekill");
    // Short claim timeout, so claims held by the killed process expire quickly.
    let tiers = dir.path().join("tiers-claims.yaml");
    std::fs::write(
        &tiers,
        "default_tier: solo\ntiers:\n  solo:\n    resource_caps: {embedding_dims: 384}\n    \
         ops:\n      outbox: {max_attempts: 25, retry_base_ms: 0, retry_max_ms: 0, claim_timeout_ms: 1000}\n",
    )
    .unwrap();
    let args = ["--no-cron", "--tiers", tiers.to_str().unwrap()];
    let mut s = Server::start_on(dir.path(), &opts(&args));
    let n = 200;
    for i in 0..n {
        let r = s.post(
            "/v1/memory/write",
            &event_write(&format!("k{i}"), &format!("crash test memory {i} on subject {}", i % 9)),
        );
        assert_eq!(r.status, 200);
    }
    // Tick in the background and kill the server while it works.
    let base = s.base.clone();
    let ticker = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        for _ in 0..50 {
            let r = agent
                .post(format!("{base}/v1/admin/derive/tick"))
                .header("x-admin-token", TOKEN)
                .send_json(json!({"batch_size": 10, "max_jobs": 10}));
            if r.is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(60));
    s.kill9();
    ticker.join().unwrap();
    let left = db_query(dir.path(), "SELECT count(*) FROM memory_outbox WHERE published_at IS NULL");
    assert!(int(&left[0][0]) > 0, "the kill came before derivation finished");
    // Restart on the same data: expired claims are taken over and finished.
    std::thread::sleep(Duration::from_millis(1100));
    let s = Server::start_on(dir.path(), &opts(&args));
    drain(&s);
    let o = outbox(&s, "");
    assert_eq!(
        (o["outbox"]["pending"].as_i64(), o["outbox"]["retrying"].as_i64(), o["outbox"]["dead_letter"].as_i64()),
        (Some(0), Some(0), Some(0)),
        "{o}"
    );
    assert!(find_all(&s, json!({"type": "event", "limit": 200})).iter().all(|n| n["embedding_status"] == "ready"));
    let rows = db_query(
        dir.path(),
        "SELECT count(*), count(DISTINCT e.src_id) FROM memory_edges e JOIN memory_nodes n ON n.id = e.src_id \
         WHERE e.type = 'part_of' AND n.type = 'event'",
    );
    assert_eq!((int(&rows[0][0]), int(&rows[0][1])), (n, n), "every event in exactly one topic");
    verify_ok(&s);
}

/// A tick given `tenant_id` alone (HTTP, or `cairn job derive --tenant`)
/// takes every scope of that tenant and nothing of another's.
#[test]
fn a_tick_limited_to_a_tenant_claims_only_its_scopes() {
    let s = Server::start_with(opts(&["--no-cron"]));
    let write = |tenant: Option<&str>, scope: &str, id: &str| {
        let mut w = event_write(id, &format!("event {id} of {tenant:?}"));
        w["scope"] = json!(scope);
        if let Some(t) = tenant {
            w["tenant_id"] = json!(t);
        }
        let r = s.post("/v1/memory/write", &w);
        assert_eq!(r.status, 200, "{}", r.text);
    };
    write(Some("acme"), "p", "a1");
    write(Some("acme"), "p", "a2");
    write(Some("acme"), "q", "a3");
    write(Some("beta"), "p", "b1");
    write(Some("beta"), "q", "b2");
    write(None, "p", "d1");
    let pending = |tenant: &str| outbox(&s, &format!("?tenant_id={tenant}"))["outbox"]["pending"].as_i64().unwrap();
    // One embed_nodes job per write (its topic_cluster job follows once the
    // event is embedded, in the same tick).
    assert_eq!((pending("acme"), pending("beta"), pending("default")), (3, 2, 1));

    let r = tick(&s, &json!({"tenant_id": "acme"}));
    assert_eq!((r["claimed"].as_i64(), r["done"].as_i64()), (Some(6), Some(6)), "{r}");
    let scopes: Vec<&str> = r["scopes_claimed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(scopes, ["tenant:acme::scope:p", "tenant:acme::scope:q"], "{r}");
    assert_eq!((pending("acme"), pending("beta"), pending("default")), (0, 2, 1));

    let data = s.data_dir.to_str().unwrap();
    let (st, out, err) = cairn(&["job", "derive", "--tenant", "beta", "--embedder", "lexical", "--data-dir", data]);
    assert!(st.success(), "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["claimed"], 4, "{v}");
    assert_eq!((pending("beta"), pending("default")), (0, 1));

    let r = tick(&s, &json!({"tenant_id": "default"}));
    assert_eq!((r["claimed"].as_i64(), r["scopes_claimed"].clone()), (Some(2), json!(["p"])), "{r}");
    assert_eq!(outbox(&s, "")["outbox"]["pending"], 0);
    verify_ok(&s);
}

#[test]
fn derivation_routes_reject_bad_input() {
    let s = Server::start_with(opts(&[]));
    for body in [json!({"max_jobs": 0}), json!({"batch_size": "x"}), json!({"tenant_id": 7}), json!([1])] {
        let r = admin_post(&s, "/v1/admin/derive/tick", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.body["error"], "invalid_request", "{}", r.text);
    }
    let r = admin_post(&s, "/v1/admin/derive/tick", &json!({"tenant_id": "not a tenant"}));
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_tenant_id")), "{}", r.text);
    let r = admin_get(&s, "/v1/admin/control/outbox?status=lost");
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_request")), "{}", r.text);
    for body in [
        json!({"ids": "1"}),
        json!({"tenant_id": "default", "statuses": ["done"]}),
        json!({"tenant_id": "default", "limit": 0}),
    ] {
        let r = admin_post(&s, "/v1/admin/control/outbox/replay", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text);
    }
    let r = admin_post(&s, "/v1/admin/derive/rebuild", &json!({"scope": "never-written"}));
    assert_eq!((r.status, r.body["error"].as_str()), (404, Some("scope_not_found")), "{}", r.text);
    let r = s.post_raw("/v1/admin/derive/tick", b"{not json", &[("x-admin-token", TOKEN)]);
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_json")), "{}", r.text);
}

/// The blob of a libsql value.
fn blob(v: &libsql::Value) -> Vec<u8> {
    match v {
        libsql::Value::Blob(b) => b.clone(),
        other => panic!("not a blob: {other:?}"),
    }
}

#[test]
fn derivation_trains_and_keeps_the_vector_index() {
    use cairn_vector::{ivf, kmeans};
    let s = Server::start_with(opts(&["--no-cron", "--var", "vector_index_min_vectors=64"]));
    let subjects = ["deploys", "invoices", "latency", "schemas", "agents", "tokens", "caches", "retries"];
    let write = |i: usize| {
        let text = format!("note {i} about {} and {}", subjects[i % 8], subjects[(i / 8) % 8]);
        assert_eq!(s.post("/v1/memory/write", &event_write(&format!("v{i}"), &text)).status, 200);
    };
    for i in 0..100 {
        write(i);
    }
    let reps = drain(&s);
    let builds: i64 = reps.iter().map(|r| r["vector_index"]["builds"].as_i64().unwrap()).sum();
    assert_eq!(builds, 1, "{reps:?}");
    let unindexed = "SELECT count(*) FROM memory_nodes n WHERE n.scope = 'default' AND n.embedding_status = 'ready' \
         AND NOT EXISTS (SELECT 1 FROM memory_vector_members m WHERE m.node_id = n.id)";
    assert_eq!(int(&db_query(&s.data_dir, unindexed)[0][0]), 0, "every ready vector is in the index");
    // Vectors derived after the build are added to their lists incrementally.
    for i in 100..130 {
        write(i);
    }
    // Client-supplied vectors join the index too.
    for i in 0..5 {
        let mut w = event_write(&format!("cv{i}"), &format!("client vector {i}"));
        w["nodes"][0]["embedding"] = json!((0..384).map(|d| ((d * (i + 3)) % 17) as f32 - 8.0).collect::<Vec<f32>>());
        assert_eq!(s.post("/v1/memory/write", &w).status, 200);
    }
    drain(&s);
    assert_eq!(int(&db_query(&s.data_dir, unindexed)[0][0]), 0);
    let ready = int(&db_query(&s.data_dir, "SELECT count(*) FROM memory_nodes WHERE embedding_status = 'ready'")[0][0]);
    let members = int(&db_query(&s.data_dir, "SELECT count(*) FROM memory_vector_members")[0][0]);
    assert_eq!(members, ready);
    // The lists hold exactly the members, and probing finds each event itself.
    let idx = db_query(&s.data_dir, "SELECT dims, nlist, centroids FROM memory_vector_index WHERE scope = 'default'");
    let (dims, nlist) = (int(&idx[0][0]) as usize, int(&idx[0][1]) as usize);
    let flat: Vec<f32> = blob(&idx[0][2]).chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    let centroids: Vec<Vec<f32>> = flat.chunks(dims).map(<[f32]>::to_vec).collect();
    assert_eq!(centroids.len(), nlist);
    let mut lists: Vec<Vec<u8>> = db_query(&s.data_dir, "SELECT entries FROM memory_vector_lists ORDER BY list")
        .iter()
        .map(|r| blob(&r[0]))
        .collect();
    // Vectors added since the build wait as pending changes of their lists
    // (folded once a list has enough); the lists as recall sees them are
    // the stored ones with their changes.
    let changes = db_query(&s.data_dir, "SELECT list, node, entry FROM memory_vector_list_changes ORDER BY id");
    assert!(!changes.is_empty(), "the late vectors are pending changes, not list rewrites");
    for c in &changes {
        let change = ivf::Change {
            id: blob(&c[1]).try_into().unwrap(),
            entry: matches!(c[2], libsql::Value::Blob(_)).then(|| blob(&c[2])),
        };
        assert!(ivf::fold(&mut lists[int(&c[0]) as usize], &[change]));
    }
    let total: usize = lists.iter().map(|l| ivf::header(l).unwrap().1).sum();
    assert_eq!(total as i64, members);
    // Recall finds a late event through the index, pending changes and all.
    let late = db_query(
        &s.data_dir,
        "SELECT n.id, v.vector FROM memory_nodes n JOIN memory_derived_vectors v ON v.node_id = n.id \
         WHERE n.client_id = 'v120'",
    );
    let (late_id, late_vec) = (
        match &late[0][0] {
            libsql::Value::Text(t) => t.clone(),
            _ => panic!(),
        },
        blob(&late[0][1]).chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect::<Vec<f32>>(),
    );
    let r = s.post("/v1/memory/recall", &json!({"query_embedding": late_vec, "limit": 5, "return_debug": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["debug"]["stage1"]["mode"], "ann", "{}", r.body["debug"]["stage1"]);
    assert!(r.body["seeds"].as_array().unwrap().iter().any(|x| x["id"] == late_id.as_str()), "{}", r.text);
    let vecs = db_query(
        &s.data_dir,
        "SELECT v.node_id, v.vector FROM memory_derived_vectors v JOIN memory_nodes n ON n.id = v.node_id \
         WHERE n.type = 'event' ORDER BY v.node_id LIMIT 40",
    );
    for r in &vecs {
        let libsql::Value::Text(id) = &r[0] else { panic!() };
        let q: Vec<f32> = blob(&r[1]).chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        let mut top = ivf::TopK::new(5);
        for l in kmeans::nearest_n(&centroids, &q, 4) {
            ivf::scan(&lists[l], &q, &mut top);
        }
        let best = top.into_sorted();
        assert!(best.iter().any(|(b, _)| ivf::uuid_string(b) == *id), "{id} found by probing its own vector");
    }
    verify_ok(&s);
}

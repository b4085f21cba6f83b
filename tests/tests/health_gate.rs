//! The health gate on a real data dir while its server runs: it passes on a
//! derived, consistent data plane, and names each failure — a derivation
//! backlog over the tier's threshold, a low embedded share (a warning:
//! only `--strict-warnings` fails on it), dead letters nobody decided on
//! (until a replay preview is recorded), an embedder that does not answer,
//! a consistency error — with exit code 2.

use cairn_e2e::{Options, Server, TempDir, cairn, event_write};
use serde_json::{Value, json};
use std::path::Path;

const TOKEN: &str = "health-test-token";

/// One tier whose jobs dead-letter on the first failure and whose health
/// allows a backlog of 3 jobs.
fn tiers(dir: &Path) -> String {
    let text = "version: 1\ndefault_tier: solo\ntiers:\n  solo:\n    resource_caps: {embedding_dims: 384, vector_index: flat}\n    \
                ops:\n      outbox: {max_attempts: 1, retry_base_ms: 10, retry_max_ms: 10}\n      \
                health: {max_outbox_backlog: 3, max_oldest_pending_sec: 3600, min_embedding_ready_ratio: 0.8}\n";
    let path = dir.join("tiers-health.yaml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// `cairn job health-gate --json`: exit code and report.
fn gate(s: &Server, tiers: &str, extra: &[&str]) -> (i32, Value) {
    let data = s.data_dir.to_str().unwrap();
    let mut args = vec!["job", "health-gate", "--json", "--tiers", tiers, "--data-dir", data];
    if !extra.contains(&"--embedder") {
        args.extend_from_slice(&["--embedder", "lexical"]);
    }
    args.extend_from_slice(extra);
    let (st, out, err) = cairn(&args);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (st.code().expect("exit code"), report)
}

fn reasons(r: &Value) -> Vec<String> {
    r["fail_reasons"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

fn tick(s: &Server) {
    let r = s.post_with("/v1/admin/derive/tick", &json!({}), &[("x-admin-token", TOKEN)]);
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn the_gate_passes_a_healthy_data_plane_and_names_each_failure() {
    let dir = TempDir::new("health");
    let tiers = tiers(dir.path());
    let s = Server::start_on(
        dir.path(),
        &Options {
            admin_token: Some(TOKEN.into()),
            extra_args: vec!["--tiers".into(), tiers.clone()],
            ..Default::default()
        },
    );
    for i in 0..2 {
        assert_eq!(
            s.post("/v1/memory/write", &event_write(&format!("h{i}"), &format!("healthy memory {i}"))).status,
            200
        );
    }
    tick(&s);

    // Healthy: every check passes, strictly too.
    let (code, r) = gate(&s, &tiers, &["--strict-warnings"]);
    assert_eq!((code, reasons(&r)), (0, vec![]), "{r}");
    assert_eq!(r["ok"], true);
    assert!(r["checks"].as_array().unwrap().iter().all(|c| c["pass"] == true), "{r}");
    assert_eq!(r["thresholds"]["max_outbox_backlog"], 3);
    assert_eq!(r["consistency"]["summary"]["errors"], 0);
    let route = s.post_with("/v1/admin/control/health-gate", &json!({}), &[("x-admin-token", TOKEN)]);
    assert_eq!((route.status, route.body["ok"].as_bool()), (200, Some(true)), "{}", route.text);
    assert_eq!(s.post("/v1/admin/control/health-gate", &json!({})).status, 401);

    // Writes nobody derived yet: the backlog is over the tier's 3 jobs, and
    // only a third of the memories are embedded (a warning).
    for i in 0..4 {
        assert_eq!(
            s.post("/v1/memory/write", &event_write(&format!("b{i}"), &format!("backlog memory {i}"))).status,
            200
        );
    }
    let (code, r) = gate(&s, &tiers, &[]);
    assert_eq!((code, reasons(&r)), (2, vec!["outbox_backlog_over_threshold".to_string()]), "{r}");
    let (_, r) = gate(&s, &tiers, &["--strict-warnings"]);
    assert_eq!(reasons(&r), ["outbox_backlog_over_threshold", "quality_eval_failed"]);
    tick(&s);
    assert_eq!(gate(&s, &tiers, &["--strict-warnings"]).0, 0);

    // A job dead-lettered by a worker whose embedder failed: undecided
    // until an operator previews (or runs) a replay.
    assert_eq!(s.post("/v1/memory/write", &event_write("dead", "a memory whose embedding fails")).status, 200);
    let data = s.data_dir.to_str().unwrap();
    let (st, out, err) = cairn(&["job", "derive", "--embedder", "fail", "--tiers", &tiers, "--data-dir", data]);
    assert!(st.success(), "{out}\n{err}");
    let (code, r) = gate(&s, &tiers, &[]);
    assert_eq!((code, reasons(&r)), (2, vec!["dead_letters_without_replay_decision".to_string()]), "{r}");
    let (st, out, err) =
        cairn(&["job", "outbox-replay", "--dry-run", "--all-tenants", "--embedder", "lexical", "--data-dir", data]);
    assert!(st.success(), "{out}\n{err}");
    let (code, r) = gate(&s, &tiers, &[]);
    assert_eq!(code, 0, "a recorded replay preview decides the dead letters: {r}");

    // The embedder does not answer.
    let (code, r) = gate(&s, &tiers, &["--embedder", "fail"]);
    assert_eq!((code, reasons(&r)), (2, vec!["embedder_unreachable".to_string()]), "{r}");

    // A memory changed outside the write path.
    s.tamper("UPDATE memory_nodes SET text_summary = 'tampered' WHERE client_id = 'h0'");
    let (code, r) = gate(&s, &tiers, &[]);
    assert_eq!((code, reasons(&r)), (2, vec!["consistency_errors".to_string()]), "{r}");
    let failed = r["checks"].as_array().unwrap().iter().find(|c| c["name"] == "consistency_errors").unwrap();
    assert_eq!(failed["detail"]["checks"], json!(["commit_chain_broken"]));
    // The human-readable form says why.
    let (st, out, _) = cairn(&["job", "health-gate", "--embedder", "lexical", "--tiers", &tiers, "--data-dir", data]);
    assert_eq!(st.code(), Some(2));
    assert!(out.contains("health gate: FAILED: consistency_errors"), "{out}");
}

//! `cairn job replay-drill` on the real binary, beside a running server
//! whose cron derives in the background (the shipped tiers: acme on
//! growth, whose `ops.replay_drill` is monthly): on a healthy system every
//! step passes, the result is registered as evidence `replay_drill` (read
//! back over HTTP) and the tenant is no longer due; with an embedder that
//! stays down the drill exits 2, naming the step and why, and that result
//! is registered too. Either way the drill leaves nothing behind: the
//! tenant's other memory is untouched, the consistency check and the
//! health gate pass, the registry verifies.

use cairn_e2e::{Options, Server, TempDir, cairn};
use serde_json::{Value, json};

const TOKEN: &str = "replay-drill-token";
/// The drill's steps, in order (`cairn_derive::replay_drill::STEPS`).
const STEPS: [&str; 8] = ["inject", "dead_letter", "fix", "dry_run", "replay", "derive", "check", "cleanup"];

fn admin_get(s: &Server, path: &str) -> Value {
    let r = s.get_with(&format!("/v1/admin/control/{path}"), &[("x-admin-token", TOKEN)]);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body
}

/// `cairn job <args> --data-dir <the server's> [--embedder lexical]`.
fn job(s: &Server, args: &[&str]) -> (i32, String, String) {
    let data = s.data_dir.to_str().unwrap().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["--data-dir", &data]);
    if !args.contains(&"--embedder") {
        all.extend_from_slice(&["--embedder", "lexical"]);
    }
    let (st, out, err) = cairn(&all);
    (st.code().expect("exit code"), out, err)
}

fn drill(s: &Server, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["job", "replay-drill", "--tenant", "acme", "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = job(s, &args);
    (code, serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}")))
}

fn due_tenants(s: &Server) -> Vec<String> {
    let (code, out, err) = job(s, &["job", "replay-drill", "--due"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["due"].as_array().unwrap().iter().map(|t| t["tenant_id"].as_str().unwrap().to_string()).collect()
}

fn steps(r: &Value) -> Vec<(String, bool)> {
    r["steps"].as_array().unwrap().iter().map(|s| (s["name"].as_str().unwrap().to_string(), s["ok"] == true)).collect()
}

/// The registered artifact of a drill result, its content parsed.
fn registered(s: &Server, r: &Value) -> (Value, Value) {
    let e = admin_get(s, &format!("evidence/{}", r["evidence_id"].as_str().unwrap()))["evidence"].clone();
    let content = serde_json::from_str(e["content"].as_str().unwrap()).unwrap();
    (e, content)
}

/// The consistency check and the health gate of acme pass.
fn data_plane_sound(s: &Server) {
    let (code, out, err) = job(s, &["job", "consistency-check", "--strict-warnings"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = job(s, &["job", "health-gate", "--tenant", "acme"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn the_drill_passes_on_a_healthy_system_and_fails_with_its_reason_when_the_embedder_stays_down() {
    let dir = TempDir::new("drill");
    let s =
        Server::start_on(dir.path(), &Options { admin_token: Some(TOKEN.into()), cron: true, ..Default::default() });
    let r = s.post_with(
        "/v1/admin/control/tenants/acme/provision",
        &json!({"tier": "growth"}),
        &[("x-admin-token", TOKEN)],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let mut note = cairn_e2e::event_write("n1", "acme's own memory");
    note["tenant_id"] = json!("acme");
    note["scope"] = json!("notes");
    assert_eq!(s.post("/v1/memory/write", &note).status, 200);
    assert_eq!(due_tenants(&s), ["acme"], "growth drills monthly; acme never did");

    // Healthy: every step passes, in order, each timed.
    let (code, r) = drill(&s, &[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["ok"], true);
    let all: Vec<(String, bool)> = STEPS.iter().map(|n| (n.to_string(), true)).collect();
    assert_eq!(steps(&r), all, "{r:#}");
    assert!(r["steps"].as_array().unwrap().iter().all(|s| s["ms"].as_i64().is_some()));
    assert!(r["scope"].as_str().unwrap().starts_with("drill-"), "{r}");
    let dead = &r["steps"][1]["detail"];
    assert!(dead["failed_reason"].as_str().unwrap().starts_with("max_attempts_exceeded"), "{r:#}");
    assert_eq!(r["steps"][6]["detail"]["node"]["embedding_status"], "ready");

    // Registered: listed by kind over HTTP, its bytes the printed result.
    let listed = admin_get(&s, "evidence?kind=replay_drill")["evidence"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["evidence_id"], r["evidence_id"]);
    let (e, content) = registered(&s, &r);
    assert_eq!(
        (e["kind"].as_str(), e["tenant_id"].as_str(), e["producer"].as_str()),
        (Some("replay_drill"), Some("acme"), Some("replay_drill"))
    );
    assert_eq!(content, r);
    assert!(due_tenants(&s).is_empty(), "a passing drill this month");
    // The drill's replay decisions are in the audit log, by the drill.
    let audit = admin_get(&s, "audit-events?action=outbox.replay");
    let events = audit["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["actor"] == "replay_drill" && e["tenant_id"] == "acme"), "{audit}");
    data_plane_sound(&s);

    // The embedder stays down: exit 2, the step and the reason, registered.
    let (code, r) = drill(&s, &["--embedder", "fail", "--run-id", "down"]);
    assert_eq!(code, 2, "{r:#}");
    assert_eq!(
        (r["ok"].as_bool(), r["failed_step"].as_str(), r["scope"].as_str()),
        (Some(false), Some("fix"), Some("drill-down"))
    );
    let error = r["error"].as_str().unwrap();
    assert!(error.starts_with("the embedder still fails") && error.contains("--embedder fail"), "{error}");
    let want = [("inject", true), ("dead_letter", true), ("fix", false), ("cleanup", true)];
    assert_eq!(steps(&r), want.map(|(n, ok)| (n.to_string(), ok)));
    let (_, content) = registered(&s, &r);
    assert_eq!((content["ok"].as_bool(), content["failed_step"].as_str()), (Some(false), Some("fix")));
    assert_eq!(admin_get(&s, "evidence?kind=replay_drill&tenant_id=acme")["evidence"].as_array().unwrap().len(), 2);
    assert!(due_tenants(&s).is_empty(), "the month's passing drill still stands");
    data_plane_sound(&s);

    // The human-readable form says the same; the registry verifies.
    let (code, out, _) = job(&s, &["job", "replay-drill", "--tenant", "acme", "--embedder", "fail"]);
    assert_eq!(code, 2);
    assert!(out.contains("FAIL  fix") && out.contains("FAILED at fix: the embedder still fails"), "{out}");
    let (code, out, err) = job(&s, &["job", "evidence", "verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // acme's own memory was never touched.
    let notes = s.post("/v1/memory/find", &json!({"tenant_id": "acme", "scope": "notes", "client_id": "n1"}));
    assert_eq!(notes.status, 200, "{}", notes.text);
    assert_eq!(notes.body["nodes"].as_array().map(Vec::len), Some(1), "{}", notes.text);

    // What cannot start a drill is refused, and registers nothing.
    let (code, _, err) = job(&s, &["job", "replay-drill", "--tenant", "nobody"]);
    assert_eq!(code, 1);
    assert!(err.contains("not_found"), "{err}");
    let (code, _, err) = job(&s, &["job", "replay-drill", "--tenant", "acme", "--run-id", "down"]);
    assert_eq!(code, 1);
    assert!(err.contains("drill_run_exists"), "{err}");
    assert_eq!(admin_get(&s, "evidence?kind=replay_drill")["evidence"].as_array().unwrap().len(), 3);
}

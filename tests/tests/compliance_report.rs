//! The compliance report and the registry verifier on the real binary, with
//! the shipped controls (config/controls.yaml) and tiers: a growth tenant's
//! `extended` controls all flag `no_evidence` at first (exit 2 under
//! --strict); once the evidence exists the way an operator makes it — a key
//! rotated, a weekly report, a drill result, a release recorded — every
//! control passes and the report is registered; a signed bundle of the
//! tenant's evidence verifies until a file changes; `cairn job evidence
//! verify` passes, then fails on a tampered artifact.

use cairn_e2e::{Server, TempDir, cairn};
use serde_json::{Value, json};

const TOKEN: &str = "compliance-token";

fn admin(s: &Server, path: &str, body: Value) -> Value {
    let r = s.post_with(&format!("/v1/admin/control/{path}"), &body, &[("x-admin-token", TOKEN)]);
    assert_eq!(r.status, 200, "{path} {body}: {}", r.text);
    r.body
}

fn job(s: &Server, args: &[&str]) -> (i32, String, String) {
    let data = s.data_dir.to_str().unwrap().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["--data-dir", &data, "--embedder", "lexical"]);
    let (st, out, err) = cairn(&all);
    (st.code().expect("exit code"), out, err)
}

fn compliance(s: &Server, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["job", "compliance-report", "--tenant", "acme", "--json", "--strict"];
    args.extend_from_slice(extra);
    let (code, out, err) = job(s, &args);
    (code, serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}")))
}

fn statuses(r: &Value) -> Vec<(String, String)> {
    r["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c["status"].as_str().unwrap().to_string()))
        .collect()
}

const EXTENDED: [&str; 6] = [
    "access-keys-rotated",
    "audit-log-integrity",
    "memory-chain-integrity",
    "dead-letter-replay-drill",
    "monitoring-slo-budgets",
    "change-management-release-evidence",
];

#[test]
fn controls_without_evidence_are_flagged_then_pass_once_it_is_registered() {
    let dir = TempDir::new("compliance");
    let s = Server::start_on(dir.path(), &cairn_e2e::Options { admin_token: Some(TOKEN.into()), ..Default::default() });
    admin(&s, "tenants/acme/provision", json!({"tier": "growth"}));

    let (code, r) = compliance(&s, &[]);
    assert_eq!(code, 2, "{r}");
    assert_eq!((r["tier"].as_str(), r["control_set"].as_str()), (Some("growth"), Some("extended")));
    let none: Vec<(String, String)> = EXTENDED.iter().map(|c| (c.to_string(), "no_evidence".to_string())).collect();
    assert_eq!(statuses(&r), none, "every extended control, and none of the formal ones");
    assert_eq!(r["summary"], json!({"controls": 6, "pass": 0, "fail": 0, "no_evidence": 6}));

    // The evidence, made the way an operator makes it.
    let key = admin(&s, "api-keys", json!({"tenant_id": "acme"}));
    let key_id = key["key"]["id"].as_str().unwrap_or_else(|| panic!("{key}")).to_string();
    admin(&s, &format!("api-keys/{key_id}/rotate"), json!({}));
    // This week's report (the schedule would make last week's, before acme
    // existed), registered by hand.
    let out_dir = dir.path().join("week");
    let (code, out, err) = job(
        &s,
        &["job", "governance-weekly-report", "--tenant", "acme", "--json", "--out-dir", out_dir.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    let report = admin(
        &s,
        "evidence",
        json!({"kind": "weekly_report", "tenant_id": "acme",
                                               "content": json!({"summary": summary}).to_string()}),
    );
    admin(&s, "evidence", json!({"kind": "replay_drill", "tenant_id": "acme", "content": "{\"ok\": true}"}));
    admin(&s, "releases", json!({"bundle_digest": "ab".repeat(32), "run_id": "rollout-1"}));

    let (code, r) = compliance(&s, &["--register"]);
    assert_eq!(code, 0, "{r}");
    let pass: Vec<(String, String)> = EXTENDED.iter().map(|c| (c.to_string(), "pass".to_string())).collect();
    assert_eq!(statuses(&r), pass);
    let audit_ok = r["controls"].as_array().unwrap().iter().find(|c| c["id"] == "audit-log-integrity").unwrap();
    assert_eq!(audit_ok["evidence"]["evidence_id"], report["evidence"]["evidence_id"], "links the report judged");
    let id = r["evidence_id"].as_str().unwrap();
    let got = s.get_with(&format!("/v1/admin/control/evidence/{id}"), &[("x-admin-token", TOKEN)]);
    assert_eq!(got.body["evidence"]["kind"], "compliance_report", "{}", got.text);

    // A signed bundle of acme's evidence verifies; a changed file does not.
    // SAFETY: only this test reads or writes this variable.
    unsafe { std::env::set_var("CAIRN_TEST_BUNDLE_KEY", "bundle-signing-key") };
    let bundle = dir.path().join("bundle");
    let b = bundle.to_str().unwrap();
    let (code, out, err) = job(
        &s,
        &[
            "job",
            "evidence",
            "bundle",
            "--tenant",
            "acme",
            "--out-dir",
            b,
            "--signing-key-env",
            "CAIRN_TEST_BUNDLE_KEY",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    // The weekly report, the drill and the compliance report (acme's), and registry.json.
    assert_eq!((made["files"].as_i64(), made["signed"].as_bool()), (Some(4), Some(true)), "{made}");
    let verify_bundle = |extra: &[&str]| {
        let mut args = vec!["job", "evidence", "verify-bundle", b, "--json"];
        args.extend_from_slice(extra);
        let (st, out, err) = cairn(&args);
        (st.code().unwrap(), serde_json::from_str::<Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}")))
    };
    let (code, v) = verify_bundle(&["--signing-key-env", "CAIRN_TEST_BUNDLE_KEY"]);
    assert_eq!((code, v["signature"].as_str()), (0, Some("valid")), "{v}");
    let drill = std::fs::read_dir(bundle.join("artifacts/replay_drill")).unwrap().next().unwrap().unwrap().path();
    std::fs::write(&drill, "{\"ok\": false}").unwrap();
    let (code, v) = verify_bundle(&["--signing-key-env", "CAIRN_TEST_BUNDLE_KEY"]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["problems"][0]["problem"], "content differs from the index (sha256 or size)");
    let (code, v) = verify_bundle(&["--signing-key-env", "NO_SUCH_KEY_VARIABLE"]);
    assert_eq!((code, v["signature"].as_str()), (2, Some("unchecked")), "{v}");

    // The registry verifies from the CLI; a changed artifact does not.
    let (code, out, err) = job(&s, &["job", "evidence", "verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("evidence registry: verified"), "{out}");
    s.tamper(&format!("UPDATE control_evidence SET content = '{{\"ok\": false}}' WHERE evidence_id = '{id}'"));
    let (code, out, _) = job(&s, &["job", "evidence", "verify", "--json"]);
    assert_eq!(code, 2, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["failures"], json!([{"evidence_id": id, "kind": "compliance_report", "reason": "content_changed"}]));
}

//! The release gates on the real binary (docs/operations.md): a server run
//! as a hosted tier runs passes `cairn preflight --run-gates` and `cairn
//! gate core`, whose evidence bundle verifies until any byte of it
//! changes; the core gate refuses writes and perf outside gate tenants;
//! and a misconfigured server fails preflight, the core gate and the CI
//! stage with exit code 2.

use cairn_e2e::{Options, Server, TempDir, cairn, repo_root};
use serde_json::Value;
use std::process::Command;

const TOKEN: &str = "release-gates-admin-token-0123456789";

/// `cairn up` as a hosted tier runs it: auth and quotas on, --sync full,
/// all-MiniLM-L6-v2 (what `make test` fetched).
fn hosted_args() -> Vec<String> {
    [
        "--var",
        "memory_auth_mode=api_key",
        "--var",
        "tenant_quota_enabled=true",
        "--sync",
        "full",
        "--embedder",
        "minilm",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn hosted() -> Server {
    Server::start_with(Options { admin_token: Some(TOKEN.into()), extra_args: hosted_args(), ..Default::default() })
}

/// Runs `cairn <args>`; exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let (st, out, err) = cairn(args);
    (st.code().expect("exit code"), out, err)
}

fn json_of(out: &str, err: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"))
}

fn preflight(s: &Server, artifacts: &str, extra: &[&str]) -> (i32, Value) {
    let listen = format!("127.0.0.1:{}", s.port);
    let data = s.data_dir.to_str().unwrap();
    let mut args = vec![
        "preflight",
        "--json",
        "--listen",
        &listen,
        "--data-dir",
        data,
        "--admin-token",
        TOKEN,
        "--artifacts-dir",
        artifacts,
    ];
    let hosted = hosted_args();
    args.extend(hosted.iter().map(String::as_str));
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args);
    (code, json_of(&out, &err))
}

fn core_gate(s: &Server, artifacts: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["gate", "core", "--base-url", &s.base, "--admin-token", TOKEN, "--artifacts-dir", artifacts];
    args.extend_from_slice(extra);
    run(&args)
}

fn reasons(v: &Value) -> Vec<&str> {
    v["fail_reasons"].as_array().unwrap().iter().filter_map(Value::as_str).collect()
}

#[test]
fn a_hosted_server_passes_the_gates_and_its_evidence_verifies_until_a_byte_changes() {
    let s = hosted();
    let work = TempDir::new("gates");
    let artifacts = work.path().join("artifacts");
    let artifacts = artifacts.to_str().unwrap();

    let (code, pf) = preflight(&s, artifacts, &["--run-gates"]);
    assert_eq!((code, reasons(&pf)), (0, vec![]), "{pf}");
    let names: Vec<&str> = pf["checks"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    for n in [
        "auth_mode_enabled",
        "tenant_quota_enabled",
        "admin_token_strong",
        "api_health",
        "health_gate_scope",
        "consistency_cross_tenant",
        "tiers_file_complete",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let summary_file =
        std::path::Path::new(artifacts).join("preflight").join(pf["run_id"].as_str().unwrap()).join("summary.json");
    assert!(summary_file.exists(), "{}", summary_file.display());

    let data = s.data_dir.to_str().unwrap();
    let (code, out, err) = core_gate(&s, artifacts, &["--data-dir", data, "--json"]);
    let core = json_of(&out, &err);
    assert_eq!((code, reasons(&core)), (0, vec![]), "{core}\n{err}");
    let perf = &core["perf"];
    for k in ["recall_text_p95_ms", "write_p95_ms", "error_rate"] {
        assert!(perf[k].is_number(), "{k}: {perf}");
    }
    assert_eq!(perf["error_rate"], 0.0);
    assert!(core["chain_heads"]["before_teardown"]["commit_hash"].is_string(), "{core}");
    // One file per step beside the summary.
    for f in [
        "00_api_probe.json",
        "01_db_probe.json",
        "02_contract_smoke.json",
        "03_health_gate_scope.json",
        "04_consistency_cross_tenant.json",
        "05_perf_benchmark.json",
        "06_teardown.json",
    ] {
        assert!(
            core["artifacts"].as_object().unwrap().values().any(|p| p.as_str().is_some_and(|p| p.ends_with(f))),
            "{f}"
        );
    }
    // The gate tenant is gone: torn down, its key revoked.
    let tenant = core["target"]["tenant_id"].as_str().unwrap();
    assert!(tenant.starts_with("cairn-gate-"), "{tenant}");
    let status = s.get_with(&format!("/v1/admin/control/tenants/{tenant}/status"), &[("x-admin-token", TOKEN)]);
    assert!(status.body["torn_down_at"].is_string(), "{}", status.text);

    // The evidence bundle, recorded in the audit chain.
    let bundle = work.path().join("bundle");
    let manifest = repo_root().join("spin.toml");
    let (code, out, err) = run(&[
        "release",
        "evidence",
        "--out",
        bundle.to_str().unwrap(),
        "--base-url",
        &s.base,
        "--admin-token",
        TOKEN,
        "--artifacts-dir",
        artifacts,
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let b = bundle.to_str().unwrap();
    let (code, out, _) = run(&["release", "verify", b, "--base-url", &s.base, "--admin-token", TOKEN]);
    assert_eq!(code, 0, "{out}");
    let events = s.get_with("/v1/admin/control/audit-events?action=release.evidence", &[("x-admin-token", TOKEN)]);
    assert_eq!(events.body["events"].as_array().unwrap().len(), 1, "{}", events.text);
    // ... and in the evidence registry, as the receipt says.
    let receipt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("audit_receipt.json")).unwrap()).unwrap();
    let id = receipt["evidence_id"].as_str().expect("the receipt names the registered bundle");
    let got = s.get_with(&format!("/v1/admin/control/evidence/{id}"), &[("x-admin-token", TOKEN)]);
    assert_eq!((got.status, got.body["evidence"]["kind"].as_str()), (200, Some("release_bundle")), "{}", got.text);
    let content: serde_json::Value = serde_json::from_str(got.body["evidence"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["bundle_digest"], receipt["bundle_digest"]);
    let md = std::fs::read_to_string(bundle.join("EVIDENCE.md")).unwrap();
    assert!(md.contains("## Core gate: passed") && md.contains("| gateway |"), "{md}");
    // Any one byte changed, anywhere, fails verification.
    let mut names: Vec<_> = std::fs::read_dir(&bundle).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    assert_eq!(names.len(), 8, "{names:?}");
    for path in &names {
        let original = std::fs::read(path).unwrap();
        let mut changed = original.clone();
        changed[original.len() / 2] ^= 0x01;
        std::fs::write(path, &changed).unwrap();
        let (code, out, err) = run(&["release", "verify", b]);
        assert_ne!(code, 0, "{} changed yet the bundle verified: {out}{err}", path.display());
        std::fs::write(path, &original).unwrap();
    }
    assert_eq!(run(&["release", "verify", b]).0, 0);
    // An extra file is refused too.
    std::fs::write(bundle.join("extra.txt"), "x").unwrap();
    let (code, out, _) = run(&["release", "verify", b]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("extra.txt"), "{out}");
}

#[test]
fn the_core_gate_writes_only_in_gate_tenants() {
    let s = hosted();
    let work = TempDir::new("refuse");
    let artifacts = work.path().to_str().unwrap();
    for (args, says) in [
        (vec!["--tenant", "default"], "only in a gate tenant"),
        (vec!["--tenant", "acme"], "only in a gate tenant"),
        (vec!["--tenant", "cairn-gate", "--scope", "default"], "scope 'default'"),
    ] {
        let (code, out, err) = core_gate(&s, artifacts, &args);
        assert_eq!(code, 1, "{args:?}: {out}\n{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Nothing was created or written.
    let tenants = s.get_with("/v1/admin/control/tenants", &[("x-admin-token", TOKEN)]);
    assert_eq!(tenants.body["tenants"].as_array().map(Vec::len), Some(0), "{}", tenants.text);
    let commits = s.get_with("/v1/admin/control/audit-events", &[("x-admin-token", TOKEN)]);
    assert_eq!(commits.body["events"].as_array().map(Vec::len), Some(0), "{}", commits.text);
}

#[test]
fn a_misconfigured_server_fails_preflight_the_core_gate_and_the_ci_stage() {
    // Auth off: preflight names it.
    let open = Server::start_with(Options { admin_token: Some(TOKEN.into()), ..Default::default() });
    let work = TempDir::new("failing");
    let artifacts = work.path().join("artifacts");
    let artifacts = artifacts.to_str().unwrap();
    let listen = format!("127.0.0.1:{}", open.port);
    let (code, out, err) = run(&[
        "preflight",
        "--json",
        "--listen",
        &listen,
        "--admin-token",
        TOKEN,
        "--embedder",
        "lexical",
        "--artifacts-dir",
        artifacts,
    ]);
    let pf = json_of(&out, &err);
    assert_eq!(code, 2);
    assert!(reasons(&pf).contains(&"auth_mode_enabled") && reasons(&pf).contains(&"tenant_quota_enabled"), "{pf}");
    // The core gate pointed at the wrong data dir: it refuses to go on.
    let other = Server::start();
    let (code, out, _) =
        core_gate(&open, artifacts, &["--data-dir", other.data_dir.to_str().unwrap(), "--run-perf", "false"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("FAILED: db_target_match"), "{out}");
    // Bad flags are 1, not the gates' 2.
    assert_eq!(run(&["gate", "core", "--no-such-flag"]).0, 1);

    // The CI stage on a server with auth off fails, with the gate's code.
    let st = Command::new(repo_root().join("tools/hosted-staging.sh"))
        .env("CAIRN_STAGING_AUTH_MODE", "off")
        .env("CAIRN_BIN", cairn_e2e::cairn_bin())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&st.stdout);
    assert_eq!(st.status.code(), Some(2), "{out}\n{}", String::from_utf8_lossy(&st.stderr));
    assert!(
        out.contains("hosted staging: preflight failed (2)") && out.contains("FAIL  error    auth_mode_enabled"),
        "{out}"
    );
}

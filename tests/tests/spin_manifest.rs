//! The app manifest as Spin 4.0 reads it, on the real `cairn` binary:
//! manifests Spin refuses make `cairn up` exit with an equivalent message,
//! and a dependency that does not inherit its parent's configuration gets
//! Spin's deny-all answers (docs/spin.md).

use cairn_e2e::{Options, Server, TempDir, cairn_bin, free_port, manifest_variant, replace_once, repo_root};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cairn up` on `manifest`; it must exit unsuccessfully before it
/// serves. Returns what it printed.
fn refused(manifest: &PathBuf) -> String {
    let data = TempDir::new("refused-data");
    let mut child = Command::new(cairn_bin())
        .arg("up")
        .args(["--listen", &format!("127.0.0.1:{}", free_port()), "--no-cron"])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--manifest")
        .arg(manifest)
        .arg("--tiers")
        .arg(repo_root().join("config/tiers.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("cairn up kept running on a manifest it should refuse");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "cairn up should fail; it printed:\n{err}");
    err
}

/// A case: its name, how it edits the manifest, what the refusal says.
type Case = (&'static str, Box<dyn Fn(String) -> String>, &'static str);

#[test]
fn manifests_spin_refuses_are_refused_with_its_reasons() {
    let cases: Vec<Case> = vec![
        (
            "unmatched",
            Box::new(|t| replace_once(t, "\"cairn:memory/memory@0.1.0\" =", "\"cairn:kernel/memory@0.1.0\" =")),
            "dependency 'cairn:kernel/memory@0.1.0' doesn't match any imports of component 'gateway'",
        ),
        (
            "both-inherit-switches",
            Box::new(|t| {
                replace_once(t, "cairn_kernel.wasm\" }", "cairn_kernel.wasm\", inherit_configuration = true }")
            }),
            "mutually exclusive",
        ),
        ("unknown-field", Box::new(|t| replace_once(t, "ai_models = [", "ai_model = [")), "unknown field `ai_model`"),
        (
            "variable-without-value",
            Box::new(|t| replace_once(t, "billing = { default = \"enabled\" }", "billing = { }")),
            "must be `required` OR have a `default`",
        ),
        (
            "dependency-conflict",
            Box::new(|t| replace_once(t, "\"cairn:policy/policy@0.1.0\" =", "\"cairn:memory\" =")),
            "dependency conflicts with",
        ),
    ];
    for (tag, edit, expected) in cases {
        let (_dir, manifest) = manifest_variant(tag, edit);
        let err = refused(&manifest);
        assert!(err.contains(expected), "{tag}: expected {expected:?} in:\n{err}");
    }
}

#[test]
fn a_dependency_without_sqlite_is_denied_the_database() {
    let (_dir, manifest) = manifest_variant("deny", |t| {
        let t = replace_once(t, "dependencies_inherit_configuration = true\n", "");
        let t = replace_once(
            t,
            "cairn_kernel.wasm\" }",
            "cairn_kernel.wasm\", inherit_configuration = [\"variables\", \"ai_models\"] }",
        );
        let t = replace_once(t, "cairn_policy.wasm\" }", "cairn_policy.wasm\", inherit_configuration = true }");
        replace_once(t, "cairn_control.wasm\" }", "cairn_control.wasm\", inherit_configuration = true }")
    });
    let s =
        Server::start_with(Options { manifest: Some(manifest), admin_token: Some("adm".into()), ..Default::default() });
    let r = s.post(
        "/v1/memory/write",
        &json!({"input_text": "x", "nodes": [{"client_id": "e1", "type": "event", "text_summary": "denied"}]}),
    );
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["error"], "database_unavailable");
    // SQLite's denial, or PostgreSQL's (the address is not granted).
    let denied = match cairn_e2e::backend() {
        cairn_e2e::Backend::Sqlite => "access to the database denied",
        cairn_e2e::Backend::Postgres => "does not inherit allowed_outbound_hosts",
    };
    assert!(r.body["message"].as_str().unwrap().contains(denied), "{}", r.text);
    // The control plane inherits everything and still reaches the database.
    let r = s.get_with("/v1/admin/control/tenants", &[("x-admin-token", "adm")]);
    assert_eq!(r.status, 200, "{}", r.text);
}

/// `cairn up --manifest DIR/spin.toml` from another directory reads the
/// tiers file beside the manifest, as it resolves the component paths.
#[test]
fn a_manifest_elsewhere_brings_its_tiers_file() {
    let cwd = TempDir::new("elsewhere");
    let data = TempDir::new("elsewhere-data");
    let port = free_port();
    let mut child = Command::new(cairn_bin())
        .arg("up")
        .args(["--listen", &format!("127.0.0.1:{port}"), "--no-cron", "--embedder", "lexical"])
        .args(["--admin-token", "elsewhere-token"])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--manifest")
        .arg(repo_root().join("spin.toml"))
        .env_remove("CAIRN_TIERS")
        .current_dir(cwd.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let deadline = Instant::now() + Duration::from_secs(120);
    let tiers = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("cairn up exited ({status}) run from another directory: {err}");
        }
        if let Ok(mut r) = agent
            .get(format!("http://127.0.0.1:{port}/v1/admin/control/tiers"))
            .header("x-admin-token", "elsewhere-token")
            .call()
        {
            break r.body_mut().read_json::<serde_json::Value>().unwrap();
        }
        assert!(Instant::now() < deadline, "cairn up did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let names: Vec<&str> = tiers["tiers"].as_array().unwrap().iter().filter_map(|t| t["tier"].as_str()).collect();
    assert!(names.contains(&"enterprise") && names.contains(&"solo"), "{tiers}");
}

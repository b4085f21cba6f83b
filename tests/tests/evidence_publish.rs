//! Publishing a signed evidence bundle to an HTTP target on the real
//! binary: a target that fails twice gets the bundle on the third attempt
//! (every file's sha256 as the signed index says); a target that keeps
//! failing dead-letters the job, which is listed, audited, replayed once the
//! target recovers and then delivered by the worker; a public http:// target
//! is refused.

use cairn_e2e::{Options, Receiver, Server, TempDir, cairn};
use serde_json::{Value, json};

const TOKEN: &str = "publish-token";

fn admin_post(s: &Server, path: &str, body: Value) -> Value {
    let r = s.post_with(&format!("/v1/admin/control/{path}"), &body, &[("x-admin-token", TOKEN)]);
    assert_eq!(r.status, 200, "{path} {body}: {}", r.text);
    r.body
}

fn admin_get(s: &Server, path: &str) -> Value {
    let r = s.get_with(&format!("/v1/admin/control/{path}"), &[("x-admin-token", TOKEN)]);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body
}

fn job(s: &Server, args: &[&str]) -> (i32, Value, String) {
    let data = s.data_dir.to_str().unwrap().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["--data-dir", &data, "--embedder", "lexical", "--var", "alert_loopback_targets=true"]);
    let (st, out, err) = cairn(&all);
    (st.code().unwrap(), serde_json::from_str(&out).unwrap_or(Value::Null), format!("{out}\n{err}"))
}

fn publish(s: &Server, target: &str, attempts: &str) -> (i32, Value, String) {
    job(
        s,
        &[
            "job",
            "evidence",
            "publish",
            "--tenant",
            "acme",
            "--target",
            target,
            "--max-attempts",
            attempts,
            "--retry-base-ms",
            "20",
            "--retry-max-ms",
            "100",
            "--signing-key-env",
            "CAIRN_TEST_PUBLISH_KEY",
        ],
    )
}

#[test]
fn a_bundle_reaches_a_flaky_target_and_a_dead_letter_is_replayed() {
    // SAFETY: only this test reads or writes this variable.
    unsafe { std::env::set_var("CAIRN_TEST_PUBLISH_KEY", "publish-signing-key") };
    let dir = TempDir::new("publish");
    let s = Server::start_on(
        dir.path(),
        &Options {
            admin_token: Some(TOKEN.into()),
            extra_args: vec!["--var".into(), "alert_loopback_targets=true".into()],
            ..Default::default()
        },
    );
    admin_post(&s, "tenants/acme/provision", json!({"tier": "starter"}));
    admin_post(&s, "evidence", json!({"kind": "replay_drill", "tenant_id": "acme", "content": "{\"ok\": true}"}));
    admin_post(&s, "evidence", json!({"kind": "weekly_report", "content": "{\"summary\": {\"ok\": true}}"}));

    // Two failures, then a 200: delivered on the third attempt.
    let flaky = Receiver::start(&[503, 502, 200]);
    let (code, out, log) = publish(&s, &flaky.url("/bundles"), "5");
    assert_eq!(code, 0, "{log}");
    assert_eq!((out["job"]["status"].as_str(), out["job"]["attempts"].as_i64()), (Some("succeeded"), Some(3)), "{out}");
    let got = flaky.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    let (headers, body) = got.last().unwrap();
    let upload: Value = serde_json::from_str(body).unwrap();
    let index_text = upload["index_text"].as_str().unwrap();
    let sha = cairn_core::digest::sha256_hex(index_text);
    assert!(headers.iter().any(|(k, v)| k == "x-cairn-bundle-sha256" && *v == sha), "{headers:?}");
    assert!(headers.iter().any(|(k, v)| k == "x-cairn-publish-attempt" && v == "3"), "{headers:?}");
    assert_eq!(
        upload["signature"]["signature_hex"].as_str().unwrap(),
        cairn_core::auth::hmac_sha256_hex(b"publish-signing-key", index_text.as_bytes())
    );
    let index: Value = serde_json::from_str(index_text).unwrap();
    let files = index["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "acme's drill, the deployment's report, registry.json: {index}");
    for f in files {
        let text = upload["files"][f["path"].as_str().unwrap()].as_str().unwrap();
        assert_eq!(f["sha256"].as_str().unwrap(), cairn_core::digest::sha256_hex(text));
    }

    // A target that stays down: dead-lettered after 2 attempts, exit 2.
    let down = Receiver::start(&[500]);
    let (code, out, log) = publish(&s, &down.url("/bundles"), "2");
    assert_eq!(code, 2, "{log}");
    let dead = out["job"].clone();
    assert_eq!((dead["status"].as_str(), dead["attempts"].as_i64()), (Some("dead_letter"), Some(2)), "{out}");
    assert!(dead["last_error"].as_str().unwrap().contains("answered 500"), "{dead}");
    let listed = admin_get(&s, "evidence/publish-jobs?status=dead_letter");
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(listed["jobs"][0]["job_id"], dead["job_id"]);
    let events = admin_get(&s, "audit-events?action=evidence.publish.dead_letter");
    assert_eq!(events["events"][0]["resource_id"], dead["job_id"]);

    // The target recovers; the dead letter is previewed, replayed and sent.
    down.answer(200);
    let (code, out, log) = job(&s, &["job", "evidence", "publish-replay", "--tenant", "acme", "--dry-run"]);
    assert_eq!((code, out["replayed"].as_i64(), out["jobs"].as_array().map(Vec::len)), (0, Some(0), Some(1)), "{log}");
    let (code, out, log) = job(&s, &["job", "evidence", "publish-replay", "--tenant", "acme"]);
    assert_eq!((code, out["replayed"].as_i64()), (0, Some(1)), "{log}");
    let (code, out, log) = job(&s, &["job", "evidence", "publish-worker"]);
    assert_eq!((code, out["attempted"].as_i64()), (0, Some(1)), "{log}");
    assert_eq!(out["jobs"][0]["status"], "succeeded", "{out}");
    assert_eq!(down.got.lock().unwrap().len(), 3);
    let (_, out, _) = job(&s, &["job", "evidence", "publish-worker"]);
    assert_eq!(out["attempted"], 0, "nothing left to send");

    // A public http:// target is refused before anything is queued.
    let (code, _, log) = publish(&s, "http://example.com/bundles", "2");
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("https://"), "{log}");
    assert_eq!(admin_get(&s, "evidence/publish-jobs")["jobs"].as_array().unwrap().len(), 2);
}

//! `GET /openapi.json`, black box: the document the running server serves
//! validates as OpenAPI 3.1 (`openapi-spec-validator`), every operation it
//! names reaches a handler (no "no route", no 405), and a schema-driven
//! fuzz (`schemathesis`) against a fresh server gets no 5xx and only
//! responses that fit the documented schemas. The pinned PyPI packages go
//! into a venv cached under ~/.cache/cairn the first time (as in
//! sdk_compat.rs). docs/openapi.md says how to run the fuzz longer.

use cairn_e2e::{Options, Server, TempDir, pip_venv};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The PyPI versions this test pins.
const PACKAGES: &[&str] = &["schemathesis==4.32.5", "openapi-spec-validator==0.9.0"];
const TOKEN: &str = "openapi-admin";

/// Routes that answer 501 on PostgreSQL until their checks are ported
/// (docs/postgres.md).
const UNPORTED_ON_POSTGRES: &[&str] = &["/v1/admin/control/consistency-check", "/v1/admin/control/health-gate"];

fn unported_on_this_backend(path: &str) -> bool {
    cairn_e2e::backend() == cairn_e2e::Backend::Postgres && UNPORTED_ON_POSTGRES.contains(&path)
}

fn venv_python() -> PathBuf {
    pip_venv("CAIRN_OPENAPI_VENV", PACKAGES, "import schemathesis, openapi_spec_validator")
}

fn admin_server() -> Server {
    Server::start_with(Options { admin_token: Some(TOKEN.into()), ..Default::default() })
}

/// Runs `cmd` for at most `limit`, killing it (by its pid) past that.
fn run_bounded(mut cmd: Command, limit: Duration) -> (bool, String) {
    let dir = TempDir::new("openapi-run");
    let out_path = dir.path().join("out.txt");
    let out = std::fs::File::create(&out_path).expect("output file");
    let mut child =
        cmd.stdout(Stdio::from(out.try_clone().expect("dup"))).stderr(Stdio::from(out)).spawn().expect("spawn");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        Some(s) => (s.success(), text),
        None => (false, format!("{text}\n[killed after {}s]", limit.as_secs())),
    }
}

#[test]
fn the_served_document_is_valid_openapi_3_1() {
    let python = venv_python();
    let s = admin_server();
    let r = s.get("/openapi.json");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")));
    assert_eq!(r.body["openapi"], "3.1.0");
    // The document needs no credentials and no allowed Host (like /health).
    let r2 = s.get_with("/openapi.json", &[("host", "docs.example")]);
    assert_eq!((r2.status, &r2.body), (200, &r.body));
    let dir = TempDir::new("openapi-doc");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &r.text).unwrap();
    let script = "import json, sys\n\
                  from openapi_spec_validator import validate\n\
                  from openapi_spec_validator.validation import OpenAPIV31SpecValidator\n\
                  validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n\
                  print('valid')\n";
    let out = Command::new(python).arg("-c").arg(script).arg(&file).output().expect("run the validator");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("valid"), "openapi-spec-validator: {text}");
}

/// What a request that reached no handler answers: the gateway's,
/// control plane's, derivation's or host's "no route" 404, or a 405.
fn unrouted(r: &cairn_e2e::Resp) -> bool {
    let msg = r.body["message"].as_str().unwrap_or_default();
    r.status == 405 || (r.status == 404 && (msg.starts_with("no route") || msg.starts_with("no admin route")))
}

#[test]
fn every_documented_operation_reaches_a_handler() {
    let s = admin_server();
    let doc = s.get("/openapi.json").body;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        // A tenant that exists only for this probe: teardown is idempotent.
        let url = path
            .replace("{tenant_id}", "openapi-probe")
            .replace("{session_id}", "s1")
            .replace("{id}", "x")
            .replace("{file}", "app.js");
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let auth =
                if path == "/metrics" { ("authorization", "Bearer openapi-admin") } else { ("x-admin-token", TOKEN) };
            let r = match method {
                "get" => s.get_with(&url, &[auth]),
                "post" => s.post_with(&url, &json!({}), &[auth]),
                "put" => s.put_with(&url, &json!({}), &[auth]),
                _ => s.delete_with(&url, &[auth]),
            };
            assert!(!unrouted(&r), "{method} {url}: {} {}", r.status, r.text);
            if r.status == 501 && unported_on_this_backend(path) {
                checked += 1;
                continue;
            }
            assert!(r.status < 500, "{method} {url}: {} {}", r.status, r.text);
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} operations");
    // And the check itself tells an unrouted request apart.
    assert!(unrouted(&s.get_with("/v1/admin/control/nope", &[("x-admin-token", TOKEN)])));
    assert!(unrouted(&s.get("/v1/memory/nope")));
}

/// The fuzz: schemathesis's coverage, fuzzing and stateful phases over
/// every operation, a few examples each, with the admin token (memory auth
/// off, so memory routes need none). Checks: no 5xx, and 2xx/4xx bodies fit
/// the documented schemas. Bounded by example count, per-request timeout,
/// the run's own time budget and a wall-clock kill. `CAIRN_FUZZ_EXAMPLES`,
/// `CAIRN_FUZZ_SECONDS` and `CAIRN_FUZZ_SEED` widen or vary it.
#[test]
fn schemathesis_finds_no_server_errors() {
    let python = venv_python();
    let s = admin_server();
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (examples, seconds, seed) =
        (env("CAIRN_FUZZ_EXAMPLES", 8), env("CAIRN_FUZZ_SECONDS", 150), env("CAIRN_FUZZ_SEED", 16));
    let schemathesis = python.parent().expect("bin").join("schemathesis");
    let mut cmd = Command::new(schemathesis);
    cmd.args(["run", &format!("{}/openapi.json", s.base)])
        .args(["--header", &format!("X-Admin-Token: {TOKEN}")])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--phases", "coverage,fuzzing,stateful"])
        .args(["--max-examples", &examples.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--max-time", &seconds.to_string()])
        .args(["--request-timeout", "20", "--workers", "1", "--generation-database", "none"])
        .args(["--no-color", "--suppress-health-check", "all"]);
    for path in UNPORTED_ON_POSTGRES.iter().filter(|p| unported_on_this_backend(p)) {
        cmd.args(["--exclude-path", path]);
    }
    cmd.env("SCHEMATHESIS_HOOKS", "").current_dir(s.data_dir.clone());
    let started = Instant::now();
    let (ok, out) = run_bounded(cmd, Duration::from_secs(seconds + 90));
    let tail: String = out.lines().rev().take(200).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(ok, "schemathesis found problems:\n{tail}\nserver log (tail):\n{}", log_tail(&s));
    assert!(summary_line(&out).contains(" generated"), "schemathesis ran no test case:\n{tail}");
    eprintln!("schemathesis: {:.0}s, {}", started.elapsed().as_secs_f64(), summary_line(&out));
    // The server is still healthy after the run.
    assert_eq!(s.get("/health").status, 200);
}

/// Found while probing what the fuzz does not send: the derive component
/// read a body that is not UTF-8 as an empty one, so a tick or a check ran
/// with its defaults (200) on garbage. Now `400 invalid_json`, with the
/// envelope.
#[test]
fn derive_routes_refuse_bodies_that_are_not_utf8() {
    let s = admin_server();
    for path in ["/v1/admin/derive/tick", "/v1/admin/control/consistency-check", "/v1/admin/control/health-gate"] {
        if unported_on_this_backend(path) {
            continue;
        }
        let r = s.post_raw(path, b"\xff\xfe{}", &[("x-admin-token", TOKEN)]);
        assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_json")), "{path}: {}", r.text);
        assert!(r.body["message"].is_string());
        assert_eq!(s.post_raw(path, b"", &[("x-admin-token", TOKEN)]).status, 200, "{path}: an empty body is {{}}");
    }
}

fn summary_line(out: &str) -> String {
    // "20813 generated, 20813 passed" (not the warnings that mention generated data).
    out.lines()
        .map(str::trim)
        .find(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains(" generated"))
        .unwrap_or("")
        .to_string()
}

fn log_tail(s: &Server) -> String {
    let log = s.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("status=5") || l.contains("ERROR")).collect();
    lines.iter().rev().take(40).rev().cloned().collect::<Vec<_>>().join("\n")
}

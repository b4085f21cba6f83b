//! Alerts that reach someone: an SLO breach in a tenant's telemetry makes
//! `cairn job alert-dispatch` deliver one signed webhook to a local
//! receiver; the second evaluation is deduplicated, a route in a quiet
//! window is suppressed, and every decision is a recorded delivery.

use cairn_e2e::{Options, Received, Receiver, Server, cairn};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "alerts-test-admin-token";
const ADMIN: &[(&str, &str)] = &[("x-admin-token", TOKEN)];

/// A webhook receiver on a free port, answering 200 to every POST.
fn receiver() -> (u16, Arc<Mutex<Vec<Received>>>) {
    let r = Receiver::start(&[200]);
    (r.port, r.got)
}

fn dispatch(s: &Server) -> Value {
    let data = s.data_dir.to_str().unwrap();
    let (st, out, err) = cairn(&["job", "alert-dispatch", "--embedder", "lexical", "--data-dir", data]);
    assert!(st.success(), "{out}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn route(s: &Server, body: Value) -> Value {
    let r = s.post_with("/v1/admin/control/alerts/routes", &body, ADMIN);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["route"].clone()
}

#[test]
fn an_slo_breach_is_delivered_once_signed_then_deduplicated_and_quieted() {
    let (port, got) = receiver();
    let s = Server::start_with(Options {
        admin_token: Some(TOKEN.into()),
        extra_args: vec!["--var".into(), "alert_loopback_targets=true".into()],
        ..Default::default()
    });
    // Targets: loopback only because this server allows it; private or
    // plain-http public targets never.
    for target in ["https://10.0.0.1/hook", "http://alerts.example.com/hook", "https://localhost.internal/x"] {
        let r = s.post_with(
            "/v1/admin/control/alerts/routes",
            &json!({"tenant_id": "default", "channel": "webhook", "target": target}),
            ADMIN,
        );
        assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_alert_target")), "{target}: {}", r.text);
    }
    let hook = route(&s, json!({"tenant_id": "default", "channel": "webhook", "label": "on-call",
                                "target": format!("http://127.0.0.1:{port}/hook"), "secret": "s3cret"}));
    assert!(hook.get("secret").is_none(), "the secret is never returned");

    // Nothing wrong yet: nothing sent.
    let quiet = dispatch(&s);
    assert_eq!((quiet["sent"].as_i64(), quiet["failed"].as_i64()), (Some(0), Some(0)), "{quiet}");

    // A failed request in the default tier's telemetry: availability 99% breached.
    let now = cairn_core::time_fmt::rfc3339_millis(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64,
    );
    // The control schema exists once the admin API ran (it did, above).
    s.tamper(&format!(
        "INSERT INTO memory_request_telemetry (tenant_id, endpoint, status_code, latency_ms, created_at) \
         VALUES ('default', 'write', 503, 1, '{now}')"
    ));
    let first = dispatch(&s);
    assert_eq!(first["sent"], 1, "{first}");
    let received = got.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (headers, body) = &received[0];
    let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    let ts = header("x-aionis-signature-ts");
    let expected = cairn_core::auth::hmac_sha256_hex(b"s3cret", format!("{ts}.{body}").as_bytes());
    assert_eq!(header("x-aionis-signature"), expected, "a valid HMAC over <ts>.<body>");
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!((event["event_type"].as_str(), event["severity"].as_str()), (Some("slo_at_risk"), Some("critical")));
    assert_eq!(event["tenant_id"], "default");
    assert_eq!(event["route"]["label"], "on-call");
    assert!(event["summary"].as_str().unwrap().contains("availability"), "{event}");

    // The same breach again: deduplicated, not resent.
    let second = dispatch(&s);
    assert_eq!((second["sent"].as_i64(), second["skipped"].as_i64()), (Some(0), Some(1)), "{second}");
    assert_eq!(got.lock().unwrap().len(), 1);

    // A second route inside an all-day quiet window: suppressed.
    route(&s, json!({"tenant_id": "default", "channel": "webhook", "target": format!("http://127.0.0.1:{port}/quiet"),
                     "metadata": {"policy": {"quiet_windows": [{"start": "00:00", "end": "23:59", "mode": "suppress"},
                                                               {"start": "23:59", "end": "00:00", "mode": "suppress"}]}}}));
    let third = dispatch(&s);
    assert_eq!((third["sent"].as_i64(), third["skipped"].as_i64()), (Some(0), Some(2)), "{third}");
    assert_eq!(got.lock().unwrap().len(), 1);

    // Every decision is a delivery on record.
    let d = s.get_with("/v1/admin/control/alerts/deliveries?tenant_id=default", ADMIN);
    assert_eq!(d.status, 200, "{}", d.text);
    let rows = d.body["deliveries"].as_array().unwrap();
    let count = |status: &str, error: Option<&str>| {
        rows.iter().filter(|r| r["status"] == status && error.is_none_or(|e| r["error"] == e)).count()
    };
    assert_eq!(count("sent", None), 1);
    assert_eq!(count("skipped", Some("dedupe")), 2);
    assert_eq!(count("skipped", Some("quiet_window_suppressed")), 1);
    let sent = rows.iter().find(|r| r["status"] == "sent").unwrap();
    assert_eq!(sent["response_code"], 200);

    // A disabled route is not evaluated; the audit log has both changes.
    let id = hook["id"].as_str().unwrap();
    let r = s.post_with(&format!("/v1/admin/control/alerts/routes/{id}/status"), &json!({"status": "disabled"}), ADMIN);
    assert_eq!((r.status, r.body["route"]["status"].as_str()), (200, Some("disabled")), "{}", r.text);
    let listed = s.get_with("/v1/admin/control/alerts/routes?status=active", ADMIN);
    assert_eq!(listed.body["routes"].as_array().unwrap().len(), 1);
    let audit = s.get_with("/v1/admin/control/audit-events", ADMIN);
    let actions: Vec<&str> = audit.body["events"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"alert_route.create") && actions.contains(&"alert_route.status"), "{actions:?}");
}

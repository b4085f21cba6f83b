//! `cairn job alert-dispatch`: the host's half of alert delivery. The derive
//! component plans (events × routes, policy, exact bodies); this sends each
//! delivery — webhooks and Slack signed when the route has a secret
//! (`x-aionis-signature-ts: <unix s>`, `x-aionis-signature:
//! hex(HMAC-SHA256(secret, "<ts>.<body>"))`, the reference's headers) — and
//! hands the outcomes back to be recorded.

use crate::derive_calls::{self, Verb};
use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// PagerDuty's Events v2 endpoint, when a route gives none.
const PAGERDUTY_DEFAULT: &str = "https://events.pagerduty.com/v2/enqueue";

/// The signature headers of `body` at `ts` (unix seconds) with `secret`.
pub fn signature_headers(secret: &str, ts: i64, body: &str) -> [(String, String); 2] {
    let sig = cairn_core::auth::hmac_sha256_hex(secret.as_bytes(), format!("{ts}.{body}").as_bytes());
    [("x-aionis-signature-ts".into(), ts.to_string()), ("x-aionis-signature".into(), sig)]
}

/// Plans, sends and records one dispatch; returns the summary printed.
pub async fn dispatch(
    app: &Arc<crate::app::App>,
    dry_run: bool,
    tenant: Option<String>,
    timeout: Duration,
    rid: &str,
) -> Result<Value> {
    let plan =
        derive_calls::call_ok(app, Verb::AlertPlan(json!({"dry_run": dry_run, "tenant_id": tenant})), rid).await?;
    let deliveries = plan["deliveries"].as_array().cloned().unwrap_or_default();
    let skipped = plan["skipped"].as_array().map_or(0, Vec::len);
    if dry_run {
        // Secrets stay in the database: a dry run shows where, not how.
        let shown: Vec<Value> = deliveries
            .iter()
            .map(|d| {
                json!({"route_id": d["route_id"], "tenant_id": d["tenant_id"], "event_type": d["event_type"],
                            "severity": d["severity"], "target": d["target"], "dedupe_key": d["dedupe_key"]})
            })
            .collect();
        return Ok(json!({"ok": true, "dry_run": true, "would_send": shown, "skipped": plan["skipped"]}));
    }
    let client = http_client();
    let mut results = Vec::new();
    let (mut sent, mut failed) = (0, 0);
    for d in &deliveries {
        let body = d["body"].as_str().unwrap_or("{}").to_string();
        let target = match (d["channel"].as_str(), d["target"].as_str()) {
            (Some("pagerduty_events"), None | Some("")) => PAGERDUTY_DEFAULT.to_string(),
            (_, t) => t.unwrap_or_default().to_string(),
        };
        let mut headers: Vec<(String, String)> = d["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect();
        if d["channel"] != "pagerduty_events"
            && let Some(secret) = d["secret"].as_str()
        {
            headers.extend(signature_headers(secret, chrono::Utc::now().timestamp(), &body));
        }
        let outcome = post_json(&client, &target, &headers, body, timeout).await;
        let base = json!({"delivery_id": d["delivery_id"], "route_id": d["route_id"], "tenant_id": d["tenant_id"],
                          "event_type": d["event_type"], "dedupe_key": d["dedupe_key"], "severity": d["severity"]});
        let mut r = base;
        match outcome {
            Ok((code, text)) if (200..300).contains(&code) => {
                sent += 1;
                r["status"] = json!("sent");
                r["response_code"] = json!(code);
                r["response_body"] = json!(text);
            }
            Ok((code, text)) => {
                failed += 1;
                r["status"] = json!("failed");
                r["response_code"] = json!(code);
                r["response_body"] = json!(text);
                r["error"] = json!(format!("the target answered {code}"));
            }
            Err(e) => {
                failed += 1;
                r["status"] = json!("failed");
                r["error"] = json!(e);
            }
        }
        tracing::info!(route = %d["route_id"], event = %d["event_type"], status = %r["status"], "alert delivery");
        results.push(r);
    }
    if !results.is_empty() {
        derive_calls::call_ok(app, Verb::AlertRecord(json!({"results": results})), rid).await?;
    }
    Ok(json!({"ok": true, "dry_run": false, "sent": sent, "failed": failed, "skipped": skipped, "deliveries": results}))
}

/// An HTTP(S) client for outbound deliveries (alerts, evidence bundles).
pub type HttpClient =
    Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>;

pub fn http_client() -> HttpClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
    Client::builder(TokioExecutor::new()).build(https)
}

/// POSTs `body` as JSON with `headers`: the answer's status and text, or
/// why there was none.
pub async fn post_json(
    client: &HttpClient,
    target: &str,
    headers: &[(String, String)],
    body: String,
    timeout: Duration,
) -> std::result::Result<(u16, String), String> {
    let mut req = hyper::Request::post(target).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.body(Full::new(Bytes::from(body))) {
        Err(e) => Err(format!("request: {e}")),
        Ok(req) => match tokio::time::timeout(timeout, client.request(req)).await {
            Err(_) => Err(format!("no answer in {timeout:?}")),
            Ok(Err(e)) => Err(format!("{e}")),
            Ok(Ok(resp)) => {
                let code = resp.status().as_u16();
                let text =
                    resp.into_body().collect().await.map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned());
                Ok((code, text.unwrap_or_default()))
            }
        },
    }
}

/// `cairn up`'s schedule: a dispatch every `every` (a failure is logged;
/// the next run tries again).
pub fn schedule(app: Arc<crate::app::App>, every: Duration) -> tokio::task::JoinHandle<()> {
    tracing::info!(every_secs = every.as_secs(), "alert dispatch scheduled");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            match dispatch(&app, false, None, Duration::from_secs(8), "alert-schedule").await {
                Ok(r) if r["sent"].as_i64().unwrap_or(0) + r["failed"].as_i64().unwrap_or(0) > 0 => {
                    tracing::info!(sent = %r["sent"], failed = %r["failed"], skipped = %r["skipped"], "alert dispatch")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = format!("{e:#}"), "alert dispatch failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_over_ts_and_body() {
        // RFC 4231 case 2's key and message, split as "<ts>.<body>".
        let [ts, sig] = signature_headers("Jefe", 0, "what do ya want for nothing?");
        assert_eq!(ts, ("x-aionis-signature-ts".to_string(), "0".to_string()));
        let expected = cairn_core::auth::hmac_sha256_hex(b"Jefe", b"0.what do ya want for nothing?");
        assert_eq!(sig.1, expected);
        assert_eq!(
            cairn_core::auth::hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

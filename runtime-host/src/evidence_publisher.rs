//! The host's half of the evidence publish queue: POSTs the bundles the
//! queue hands out (`evidence-publish {op: claim}`) and records each
//! outcome (`record`), so the queue (crates/cairn-control-plane,
//! evidence_publish) decides retry, backoff and dead letter.
//! Each POST carries `x-cairn-bundle-sha256` (the index's sha256) and
//! `x-cairn-publish-attempt`; any 2xx is success.

use crate::alert_sender::{http_client, post_json};
use crate::app::App;
use crate::derive_calls::{self, Verb};
use anyhow::{Result, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// One pass: claims the due jobs (only `job_id` when given), sends each once
/// and records the outcome; returns the jobs as recorded.
pub async fn pass(app: &Arc<App>, rid: &str, job_id: Option<&str>, timeout: Duration) -> Result<Vec<Value>> {
    let claimed =
        derive_calls::call_ok(app, Verb::EvidencePublish(json!({"op": "claim", "job_id": job_id, "limit": 10})), rid)
            .await?;
    let client = http_client();
    let mut out = Vec::new();
    for j in claimed["jobs"].as_array().into_iter().flatten() {
        let (id, target) = (j["job_id"].as_str().unwrap_or(""), j["target"].as_str().unwrap_or(""));
        let headers = [
            ("x-cairn-bundle-sha256".to_string(), j["index_sha256"].as_str().unwrap_or("").to_string()),
            ("x-cairn-publish-attempt".to_string(), j["attempt"].to_string()),
        ];
        let outcome =
            post_json(&client, target, &headers, j["payload"].as_str().unwrap_or("").to_string(), timeout).await;
        let record = match &outcome {
            Ok((code, _)) if (200..300).contains(code) => {
                json!({"op": "record", "job_id": id, "ok": true, "response_code": code})
            }
            Ok((code, text)) => json!({"op": "record", "job_id": id, "ok": false, "response_code": code,
                                       "error": format!("the target answered {code}: {}", text.chars().take(200).collect::<String>())}),
            Err(e) => json!({"op": "record", "job_id": id, "ok": false, "error": e}),
        };
        let recorded = derive_calls::call_ok(app, Verb::EvidencePublish(record), rid).await?;
        let job = recorded["job"].clone();
        tracing::info!(job = id, target, attempt = %j["attempt"], status = %job["status"], "evidence publish attempt");
        out.push(job);
    }
    Ok(out)
}

/// Attempts job `job_id` until it succeeds or is dead-lettered, waiting
/// out each backoff; returns the job's last state.
pub async fn drive(app: &Arc<App>, rid: &str, job_id: &str, timeout: Duration) -> Result<Value> {
    loop {
        let attempts = pass(app, rid, Some(job_id), timeout).await?;
        let Some(job) = attempts.into_iter().last() else {
            bail!("publish job {job_id} was not claimable (another worker holds it?)");
        };
        match job["status"].as_str() {
            Some("succeeded") | Some("dead_letter") => return Ok(job),
            _ => {
                let next =
                    job["next_attempt_at"].as_str().and_then(cairn_core::time_fmt::parse_rfc3339_millis).unwrap_or(0);
                let now = chrono::Utc::now().timestamp_millis();
                let wait = Duration::from_millis((next - now).max(0) as u64);
                eprintln!(
                    "evidence publish: attempt {} failed ({}); next in {:.1} s",
                    job["attempts"],
                    job["last_error"].as_str().unwrap_or(""),
                    wait.as_secs_f64()
                );
                // Due an instant after the recorded time: the queue's clock is ms.
                tokio::time::sleep(wait + Duration::from_millis(5)).await;
            }
        }
    }
}

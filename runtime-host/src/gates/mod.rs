//! Release gates (reference §8.1–§8.2, docs/operations.md): `cairn
//! preflight` checks a configuration before it serves; `cairn gate core`
//! checks a live server. Both write `artifacts/<gate>/<run_id>/summary.json`
//! and exit 0 (pass), 2 (failed) or 1 (could not run).
//!
//! The shared pieces: a check row, the verdict, run ids and artifacts, an
//! HTTP client for probing a server, and the isolated gate tenant.

pub mod core;
pub mod evidence;
pub mod preflight;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The tenant gates write in (created and torn down by `cairn gate core`);
/// perf and writes are refused anywhere else.
pub const GATE_TENANT: &str = "cairn-gate";
/// The scope the health gate checks (preflight `--run-gates`).
pub const GATE_SCOPE: &str = "gate";

/// Whether a tenant is a gate tenant (`cairn-gate`, `cairn-gate-<suffix>`).
pub fn is_gate_tenant(t: &str) -> bool {
    t == GATE_TENANT || t.strip_prefix(GATE_TENANT).is_some_and(|rest| rest.starts_with('-') && rest.len() > 1)
}

/// One gate check (the reference's `{name, pass, severity, detail}`).
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub pass: bool,
    /// `error` checks always fail the gate; `warning` ones with strict warnings.
    pub error: bool,
    pub detail: Value,
}

impl Check {
    pub fn error(name: &str, pass: bool, detail: Value) -> Check {
        Check { name: name.into(), pass, error: true, detail }
    }
    pub fn warning(name: &str, pass: bool, detail: Value) -> Check {
        Check { name: name.into(), pass, error: false, detail }
    }
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "pass": self.pass, "severity": if self.error { "error" } else { "warning" },
               "detail": self.detail})
    }
}

/// The names of the checks that fail the gate.
pub fn fail_reasons(checks: &[Check], strict_warnings: bool) -> Vec<String> {
    checks.iter().filter(|c| !c.pass && (c.error || strict_warnings)).map(|c| c.name.clone()).collect()
}

/// `20261201T145012Z-1a2b`: sortable, unique enough per machine.
pub fn run_id() -> String {
    let now = chrono::Utc::now();
    format!("{}-{:04x}", now.format("%Y%m%dT%H%M%SZ"), (std::process::id() ^ now.timestamp_subsec_micros()) & 0xffff)
}

/// `<artifacts>/<gate>/<run_id>/`, created.
pub fn run_dir(artifacts: &Path, gate: &str, run_id: &str) -> Result<PathBuf> {
    let dir = artifacts.join(gate).join(run_id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Writes `value` as pretty JSON to `dir/name`.
pub fn write_json(dir: &Path, name: &str, value: &Value) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Prints a gate's checks, one line each, then its verdict.
pub fn print_checks(gate: &str, checks: &[Check], reasons: &[String], summary: &Path) {
    for c in checks {
        let detail = c.detail.to_string();
        let detail = if detail.len() > 160 { format!("{}…", &detail[..detail.floor_char_boundary(160)]) } else { detail };
        println!(
            "{:<5} {:<8} {:<30} {detail}",
            if c.pass { "pass" } else { "FAIL" },
            if c.error { "error" } else { "warning" },
            c.name
        );
    }
    if reasons.is_empty() {
        println!("{gate}: passed ({})", summary.display());
    } else {
        println!("{gate}: FAILED: {} ({})", reasons.join(", "), summary.display());
    }
}

/// A small HTTP(S) client for probing a server.
#[derive(Clone)]
pub struct Probe {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    pub base: String,
    admin_token: Option<String>,
    timeout: Duration,
}

/// A response: status and JSON body (`Null` when not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Probe {
    pub fn new(base: &str, admin_token: Option<String>) -> Probe {
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        Probe {
            client: Client::builder(TokioExecutor::new()).build(https),
            base: base.trim_end_matches('/').to_string(),
            admin_token,
            timeout: Duration::from_secs(30),
        }
    }

    /// `method path` with an optional JSON body; `admin` adds the token,
    /// `headers` anything else (an API key).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        admin: bool,
        headers: &[(&str, &str)],
    ) -> Result<Answer> {
        let url = format!("{}{path}", self.base);
        let mut req = hyper::Request::builder().method(method).uri(&url);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        if admin && let Some(t) = &self.admin_token {
            req = req.header("x-admin-token", t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body.map(Value::to_string).unwrap_or_default())))?;
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .with_context(|| format!("{method} {url}: no answer in {:?}", self.timeout))?
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok(Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) })
    }

    pub async fn get(&self, path: &str, admin: bool) -> Result<Answer> {
        self.call("GET", path, None, admin, &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value, admin: bool) -> Result<Answer> {
        self.call("POST", path, Some(body), admin, &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_tenants() {
        assert!(is_gate_tenant("cairn-gate"));
        assert!(is_gate_tenant("cairn-gate-20261201t1450z"));
        for t in ["default", "acme", "cairn-gate-", "cairn-gatex", "x-cairn-gate"] {
            assert!(!is_gate_tenant(t), "{t}");
        }
    }

    #[test]
    fn warnings_fail_only_when_strict() {
        let checks = [Check::error("a", true, json!({})), Check::warning("b", false, json!({})), Check::error("c", false, json!({}))];
        assert_eq!(fail_reasons(&checks, false), ["c"]);
        assert_eq!(fail_reasons(&checks, true), ["b", "c"]);
    }
}

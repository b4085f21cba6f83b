//! `cairn preflight` (reference §8.1 `preflight:hosted`): is this
//! configuration — the same flags, variables and environment `cairn up`
//! takes — fit to serve hosted tenants? Each check is an error (fails the
//! run) or a warning (fails it under strict warnings, the default).
//! `--run-gates` adds the health gate on the isolated gate scope and the
//! cross-tenant consistency check, run in-process on `--data-dir`.

use super::{Check, GATE_SCOPE, GATE_TENANT, Probe, fail_reasons, print_checks, run_dir, run_id, write_json};
use crate::derive_calls::{self, Verb};
use crate::{AppArgs, Synchronous};
use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args)]
pub struct PreflightArgs {
    /// The server to probe (default: http://<--listen>).
    #[arg(long)]
    base_url: Option<String>,
    /// The address the server listens on (as `cairn up --listen`).
    #[arg(long, env = "CAIRN_LISTEN", default_value = "127.0.0.1:3001")]
    listen: String,
    /// Data directory (for --run-gates).
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = ".cairn")]
    data_dir: PathBuf,
    /// Also run the health gate (gate scope) and the cross-tenant consistency check.
    #[arg(long)]
    run_gates: bool,
    /// Warnings do not fail the run (they do by default).
    #[arg(long)]
    no_strict_warnings: bool,
    /// Do not probe GET /health.
    #[arg(long)]
    skip_api_check: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Where `preflight/<run_id>/summary.json` goes.
    #[arg(long, default_value = "artifacts")]
    artifacts_dir: PathBuf,
    #[command(flatten)]
    app: AppArgs,
}

/// Shortest admin token preflight accepts.
const MIN_ADMIN_TOKEN: usize = 32;

/// The configuration checks (pure, over the resolved variables).
fn config_checks(a: &PreflightArgs, vars: &crate::variables::AppVariables, embedder: &Result<String>) -> Vec<Check> {
    let var = |n: &str| vars.get(n).map(str::trim).unwrap_or("");
    let auth = var("memory_auth_mode");
    let auth_on = matches!(auth, "api_key" | "jwt" | "api_key_or_jwt");
    let quota = var("tenant_quota_enabled");
    let quotas_on = quota == "true" || (quota.is_empty() || quota == "auto") && auth_on;
    let token = var("admin_token");
    let listen_loopback = a.listen.parse::<SocketAddr>().map(|s| s.ip().is_loopback()).unwrap_or(false)
        || a.listen.starts_with("localhost:");
    let cors = var("cors_allow_origins");
    let mut checks = vec![
        Check::error("auth_mode_enabled", auth_on, json!({"memory_auth_mode": if auth.is_empty() { "off" } else { auth }})),
        Check::error("tenant_quota_enabled", quotas_on, json!({"tenant_quota_enabled": quota, "auth_on": auth_on})),
        Check::error(
            "admin_token_strong",
            token.len() >= MIN_ADMIN_TOKEN,
            json!({"set": !token.is_empty(), "length": token.len(), "min": MIN_ADMIN_TOKEN}),
        ),
        Check::error("listen_requires_auth", listen_loopback || auth_on, json!({"listen": a.listen, "auth_on": auth_on})),
        Check::warning("sqlite_sync_full", a.app.sync == Synchronous::Full, json!({"sync": format!("{:?}", a.app.sync).to_lowercase(),
            "why": "normal survives a process crash, full also a power loss"})),
        Check::warning("cors_no_wildcard", cors != "*", json!({"cors_allow_origins": cors})),
    ];
    match embedder {
        Ok(label) => {
            let hosted = !label.contains("lexical") && label != "fail";
            checks.push(Check::error("embedding_provider_configured", label != "fail", json!({"embedder": label})));
            let mut detail = json!({"embedder": label});
            if !hosted {
                detail["why"] = json!("the lexical embedder hashes words: recall_text's dense side then adds no meaning");
            }
            checks.push(Check::warning("embedder_semantic", hosted, detail));
        }
        Err(e) => checks.push(Check::error("embedding_provider_configured", false, json!({"error": format!("{e:#}")}))),
    }
    checks
}

pub async fn run(a: PreflightArgs) -> Result<()> {
    let id = run_id();
    let strict_warnings = !a.no_strict_warnings;
    let base_url = a.base_url.clone().unwrap_or_else(|| format!("http://{}", a.listen));
    let mut checks = Vec::new();
    let mut runtime = json!({});

    // The configuration as `cairn up` would resolve it.
    let resolved = (|| -> Result<_> {
        let manifest = crate::app_manifest::AppManifest::load(&a.app.manifest)?;
        let tier_vars = crate::tiers::load(&a.app.tiers_path())?;
        Ok((manifest, tier_vars))
    })();
    match resolved {
        Err(e) => checks.push(Check::error("config_loads", false, json!({"error": format!("{e:#}")}))),
        Ok((manifest, mut tier_vars)) => {
            let profiles: Value = serde_json::from_str(&tier_vars["tier_profiles"]).unwrap_or(Value::Null);
            let missing = crate::tiers::missing_fields(&profiles);
            checks.push(Check::error(
                "tiers_file_complete",
                missing.is_empty(),
                json!({"tiers_file": a.app.tiers_path(), "missing": missing}),
            ));
            let dims = crate::tiers::embedding_dims(&tier_vars).unwrap_or(384);
            let embedder = crate::embedder_from_args(&a.app, dims).map(|e| e.label());
            if let Ok(label) = &embedder {
                tier_vars.insert("embedding_model_label".into(), label.clone());
            }
            match crate::app_variables(&a.app, &manifest, &tier_vars, None) {
                Err(e) => checks.push(Check::error("config_loads", false, json!({"error": format!("{e:#}")}))),
                Ok(vars) => {
                    checks.extend(config_checks(&a, &vars, &embedder));
                    runtime = json!({
                        "auth_mode": vars.get("memory_auth_mode").unwrap_or("off"),
                        "embedding_provider": embedder.as_ref().ok(),
                        "default_tier": tier_vars.get("default_tier"),
                        "sync": format!("{:?}", a.app.sync).to_lowercase(),
                        "listen": a.listen,
                    });
                }
            }
        }
    }

    // The server answers.
    if !a.skip_api_check {
        let probe = Probe::new(&base_url, None);
        let (pass, detail) = match probe.get("/health", false).await {
            Ok(r) => (r.status == 200, json!({"status": r.status, "ok": r.body["ok"]})),
            Err(e) => (false, json!({"error": format!("{e:#}")})),
        };
        runtime["health_code"] = detail["status"].clone();
        checks.push(Check::error("api_health", pass, detail));
    }

    // The gates, in-process on the data dir.
    if a.run_gates {
        checks.extend(gates(&a, strict_warnings).await);
    }

    let reasons = fail_reasons(&checks, strict_warnings);
    let dir = run_dir(&a.artifacts_dir, "preflight", &id)?;
    let summary_path = dir.join("summary.json");
    let summary = json!({
        "ok": reasons.is_empty(),
        "run_id": id,
        "target": {"base_url": base_url, "tenant_id": GATE_TENANT, "scope": GATE_SCOPE, "data_dir": a.data_dir},
        "mode": {"run_api_check": !a.skip_api_check, "run_gates": a.run_gates, "strict_warnings": strict_warnings},
        "runtime": runtime,
        "checks": checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        "fail_reasons": reasons,
        "artifacts": {"summary": summary_path},
    });
    write_json(&dir, "summary.json", &summary)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_checks("preflight", &checks, &reasons, &summary_path);
    }
    if !reasons.is_empty() {
        std::process::exit(2);
    }
    Ok(())
}

/// `health_gate_scope` and `consistency_cross_tenant`.
async fn gates(a: &PreflightArgs, strict_warnings: bool) -> Vec<Check> {
    // Both gates fail alike when they cannot run.
    let neither = |error: String| {
        let detail = json!({"error": error});
        vec![
            Check::error("health_gate_scope", false, detail.clone()),
            Check::error("consistency_cross_tenant", false, detail),
        ]
    };
    let db = a.data_dir.join(crate::sqlite::runtime_config::DEFAULT_DATABASE_FILE);
    if !db.exists() {
        return neither(format!("no database at {}", db.display()));
    }
    let app = match crate::load_app(&a.app, &a.data_dir).await {
        Ok(app) => app,
        Err(e) => return neither(format!("{e:#}")),
    };
    let rid = format!("preflight-{}", std::process::id());
    let health = derive_calls::call_ok(
        &app,
        Verb::HealthGate(json!({"tenant_id": GATE_TENANT, "scope": GATE_SCOPE, "consistency_check_set": "scope",
                                "strict_warnings": strict_warnings})),
        &rid,
    )
    .await;
    let cross = derive_calls::call_ok(
        &app,
        Verb::ConsistencyCheck(json!({"check_set": "cross_tenant", "strict": true, "strict_warnings": strict_warnings})),
        &rid,
    )
    .await;
    vec![
        match health {
            Ok(r) => Check::error("health_gate_scope", r["ok"] == true, json!({"fail_reasons": r["fail_reasons"]})),
            Err(e) => Check::error("health_gate_scope", false, json!({"error": format!("{e:#}")})),
        },
        match cross {
            Ok(r) => Check::error("consistency_cross_tenant", r["exit_code"] == 0, json!({"summary": r["summary"],
                "findings": r["checks"].as_array().into_iter().flatten()
                    .filter(|c| c["count"].as_i64().unwrap_or(0) > 0 || c.get("error").is_some())
                    .map(|c| c["name"].clone()).collect::<Vec<_>>()})),
            Err(e) => Check::error("consistency_cross_tenant", false, json!({"error": format!("{e:#}")})),
        },
    ]
}

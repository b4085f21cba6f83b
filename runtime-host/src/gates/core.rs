//! `cairn gate core` (reference §8.2 `gate:core:prod`): a black-box gate
//! against a live server. It probes the API, proves the server serves the
//! database it claims (`--data-dir`: the database's id hashed, as `/health`
//! shows it), then — in a gate tenant it creates and tears down, never in
//! `default` or a customer's tenant — runs a contract smoke (write, find,
//! recall_text, rules, tools, commits/verify, packs), the health gate on
//! that scope, the cross-tenant consistency check and, unless `--run-perf
//! false`, a short perf run against the reference's SLOs.
//!
//! Writes `artifacts/core_gate/<run_id>/summary.json` and one file per step;
//! exit 0 pass, 2 failed, 1 could not run (bad flags, no admin token, a
//! tenant that is not a gate tenant).

use super::{Answer, Check, GATE_SCOPE, GATE_TENANT, Probe, fail_reasons, is_gate_tenant, print_checks, run_dir, run_id, write_json};
use anyhow::{Result, bail};
use clap::Args;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct CoreGateArgs {
    /// The server to gate.
    #[arg(long)]
    base_url: String,
    /// Admin token of the server (creates and tears down the gate tenant).
    #[arg(long, env = "CAIRN_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// The gate tenant to use: `cairn-gate` or `cairn-gate-<suffix>`
    /// (default: `cairn-gate-<run id>`, fresh each run).
    #[arg(long)]
    tenant: Option<String>,
    /// The gate scope (never `default`).
    #[arg(long, default_value = GATE_SCOPE)]
    scope: String,
    /// Run the perf step (recall_text and write p95, error rate).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    run_perf: bool,
    /// The server's data dir: the gate proves the server serves its database.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The server's PostgreSQL database (as `cairn up --database-url`): the
    /// gate proves the server serves it. Given, it is the database probed,
    /// as a job on a data dir works on it.
    #[arg(long, env = "CAIRN_DATABASE_URL")]
    database_url: Option<String>,
    /// CA certificates for `sslmode=require` (as `cairn up`).
    #[arg(long, env = "CAIRN_DATABASE_CA_FILE")]
    database_ca_file: Option<PathBuf>,
    /// The tier the gate tenant is provisioned at (default: the tier with
    /// the highest write quota, so quotas do not throttle the perf step).
    #[arg(long)]
    gate_tier: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Where `core_gate/<run_id>/` goes.
    #[arg(long, default_value = "artifacts")]
    artifacts_dir: PathBuf,
}

/// The reference's SLOs for the perf step.
const RECALL_P95_SLO_MS: f64 = 1200.0;
const WRITE_P95_SLO_MS: f64 = 800.0;
const ERROR_RATE_SLO: f64 = 0.02;

/// Refuses writes and perf outside a gate tenant and in `default`.
pub fn check_target(tenant: &str, scope: &str) -> Result<()> {
    if !is_gate_tenant(tenant) {
        bail!(
            "refusing to write or run perf in tenant '{tenant}': the core gate runs only in a gate tenant \
             ({GATE_TENANT} or {GATE_TENANT}-<suffix>)"
        );
    }
    if scope == "default" {
        bail!("refusing to write or run perf in scope 'default' (smoke checks only): choose a gate scope");
    }
    Ok(())
}

/// The gate tenant's memory calls: its API key (auth on) and tenant/scope.
struct Gate<'a> {
    probe: &'a Probe,
    tenant: String,
    scope: String,
    api_key: Option<String>,
}

impl Gate<'_> {
    fn body(&self, mut v: Value) -> Value {
        v["tenant_id"] = json!(self.tenant);
        v["scope"] = json!(self.scope);
        v
    }

    async fn memory(&self, path: &str, body: Value) -> Result<Answer> {
        let key = self.api_key.clone().unwrap_or_default();
        let headers: Vec<(&str, &str)> = if key.is_empty() { vec![] } else { vec![("x-api-key", key.as_str())] };
        self.probe.call("POST", path, Some(&self.body(body)), false, &headers).await
    }
}

/// One smoke step: passes when `ok(answer)`.
fn step(name: &str, a: &Result<Answer>, ok: impl Fn(&Answer) -> bool) -> Value {
    match a {
        Ok(r) => json!({"name": name, "pass": ok(r), "status": r.status,
                         "error": r.body.get("error"), "message": r.body.get("message")}),
        Err(e) => json!({"name": name, "pass": false, "error": format!("{e:#}")}),
    }
}

fn hex64(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The contract smoke in the gate tenant: one entry per step, and the
/// scope's chain head as commits/verify reported it.
async fn contract_smoke(g: &Gate<'_>, admin: &Probe) -> (Vec<Value>, Value) {
    let mut steps = Vec::new();
    let write = g
        .memory(
            "/v1/memory/write",
            json!({"input_text": "core gate smoke", "memory_lane": "shared",
                   "nodes": [
                       {"client_id": "gate-e1", "type": "event", "text_summary": "core gate smoke: the deploy finished"},
                       {"client_id": "gate-e2", "type": "event", "text_summary": "core gate smoke: the cache was warmed"},
                       {"client_id": "gate-t1", "type": "entity", "title": "core gate", "text_summary": "the release gate"}],
                   "edges": [{"type": "related_to", "src": {"client_id": "gate-e1"}, "dst": {"client_id": "gate-t1"}}]}),
        )
        .await;
    steps.push(step("write", &write, |r| r.status == 200 && hex64(&r.body["commit_hash"]) && r.body["nodes"].as_array().is_some_and(|n| n.len() == 3)));
    let find = g.memory("/v1/memory/find", json!({"client_id": "gate-e1"})).await;
    steps.push(step("find", &find, |r| r.status == 200 && r.body["nodes"].as_array().is_some_and(|n| n.len() == 1)));
    let recall = g.memory("/v1/memory/recall_text", json!({"query_text": "deploy finished", "limit": 5})).await;
    steps.push(step("recall_text", &recall, |r| {
        r.status == 200 && r.body["seeds"].as_array().is_some_and(|s| !s.is_empty())
    }));
    let rule = g
        .memory(
            "/v1/memory/write",
            json!({"input_text": "core gate rule", "memory_lane": "shared",
                   "nodes": [{"client_id": "gate-rule", "type": "rule", "text_summary": "prefer curl in the gate",
                              "slots": {"if": {"run.id": "gate-run"}, "then": {"tool": {"prefer": ["curl"], "deny": ["bash"]}}}}]}),
        )
        .await;
    let rule_id = rule.as_ref().ok().and_then(|r| r.body["nodes"][0]["id"].as_str().map(str::to_string));
    steps.push(step("rule_write", &rule, |r| r.status == 200 && rule_id.is_some()));
    let state = g
        .memory(
            "/v1/memory/rules/state",
            json!({"rule_node_id": rule_id, "state": "active", "input_text": "activate the gate rule"}),
        )
        .await;
    steps.push(step("rules_state", &state, |r| r.status == 200 && hex64(&r.body["commit_hash"])));
    let select = g
        .memory(
            "/v1/memory/tools/select",
            json!({"context": {"run": {"id": "gate-run"}}, "candidates": ["bash", "curl"], "run_id": "gate-run"}),
        )
        .await;
    steps.push(step("tools_select", &select, |r| r.status == 200 && r.body["selection"]["selected"] == "curl"));
    let verify = g.memory("/v1/memory/commits/verify", json!({})).await;
    steps.push(step("commits_verify", &verify, |r| r.status == 200 && r.body["ok"] == true));
    let head = verify.as_ref().map(|r| r.body["head"].clone()).unwrap_or(Value::Null);
    let pack = admin
        .post("/v1/memory/packs/export", &json!({"tenant_id": g.tenant, "scope": g.scope, "max_rows": 100}), true)
        .await;
    steps.push(step("packs_export", &pack, |r| {
        r.status == 200 && hex64(&r.body["manifest"]["sha256"]) && r.body["manifest"]["counts"]["nodes"].as_i64() >= Some(4)
    }));
    (steps, head)
}

/// p95 of `lat` in ms.
fn p95(lat: &mut [Duration]) -> f64 {
    lat.sort();
    crate::bench::percentile(lat, 95.0)
}

/// `requests` calls of `path` over `concurrency` workers: p95 ms and failures.
async fn load(g: &Gate<'_>, path: &str, requests: usize, concurrency: usize, body: impl Fn(usize) -> Value) -> (f64, usize) {
    let key = g.api_key.clone().unwrap_or_default();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let probe = g.probe.clone();
        let bodies: Vec<Value> = (w..requests).step_by(concurrency).map(|i| g.body(body(i))).collect();
        let (path, key) = (path.to_string(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0usize;
            let headers: Vec<(&str, &str)> = if key.is_empty() { vec![] } else { vec![("x-api-key", key.as_str())] };
            for b in bodies {
                let started = Instant::now();
                match probe.call("POST", &path, Some(&b), false, &headers).await {
                    Ok(r) if r.status == 200 => lat.push(started.elapsed()),
                    _ => failed += 1,
                }
            }
            (lat, failed)
        }));
    }
    let mut lat = Vec::new();
    let mut failed = 0;
    for t in tasks {
        if let Ok((l, f)) = t.await {
            lat.extend(l);
            failed += f;
        }
    }
    (p95(&mut lat), failed)
}

/// The reference's perf step (`--recall-requests 80 --recall-concurrency 6
/// --write-requests 40 --write-concurrency 3 --warmup 10`).
async fn perf(g: &Gate<'_>) -> Value {
    const QUERIES: [&str; 4] = ["deploy", "cache warmed", "release gate", "smoke"];
    let text = |i: usize| json!({"query_text": QUERIES[i % 4], "limit": 10});
    let _ = load(g, "/v1/memory/recall_text", 10, 2, text).await;
    let started = Instant::now();
    let (recall_p95, recall_failed) = load(g, "/v1/memory/recall_text", 80, 6, text).await;
    let (write_p95, write_failed) = load(g, "/v1/memory/write", 40, 3, |i| {
        json!({"input_text": format!("core gate perf {i}"), "memory_lane": "shared",
               "nodes": [{"client_id": format!("gate-perf-{i}"), "type": "event", "text_summary": format!("perf write {i} of the core gate")}]})
    })
    .await;
    let error_rate = (recall_failed as f64 / 80.0).max(write_failed as f64 / 40.0);
    json!({
        "recall_text_p95_ms": (recall_p95 * 10.0).round() / 10.0,
        "write_p95_ms": (write_p95 * 10.0).round() / 10.0,
        "error_rate": error_rate,
        "recall_text": {"requests": 80, "concurrency": 6, "failed": recall_failed},
        "write": {"requests": 40, "concurrency": 3, "failed": write_failed},
        "seconds": started.elapsed().as_secs_f64(),
        "slo": {"recall_text_p95_ms": RECALL_P95_SLO_MS, "write_p95_ms": WRITE_P95_SLO_MS, "error_rate": ERROR_RATE_SLO},
    })
}

/// The local database's target hash (what its server's `/health` shows).
async fn local_target_hash(data_dir: &Path) -> Result<String> {
    let path = data_dir.join(crate::sqlite::runtime_config::DEFAULT_DATABASE_FILE);
    if !path.exists() {
        bail!("no database at {}", path.display());
    }
    let db = libsql::Builder::new_local(&path).flags(libsql::OpenFlags::SQLITE_OPEN_READ_ONLY).build().await?;
    let conn = db.connect()?;
    let mut rows = conn.query("SELECT id FROM memory_instance LIMIT 1", ()).await?;
    let Some(row) = rows.next().await? else { bail!("{} has no database id yet (start its server once)", path.display()) };
    let id: String = row.get(0)?;
    Ok(target_hash_of(&id))
}

/// [`local_target_hash`] of a PostgreSQL database.
async fn postgres_target_hash(url: &str, ca_file: Option<&Path>) -> Result<String> {
    let pg = crate::postgres::PostgresCapability::with_tls(1, crate::postgres::tls_config(ca_file)?);
    let client = pg.connect(url).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let Some(row) = client.query_opt("SELECT id FROM memory_instance LIMIT 1", &[]).await? else {
        bail!("the database has no database id yet (start its server once)")
    };
    let id: String = row.get(0);
    Ok(target_hash_of(&id))
}

/// Mirrors cairn_memory::schema::database_target_hash (the host cannot
/// link the kernel crate); http_basics checks both sides agree.
fn target_hash_of(id: &str) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(format!("cairn-database:{id}")))
}

/// The tier with the highest write rps (the gate tenant's, unless given).
fn roomiest_tier(tiers: &Value) -> Option<String> {
    tiers["tiers"]
        .as_array()?
        .iter()
        .max_by(|a, b| {
            let rps = |t: &Value| t["quotas"]["write"]["rps"].as_f64().unwrap_or(0.0);
            rps(a).total_cmp(&rps(b))
        })
        .and_then(|t| t["tier"].as_str().map(str::to_string))
}

pub async fn run(a: CoreGateArgs) -> Result<()> {
    let id = run_id();
    let tenant = a.tenant.clone().unwrap_or_else(|| format!("{GATE_TENANT}-{}", id.to_ascii_lowercase()));
    check_target(&tenant, &a.scope)?;
    let Some(token) = a.admin_token.clone().filter(|t| !t.is_empty()) else {
        bail!("the core gate needs the server's admin token (--admin-token or CAIRN_ADMIN_TOKEN): it creates and tears down its gate tenant");
    };
    let dir = run_dir(&a.artifacts_dir, "core_gate", &id)?;
    let probe = Probe::new(&a.base_url, Some(token));
    let mut checks: Vec<Check> = Vec::new();
    let mut files = serde_json::Map::new();
    let record = |name: &str, file: &str, v: &Value, files: &mut serde_json::Map<String, Value>| -> Result<()> {
        let path = write_json(&dir, file, v)?;
        files.insert(name.into(), json!(path));
        Ok(())
    };

    // 1. The API answers.
    let health = probe.get("/health", false).await;
    let recall = probe.post("/v1/memory/recall", &json!({}), false).await;
    let api_hash = health.as_ref().ok().and_then(|r| r.body["database_target_hash"].as_str().map(str::to_string));
    let api_ok = matches!(&health, Ok(r) if r.status == 200) && matches!(&recall, Ok(r) if r.status != 404);
    let probe_detail = json!({
        "health": health.as_ref().map(|r| json!({"status": r.status})).unwrap_or_else(|e| json!({"error": format!("{e:#}")})),
        "recall": recall.as_ref().map(|r| json!({"status": r.status})).unwrap_or_else(|e| json!({"error": format!("{e:#}")})),
        "database_target_hash": api_hash,
    });
    record("api_probe", "00_api_probe.json", &probe_detail, &mut files)?;
    checks.push(Check::error("api_probe", api_ok, probe_detail));

    // 2. The right database.
    let local = match (&a.database_url, &a.data_dir) {
        // The URL is not recorded: it may carry a password.
        (Some(url), _) => Some((
            json!({"database": "postgres"}),
            postgres_target_hash(url, a.database_ca_file.as_deref()).await,
        )),
        (None, Some(dir)) => Some((json!({"data_dir": dir}), local_target_hash(dir).await)),
        (None, None) => None,
    };
    if let Some((mut detail, local)) = local {
        detail["local_hash"] = json!(local.as_ref().ok());
        detail["api_hash"] = json!(api_hash);
        detail["error"] = json!(local.as_ref().err().map(|e| format!("{e:#}")));
        record("db_probe", "01_db_probe.json", &detail, &mut files)?;
        checks.push(Check::error("db_target_match", local.as_ref().ok() == api_hash.as_ref() && api_hash.is_some(), detail));
    }
    let reachable = api_ok && checks.iter().all(|c| c.pass);
    let mut chain_heads = json!({});

    if reachable {
        // 3. The gate tenant, its key (auth on) and tier.
        let tiers = probe.get("/v1/admin/control/tiers", true).await.map(|r| r.body).unwrap_or(Value::Null);
        let tier = a.gate_tier.clone().or_else(|| roomiest_tier(&tiers));
        let created = probe.post("/v1/admin/control/tenants", &json!({"tenant_id": tenant, "display_name": "core gate"}), true).await;
        let provisioned = match &tier {
            Some(t) => Some(probe.post(&format!("/v1/admin/control/tenants/{tenant}/provision"), &json!({"tier": t}), true).await),
            None => None,
        };
        let key = probe.post("/v1/admin/control/api-keys", &json!({"tenant_id": tenant, "label": "core gate", "agent_id": "core-gate"}), true).await;
        let api_key = key.as_ref().ok().and_then(|r| r.body["key"]["api_key"].as_str().map(str::to_string));
        let setup_ok = matches!(&created, Ok(r) if r.status == 200)
            && provisioned.as_ref().is_none_or(|p| matches!(p, Ok(r) if r.status == 200))
            && api_key.is_some();
        let setup = json!({"tenant_id": tenant, "tier": tier,
                           "created": step("create_tenant", &created, |r| r.status == 200),
                           "provisioned": provisioned.as_ref().map(|p| step("provision", p, |r| r.status == 200)),
                           "api_key": step("api_key", &key, |_| api_key.is_some())});
        checks.push(Check::error("gate_tenant_setup", setup_ok, setup.clone()));
        let gate = Gate { probe: &probe, tenant: tenant.clone(), scope: a.scope.clone(), api_key };

        // 4. Contract smoke.
        let (steps, head) = contract_smoke(&gate, &probe).await;
        chain_heads["before_teardown"] = head.clone();
        let smoke = json!({"tenant_id": tenant, "scope": a.scope, "steps": steps, "chain_head": head});
        record("contract_smoke", "02_contract_smoke.json", &smoke, &mut files)?;
        let failed: Vec<&Value> = steps.iter().filter(|s| s["pass"] != true).map(|s| &s["name"]).collect();
        checks.push(Check::error("contract_smoke", failed.is_empty(), json!({"steps": steps.len(), "failed": failed})));

        // 5. Health gate on the gate scope (its derivation run first) and
        // cross-tenant consistency, both through the admin routes.
        let tick = probe.post("/v1/admin/derive/tick", &json!({"tenant_id": tenant, "scope": a.scope}), true).await;
        let hg = probe
            .post("/v1/admin/control/health-gate", &json!({"tenant_id": tenant, "scope": a.scope,
                   "consistency_check_set": "scope", "strict_warnings": true}), true)
            .await;
        let hg_body = hg.as_ref().map(|r| r.body.clone()).unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
        record("health_gate_scope", "03_health_gate_scope.json", &json!({"tick": tick.as_ref().map(|r| r.body.clone()).ok(), "gate": hg_body}), &mut files)?;
        checks.push(Check::error("health_gate_scope", hg_body["ok"] == true, json!({"fail_reasons": hg_body["fail_reasons"], "error": hg_body.get("error")})));
        let cc = probe
            .post("/v1/admin/control/consistency-check", &json!({"check_set": "cross_tenant", "strict": true, "strict_warnings": true}), true)
            .await;
        let cc_body = cc.as_ref().map(|r| r.body.clone()).unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
        record("consistency_cross_tenant", "04_consistency_cross_tenant.json", &cc_body, &mut files)?;
        checks.push(Check::error("consistency_cross_tenant", cc_body["exit_code"] == 0, json!({"summary": cc_body["summary"], "error": cc_body.get("error")})));

        // 6. Perf.
        if a.run_perf {
            let p = perf(&gate).await;
            record("perf", "05_perf_benchmark.json", &p, &mut files)?;
            let f = |k: &str| p[k].as_f64().unwrap_or(f64::INFINITY);
            checks.push(Check::error("perf_recall_p95_slo", f("recall_text_p95_ms") <= RECALL_P95_SLO_MS,
                json!({"recall_text_p95_ms": p["recall_text_p95_ms"], "slo": RECALL_P95_SLO_MS})));
            checks.push(Check::error("perf_write_p95_slo", f("write_p95_ms") <= WRITE_P95_SLO_MS,
                json!({"write_p95_ms": p["write_p95_ms"], "slo": WRITE_P95_SLO_MS})));
            checks.push(Check::error("perf_error_rate_slo", f("error_rate") <= ERROR_RATE_SLO,
                json!({"error_rate": p["error_rate"], "slo": ERROR_RATE_SLO})));
        }

        // 7. Teardown, whatever happened above.
        let down = probe.post(&format!("/v1/admin/control/tenants/{tenant}/teardown"), &json!({}), true).await;
        let down_body = down.as_ref().map(|r| r.body.clone()).unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
        record("teardown", "06_teardown.json", &down_body, &mut files)?;
        chain_heads["erase_commits"] = json!(down_body["erased"]["scopes"]);
        checks.push(Check::error("gate_tenant_teardown", down_body["status"] == "suspended",
            json!({"status": down_body["status"], "erased": down_body["erased"]})));
    }

    let reasons = fail_reasons(&checks, true);
    let summary_path = dir.join("summary.json");
    let perf = std::fs::read_to_string(dir.join("05_perf_benchmark.json")).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let summary = json!({
        "ok": reasons.is_empty(),
        "run_id": id,
        "target": {"base_url": a.base_url, "tenant_id": tenant, "scope": a.scope, "database_target_hash": api_hash,
                   "data_dir": a.data_dir},
        "mode": {"run_perf": a.run_perf},
        "chain_heads": chain_heads,
        "checks": checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        "fail_reasons": reasons,
        "perf": perf.map(|p| json!({"recall_text_p95_ms": p["recall_text_p95_ms"], "write_p95_ms": p["write_p95_ms"],
                                   "error_rate": p["error_rate"]})),
        "artifacts": files,
    });
    write_json(&dir, "summary.json", &summary)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_checks("core gate", &checks, &reasons, &summary_path);
        if let Some(p) = summary["perf"].as_object() {
            println!(
                "perf: recall_text p95 {} ms, write p95 {} ms, error rate {}",
                p["recall_text_p95_ms"], p["write_p95_ms"], p["error_rate"]
            );
        }
    }
    if !reasons.is_empty() {
        std::process::exit(2);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_perf_stay_in_gate_tenants() {
        assert!(check_target("cairn-gate", "gate").is_ok());
        assert!(check_target("cairn-gate-x1", "smoke").is_ok());
        let e = check_target("default", "gate").unwrap_err().to_string();
        assert!(e.contains("only in a gate tenant"), "{e}");
        assert!(check_target("acme", "gate").is_err());
        let e = check_target("cairn-gate", "default").unwrap_err().to_string();
        assert!(e.contains("scope 'default'"), "{e}");
    }

    #[test]
    fn the_roomiest_tier_has_the_highest_write_rps() {
        let tiers = json!({"tiers": [
            {"tier": "solo", "quotas": {"write": {"rps": 10}}},
            {"tier": "growth", "quotas": {"write": {"rps": 120}}},
            {"tier": "odd"},
        ]});
        assert_eq!(roomiest_tier(&tiers).as_deref(), Some("growth"));
        assert_eq!(roomiest_tier(&Value::Null), None);
    }
}

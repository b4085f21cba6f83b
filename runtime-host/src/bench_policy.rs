//! `cairn bench policy`: seeds a fresh scope with rules through the API,
//! activates each one (a commit per activation), then measures
//! `rules/evaluate` and `tools/select` latency and throughput at each
//! concurrency with contexts that vary per request, so some rules match.

use crate::bench::{BenchRun, HttpClient, post, start_server, temp_data_dir};
use crate::bench_recall::{Phase, phase};
use anyhow::{Context, Result, bail};
use clap::Args;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

#[derive(Args)]
pub struct PolicyBench {
    /// Rules seeded into the scope (through /v1/memory/write) and activated.
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    /// Requests measured per phase.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Concurrency levels to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    #[command(flatten)]
    run: BenchRun,
}

const SCOPE: &str = "bench-policy";
/// Rules per seeding write.
const BATCH: usize = 200;
/// Rules a request may scan (the wire contract's maximum).
const RULES_LIMIT: usize = 200;
const EVALUATE: &str = "rules/evaluate (limit 200)";
const EVALUATE_DEFAULT: &str = "rules/evaluate (limit 50)";
const SELECT: &str = "tools/select (rules_limit 200)";
const INTENTS: &[&str] = &["deploy", "rollback", "debug", "migrate", "report", "review", "cleanup", "backup"];
const TOOLS: &[&str] = &["psql", "curl", "bash", "git", "kubectl"];
const USERS: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
const QUERIES: &[&str] = &[
    "deploy the api to staging",
    "dependency audit for the web app",
    "why did the nightly backup fail",
    "rollback the last release",
    "depth of the job queue",
    "report slow queries",
];

/// A rule's condition: mostly intent plus a tool set; every few rules an
/// `$or`, a `$ne` on the run mode, or a prefix `$regex` on the query.
fn rule_if(i: usize) -> Value {
    let intent = INTENTS[i % INTENTS.len()];
    let tools = json!({"$in": [TOOLS[i % TOOLS.len()], TOOLS[(i + 1) % TOOLS.len()]]});
    match i % 10 {
        6 => json!({"$or": [{"intent": intent}, {"tool.name": TOOLS[i % TOOLS.len()]}]}),
        7 => json!({"intent": intent, "tool.name": tools, "run.mode": {"$ne": "dry"}}),
        8 => json!({"intent": intent, "query": {"$regex": "^dep.*"}}),
        _ => json!({"intent": intent, "tool.name": tools}),
    }
}

/// A rule's effect: tool preferences and denials, or an output format.
fn rule_then(i: usize) -> Value {
    if i.is_multiple_of(2) {
        json!({"tool": {"prefer": [TOOLS[i % TOOLS.len()]], "deny": [TOOLS[(i + 3) % TOOLS.len()]]}})
    } else {
        json!({"output": {"format": "json", "strict": true}})
    }
}

fn rule_node(i: usize) -> Value {
    let mut slots = json!({
        "if": rule_if(i),
        "then": rule_then(i),
        "rule_meta": {"priority": (i % 7) as i64 - 3, "weight": 1},
    });
    if i.is_multiple_of(4) {
        slots["exceptions"] = json!([{"user": format!("blocked-{}", i % 13)}]);
    }
    json!({"client_id": format!("rule-{i}"), "type": "rule", "text_summary": format!("rule {i}"), "slots": slots})
}

/// A request's context, drawn from the rules' vocabulary (every fifth user
/// is one some rules except).
fn context(i: usize) -> Value {
    let user = if i.is_multiple_of(5) { format!("blocked-{}", i % 13) } else { USERS[i % USERS.len()].to_string() };
    json!({
        "intent": INTENTS[(i * 3) % INTENTS.len()],
        "tool": {"name": TOOLS[(i * 7) % TOOLS.len()]},
        "user": user,
        "run": {"id": format!("run-{i}"), "mode": if i.is_multiple_of(4) { "dry" } else { "live" }},
        "query": QUERIES[i % QUERIES.len()],
    })
}

fn evaluate_body(i: usize) -> Value {
    json!({"scope": SCOPE, "context": context(i), "include_shadow": false, "limit": RULES_LIMIT})
}

/// rules/evaluate with the default `limit` (50 most recently updated rules).
fn evaluate_default_body(i: usize) -> Value {
    json!({"scope": SCOPE, "context": context(i), "include_shadow": false})
}

fn select_body(i: usize) -> Value {
    json!({"scope": SCOPE, "context": context(i), "candidates": TOOLS, "strict": false, "rules_limit": RULES_LIMIT})
}

/// Posts `body` and fails unless the answer is 200.
async fn post_ok(client: &HttpClient, url: &str, body: &Value, what: &str) -> Result<Value> {
    let (status, resp) = post(client, url, body).await?;
    if status != 200 {
        bail!("{what} failed with {status}: {resp}");
    }
    Ok(resp)
}

/// Writes `n` rules in batches of [`BATCH`]; returns their node ids.
async fn seed_rules(client: &HttpClient, base: &str, n: usize) -> Result<Vec<String>> {
    let url = format!("{base}/v1/memory/write");
    let mut ids = Vec::with_capacity(n);
    for (k, from) in (0..n).step_by(BATCH).enumerate() {
        let nodes: Vec<Value> = (from..(from + BATCH).min(n)).map(rule_node).collect();
        let body = json!({"scope": SCOPE, "input_text": format!("seed rules batch {k}"), "memory_lane": "shared",
                          "auto_embed": false, "nodes": nodes});
        let resp = post_ok(client, &url, &body, "seeding write").await?;
        let written = resp["nodes"].as_array().map(Vec::as_slice).unwrap_or_default();
        ids.extend(written.iter().filter(|v| v["type"] == "rule").filter_map(|v| v["id"].as_str().map(String::from)));
    }
    if ids.len() != n {
        bail!("seeding wrote {} rules, expected {n}", ids.len());
    }
    Ok(ids)
}

/// Activates each rule in turn (one commit each).
async fn activate(client: &HttpClient, base: &str, ids: &[String]) -> Result<()> {
    let url = format!("{base}/v1/memory/rules/state");
    for id in ids {
        let body = json!({"scope": SCOPE, "rule_node_id": id, "state": "active", "input_text": "activate"});
        post_ok(client, &url, &body, "rules/state").await?;
    }
    Ok(())
}

/// Warms up, then runs both phases at each concurrency.
async fn measure(client: &HttpClient, base: &str, plan: &Plan) -> Vec<Phase> {
    let (evaluate_url, select_url) =
        (format!("{base}/v1/memory/rules/evaluate"), format!("{base}/v1/memory/tools/select"));
    let evaluate: Arc<dyn Fn(usize) -> Value + Send + Sync> = Arc::new(evaluate_body);
    let evaluate_default: Arc<dyn Fn(usize) -> Value + Send + Sync> = Arc::new(evaluate_default_body);
    let select: Arc<dyn Fn(usize) -> Value + Send + Sync> = Arc::new(select_body);
    let mut phases = vec![phase(client, evaluate_url.clone(), "warmup", 200, 4, evaluate.clone()).await];
    for &c in &plan.concurrency {
        phases.push(phase(client, evaluate_url.clone(), EVALUATE, plan.requests, c, evaluate.clone()).await);
        phases.push(
            phase(client, evaluate_url.clone(), EVALUATE_DEFAULT, plan.requests, c, evaluate_default.clone()).await,
        );
        phases.push(phase(client, select_url.clone(), SELECT, plan.requests, c, select.clone()).await);
    }
    phases
}

struct Plan {
    rules: usize,
    requests: usize,
    concurrency: Vec<usize>,
}

struct Report {
    seed_secs: f64,
    activate_secs: f64,
    phases: Vec<Phase>,
}

/// Everything the client side does: seed, activate, measure.
async fn client_side(base: String, plan: Plan) -> Result<Report> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).build_http();
    let started = Instant::now();
    let ids = seed_rules(&client, &base, plan.rules).await?;
    let seed_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    activate(&client, &base, &ids).await?;
    let activate_secs = started.elapsed().as_secs_f64();
    let phases = measure(&client, &base, &plan).await;
    Ok(Report { seed_secs, activate_secs, phases })
}

/// Runs [`client_side`] on its own thread and runtime, apart from the server's.
async fn run_client(base: String, plan: Plan) -> Result<Report> {
    let client = std::thread::spawn(move || -> Result<Report> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?
            .block_on(client_side(base, plan))
    });
    tokio::task::spawn_blocking(move || client.join()).await?.map_err(|_| anyhow::anyhow!("bench client panicked"))?
}

fn print_report(b: &PolicyBench, r: &Report) -> Result<()> {
    let (seed_rate, activate_rate) = (b.rules as f64 / r.seed_secs, b.rules as f64 / r.activate_secs);
    if b.run.json {
        let result = json!({
            "bench": "policy",
            "rules": b.rules,
            "seed_seconds": r.seed_secs,
            "activate_seconds": r.activate_secs,
            "activations_per_sec": activate_rate,
            "phases": r.phases.iter().map(Phase::json).collect::<Vec<_>>(),
            "targets": {"rules_evaluate_p95_ms": 2, "active_rules": 1000},
        });
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("cairn bench policy: {} active rules in one scope", b.rules);
        println!("  seed       {:.2} s ({seed_rate:.0} rules/s, {BATCH} per write)", r.seed_secs);
        println!("  activate   {:.2} s ({activate_rate:.0} activations/s, a commit each)", r.activate_secs);
        crate::bench_recall::print_phases(&r.phases);
        println!("  target: rules/evaluate p95 <= 2 ms with 1,000 active rules");
    }
    Ok(())
}

pub async fn run(b: PolicyBench) -> Result<()> {
    if b.rules == 0 || b.requests == 0 || b.concurrency.contains(&0) {
        bail!("--rules, --requests and every --concurrency must be at least 1");
    }
    let temp = b.run.data_dir.is_none();
    let data_dir = b.run.data_dir.clone().unwrap_or_else(|| temp_data_dir("policy"));
    let server = start_server(&b.run.app, &data_dir).await.context("starting the server")?;
    let plan = Plan { rules: b.rules, requests: b.requests, concurrency: b.concurrency.clone() };
    let outcome = run_client(server.base.clone(), plan).await;
    server.shutdown(&data_dir, temp && !b.run.keep).await;
    let report = outcome?;
    print_report(&b, &report)?;
    let errors: usize = report.phases.iter().filter(|p| p.name != "warmup").map(|p| p.errors).sum();
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}

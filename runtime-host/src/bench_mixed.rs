//! `cairn bench mixed`: what users see while derivation works. Seeds a
//! scope through the API, lets the manifest's cron schedule derive it (as
//! `cairn up` does), then measures writes and recall_text — each alone at
//! every concurrency, then both at once — while derivation keeps embedding
//! the writes as they arrive. `--cron off` runs the same phases with no
//! derivation, for comparison. Each phase also reports the server's split
//! of its requests' time (instantiation, SQLite, waiting for the write
//! lock, embedding), from the host's request totals.

use crate::bench::{BenchRun, HttpClient, post, start_server, temp_data_dir};
use crate::bench_recall::{Phase, phase, print_phases};
use crate::http_server::RequestTotals;
use anyhow::{Context, Result, bail};
use clap::Args;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct MixedBench {
    /// Memories seeded into the scope before measuring.
    #[arg(long, default_value_t = 10_000)]
    memories: usize,
    /// Requests per phase (each side of a combined phase).
    #[arg(long, default_value_t = 500)]
    requests: usize,
    /// Concurrency levels (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    concurrency: Vec<usize>,
    /// `on`: the manifest's cron schedule derives while the bench runs (as
    /// under `cairn up`); `off`: no derivation at all.
    #[arg(long, default_value = "on")]
    cron: String,
    /// Distinct recall_text queries (1–3 words each) the phases draw from:
    /// the first use of each misses the query-embedding cache.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    #[command(flatten)]
    run: BenchRun,
}

const SCOPE: &str = "bench-mixed";
const WORDS: &[&str] = &[
    "deploy",
    "rollback",
    "latency",
    "invoice",
    "schema",
    "migration",
    "cache",
    "retry",
    "token",
    "budget",
    "backup",
    "alert",
    "login",
    "search",
    "billing",
    "queue",
    "review",
    "release",
    "incident",
    "customer",
    "report",
    "meeting",
    "travel",
    "garden",
    "recipe",
    "concert",
    "painting",
    "hiking",
    "birthday",
    "doctor",
    "school",
    "weekend",
];

/// A short event, as an agent writes one per turn.
fn event(i: usize) -> String {
    format!(
        "{} the {} {} after the {} on day {}",
        ["we discussed", "I fixed", "they asked about", "she planned", "he reviewed"][i % 5],
        WORDS[(i * 7) % WORDS.len()],
        WORDS[(i * 13 + 5) % WORDS.len()],
        WORDS[(i * 3 + 11) % WORDS.len()],
        i % 365
    )
}

/// Query `k` of the bench's set: 1–3 words.
fn query(k: usize) -> String {
    let n = 1 + k % 3;
    (0..n).map(|j| WORDS[(k * 5 + j * 11) % WORDS.len()]).collect::<Vec<_>>().join(" ")
}

fn write_body(i: usize) -> Value {
    json!({"scope": SCOPE, "input_text": format!("turn {i}"), "memory_lane": "shared",
           "nodes": [{"client_id": format!("w-{i}"), "type": "event", "text_summary": event(i)}]})
}

/// The derivation backlog: pending and retrying jobs.
async fn backlog(app: &Arc<crate::app::App>) -> Result<i64> {
    use crate::derive_calls::{Verb, call_ok};
    let s = call_ok(app, Verb::OutboxStatus(vec![]), "bench-mixed").await?;
    Ok(s["outbox"]["pending"].as_i64().unwrap_or(0) + s["outbox"]["retrying"].as_i64().unwrap_or(0))
}

/// The server's split of one phase's requests: mean ms per request.
fn split(before: &RequestTotals, after: &RequestTotals) -> Value {
    let d = after.minus(before);
    let per = |us: u64| if d.requests == 0 { 0.0 } else { us as f64 / d.requests as f64 / 1000.0 };
    json!({
        "requests": d.requests,
        "latency_ms": per(d.latency_us),
        "instantiate_ms": per(d.instantiate_us),
        "sqlite_ms": per(d.db_us),
        "write_lock_wait_ms": per(d.lock_wait_us),
        "embed_ms": per(d.embed_us),
        "embed_cache_misses": d.embed_cache_misses,
    })
}

struct Plan {
    requests: usize,
    concurrency: Vec<usize>,
    queries: usize,
}

/// The measured phases and the server's split of each.
async fn measure(base: String, app: Arc<crate::app::App>, b: Plan) -> Result<(Vec<Phase>, Vec<Value>)> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(64).build_http();
    let write_url = format!("{base}/v1/memory/write");
    let text_url = format!("{base}/v1/memory/recall_text");
    let totals = || app.request_totals.snapshot();
    let queries = b.queries;
    let writes: Arc<dyn Fn(usize) -> Value + Send + Sync> = Arc::new(write_body);
    let mut next_write = 0usize;
    let mut phases: Vec<Phase> = Vec::new();
    let mut splits: Vec<Value> = Vec::new();
    for &c in &b.concurrency {
        let offset = next_write;
        let body: Arc<dyn Fn(usize) -> Value + Send + Sync> = {
            let writes = writes.clone();
            Arc::new(move |i| writes(offset + i))
        };
        next_write += b.requests;
        let before = totals();
        phases.push(phase(&client, write_url.clone(), "write", b.requests, c, body).await);
        splits.push(split(&before, &totals()));

        let text: Arc<dyn Fn(usize) -> Value + Send + Sync> =
            Arc::new(move |i| json!({"scope": SCOPE, "query_text": query((i * 7919) % queries)}));
        let before = totals();
        phases.push(phase(&client, text_url.clone(), "recall_text", b.requests, c, text).await);
        splits.push(split(&before, &totals()));
    }
    // Both at once: writers and recallers at the highest concurrency each.
    let c = b.concurrency.iter().copied().max().unwrap_or(1);
    let offset = next_write;
    let body: Arc<dyn Fn(usize) -> Value + Send + Sync> = Arc::new(move |i| write_body(offset + i));
    let text: Arc<dyn Fn(usize) -> Value + Send + Sync> =
        Arc::new(move |i| json!({"scope": SCOPE, "query_text": query((i * 104_729 + 17) % queries)}));
    let before = totals();
    let (w, r) = tokio::join!(
        phase(&client, write_url.clone(), "write (with recall_text)", b.requests, c, body),
        phase(&client, text_url.clone(), "recall_text (with writes)", b.requests, c, text),
    );
    let together = split(&before, &totals());
    phases.push(w);
    phases.push(r);
    // One split for the combined phase: both sides' requests.
    splits.push(together.clone());
    splits.push(together);
    Ok((phases, splits))
}

pub async fn run(b: MixedBench) -> Result<()> {
    if b.memories == 0 || b.requests == 0 || b.queries == 0 || b.concurrency.contains(&0) {
        bail!("--memories, --requests, --queries and every --concurrency must be at least 1");
    }
    let cron_on = match b.cron.as_str() {
        "on" => true,
        "off" => false,
        other => bail!("--cron must be on or off, not {other}"),
    };
    let temp = b.run.data_dir.is_none();
    let data_dir = b.run.data_dir.clone().unwrap_or_else(|| temp_data_dir("mixed"));
    let server = start_server(&b.run.app, &data_dir).await.context("starting the server")?;
    let cron_tasks = if cron_on { crate::cron::start(&server.app)? } else { Vec::new() };
    let base = server.base.clone();
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(64).build_http();
    let write_url = format!("{base}/v1/memory/write");

    // Seed in batches of 100 events, then let derivation catch up (with
    // cron on) so every phase starts from the same steady state.
    let started = Instant::now();
    for from in (0..b.memories).step_by(100) {
        let nodes: Vec<Value> = (from..(from + 100).min(b.memories))
            .map(|i| json!({"client_id": format!("m-{i}"), "type": "event", "text_summary": event(i)}))
            .collect();
        let body =
            json!({"scope": SCOPE, "input_text": format!("seed {from}"), "memory_lane": "shared", "nodes": nodes});
        let (status, resp) = post(&client, &write_url, &body).await?;
        if status != 200 {
            bail!("seeding write failed with {status}: {resp}");
        }
    }
    let seed_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    if cron_on {
        let mut last = Instant::now();
        loop {
            let left = backlog(&server.app).await?;
            if left == 0 {
                break;
            }
            if last.elapsed() > Duration::from_secs(10) {
                eprintln!("  derivation backlog: {left} jobs");
                last = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let derive_secs = started.elapsed().as_secs_f64();

    // The client runs on a runtime of its own (one thread), as in the
    // recall bench, so it does not queue behind the server's tasks.
    let plan = Plan { requests: b.requests, concurrency: b.concurrency.clone(), queries: b.queries };
    let (app, client_base) = (server.app.clone(), base.clone());
    let client_thread = std::thread::spawn(move || -> Result<(Vec<Phase>, Vec<Value>)> {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?.block_on(measure(
            client_base,
            app,
            plan,
        ))
    });
    let (phases, splits) = tokio::task::spawn_blocking(move || client_thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("bench client panicked"))??;
    let backlog_after = backlog(&server.app).await?;

    let result = json!({
        "bench": "mixed",
        "memories": b.memories,
        "cron": b.cron,
        "embedder": server.app.llm.embedder.label(),
        "seed_seconds": seed_secs,
        "derive_catch_up_seconds": derive_secs,
        "backlog_after": backlog_after,
        "phases": phases.iter().zip(&splits).map(|(p, s)| {
            let mut j = p.json();
            j["server"] = s.clone();
            j
        }).collect::<Vec<_>>(),
        "targets": {"write_p95_ms_at_c1": 2, "writes_per_sec_at_c8": 1000, "recall_text_per_sec_at_c8": 300,
                    "recall_text_p95_ms_at_c1": 10},
    });
    if b.run.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "cairn bench mixed: {} memories in one scope, derivation {}, embedder {}",
            b.memories,
            if cron_on { "on (cron)" } else { "off" },
            server.app.llm.embedder.label()
        );
        println!("  seed       {seed_secs:.1} s; derivation caught up in {derive_secs:.1} s");
        print_phases(&phases);
        println!("  server split per request (ms): instantiate / sqlite / write-lock wait / embed (cache misses)");
        for (p, s) in phases.iter().zip(&splits) {
            println!(
                "  {:<28} {:>3} {:>7.2} {:>7.2} {:>7.2} {:>7.2} ({})",
                p.name,
                p.concurrency,
                s["instantiate_ms"].as_f64().unwrap_or(0.0),
                s["sqlite_ms"].as_f64().unwrap_or(0.0),
                s["write_lock_wait_ms"].as_f64().unwrap_or(0.0),
                s["embed_ms"].as_f64().unwrap_or(0.0),
                s["embed_cache_misses"]
            );
        }
        println!("  derivation backlog at the end: {backlog_after} jobs");
        println!(
            "  targets (cron on, 10k): write p95 <= 2 ms at c=1, >= 1,000 writes/s at c=8; recall_text >= 300/s at c=8, p95 <= 10 ms at c=1"
        );
    }
    for t in cron_tasks {
        t.abort();
    }
    server.shutdown(&data_dir, temp && !b.run.keep).await;
    let errors: usize = phases.iter().map(|p| p.errors).sum();
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}

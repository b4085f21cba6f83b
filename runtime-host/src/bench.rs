//! `cairn bench`: measurements over real HTTP against a server started in
//! this process on a fresh data dir (nothing else shares the database).

use crate::AppArgs;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Write latency (p50/p95/p99) and throughput: N single-memory writes at
    /// concurrency C into a scope that already holds --preload memories.
    Write(WriteBench),
    /// Derivation throughput: N writes (one embed job each) through the API,
    /// then the outbox drained by in-process ticks with the configured embedder.
    Derive(DeriveBench),
    /// Recall and recall_text latency/throughput at concurrency 1 and 16 over a
    /// scope of --memories memories (derived and indexed first), and write
    /// latency while recalling.
    Recall(crate::bench_recall::RecallBench),
    /// rules/evaluate and tools/select latency/throughput at concurrency 1
    /// and 16 over a scope of --rules active rules (seeded and activated first).
    Policy(crate::bench_policy::PolicyBench),
    /// Recall quality on a LoCoMo-format dataset: ingests it through the API,
    /// derives, asks every question through recall_text, prints recall@k,
    /// hit@k and MRR per category.
    Quality(crate::bench_quality::QualityBench),
    /// Writes and recall_text together while derivation keeps running (cron
    /// on, as under `cairn up`), or with it off: each side's latency and
    /// throughput, and the server's split of the time.
    Mixed(crate::bench_mixed::MixedBench),
}

#[derive(Args)]
pub struct DeriveBench {
    /// Embed jobs to create (one write each).
    #[arg(long, short = 'n', default_value_t = 20_000)]
    jobs: usize,
    /// Memories per write (= nodes per embed job).
    #[arg(long, default_value_t = 1)]
    nodes_per_job: usize,
    /// Concurrent ticks while draining.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Jobs per claimed batch.
    #[arg(long, default_value_t = 64)]
    batch_size: i64,
    /// Also cluster the events into topics (a topic_cluster job and commit per write).
    #[arg(long)]
    with_topics: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    app: AppArgs,
}

#[derive(Args)]
pub struct WriteBench {
    /// Writes to measure.
    #[arg(long, short = 'n', default_value_t = 2000)]
    writes: usize,
    /// Concurrent clients.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: usize,
    /// Memories written into the scope before measuring.
    #[arg(long, default_value_t = 100_000)]
    preload: usize,
    /// Memories per preload request.
    #[arg(long, default_value_t = 500)]
    preload_batch: usize,
    /// Also time a full chain verification of the scope at the end.
    #[arg(long)]
    verify: bool,
    /// Servers on the one database (each its own app, pools and writer
    /// lock, in this process); the measured writes go round-robin across
    /// them, as behind a load balancer.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    instances: u32,
    /// Scopes the measured writes go to, round-robin (the preload fills the
    /// first): writes to different scopes need not wait for one another.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    scopes: u32,
    #[command(flatten)]
    run: BenchRun,
}

/// What every bench that keeps a data dir takes.
#[derive(Args)]
pub struct BenchRun {
    /// Data dir to use (default: a fresh temporary one, removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Keep the data dir.
    #[arg(long)]
    pub keep: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub app: AppArgs,
}

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) app: Arc<crate::app::App>,
    pub(crate) stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub(crate) task: tokio::task::JoinHandle<Result<()>>,
}

pub(crate) async fn start_server(app: &AppArgs, data_dir: &std::path::Path) -> Result<Server> {
    let app = crate::load_app(app, data_dir).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(crate::http_server::serve(
        app.clone(),
        listener,
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    Ok(Server { base, app, stop: Some(tx), task })
}

/// The servers beyond the first of `instances` on the same data dir and
/// database (SQLite file or PostgreSQL), each its own app with its own
/// pools and writer lock, as separate processes would be.
pub(crate) async fn more_instances(app: &AppArgs, data_dir: &std::path::Path, instances: u32) -> Result<Vec<Server>> {
    let mut others = Vec::new();
    for _ in 1..instances {
        others.push(start_server(app, data_dir).await.context("starting another instance")?);
    }
    Ok(others)
}

impl Server {
    /// Stops the server and waits for it (its data dir is left alone).
    pub(crate) async fn stop_serving(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Stops the server, waits for it, and removes `data_dir` when `remove`
    /// (else says where it was kept).
    pub(crate) async fn shutdown(self, data_dir: &std::path::Path, remove: bool) {
        self.stop_serving().await;
        if remove {
            let _ = std::fs::remove_dir_all(data_dir);
        } else {
            eprintln!("data dir kept at {}", data_dir.display());
        }
    }
}

pub(crate) async fn post(client: &HttpClient, url: &str, body: &Value) -> Result<(u16, Value)> {
    let (status, bytes) = post_bytes(client, url, body).await?;
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

/// POSTs `body` and reads the whole response without parsing it (measured
/// phases time the server, not the client's JSON parser).
pub(crate) async fn post_bytes(client: &HttpClient, url: &str, body: &Value) -> Result<(u16, Bytes)> {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let resp = client.request(req).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

const SCOPE: &str = "bench";

fn memory_text(i: usize) -> String {
    const WORDS: &[&str] = &[
        "deploy", "rollback", "latency", "user", "invoice", "schema", "agent", "tool", "cache", "retry", "token",
        "budget",
    ];
    format!("memory {i}: {} {} {} after {} ms", WORDS[i % 12], WORDS[(i / 12) % 12], WORDS[(i / 144) % 12], i % 997)
}

/// What the client side measured.
struct ClientResult {
    preload_secs: f64,
    lat: Vec<Duration>,
    errors: usize,
    secs: f64,
    verify: Option<(u16, Value, f64)>,
}

/// Preloads, then runs the measured writes, then optionally verifies.
async fn client_phase(
    bases: Vec<String>,
    preload: usize,
    preload_batch: usize,
    writes: usize,
    concurrency: usize,
    verify: bool,
    scopes: u32,
) -> Result<ClientResult> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).build_http();
    let base = bases[0].clone();
    let write_url = format!("{base}/v1/memory/write");

    let started = Instant::now();
    let mut next = 0usize;
    while next < preload {
        let n = preload_batch.min(preload - next);
        let nodes: Vec<Value> = (next..next + n)
            .map(|i| json!({"client_id": format!("m-{i}"), "type": "event", "text_summary": memory_text(i), "memory_lane": "shared"}))
            .collect();
        let body = json!({"scope": SCOPE, "input_text": format!("preload batch {next}"), "nodes": nodes});
        let (status, resp) = post(&client, &write_url, &body).await?;
        if status != 200 {
            bail!("preload write failed with {status}: {resp}");
        }
        next += n;
    }
    let preload_secs = started.elapsed().as_secs_f64();

    let body: Arc<dyn Fn(usize) -> Value + Send + Sync> = Arc::new(move |i| {
        let scope = if scopes > 1 { format!("{SCOPE}-{}", i % scopes as usize) } else { SCOPE.to_string() };
        json!({
            "scope": scope,
            "input_text": format!("bench write {i}"),
            "memory_lane": "shared",
            "nodes": [{"client_id": format!("w-{i}"), "type": "event", "text_summary": memory_text(i + 1_000_000)}],
        })
    });
    let urls: Vec<String> = bases.iter().map(|b| format!("{b}/v1/memory/write")).collect();
    let measured = crate::bench_recall::phase_across(&client, Arc::new(urls), "write", writes, concurrency, body).await;
    let (lat, errors, secs) = (measured.lat, measured.errors, measured.secs);
    let verify = if verify {
        let t = Instant::now();
        let (status, resp) =
            post(&client, &format!("{base}/v1/memory/commits/verify"), &json!({"scope": SCOPE})).await?;
        Some((status, resp, t.elapsed().as_secs_f64()))
    } else {
        None
    };
    Ok(ClientResult { preload_secs, lat, errors, secs, verify })
}

pub async fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Write(b) => write_bench(b).await,
        BenchCmd::Derive(b) => derive_bench(b).await,
        BenchCmd::Recall(b) => crate::bench_recall::run(b).await,
        BenchCmd::Policy(b) => crate::bench_policy::run(b).await,
        BenchCmd::Quality(b) => crate::bench_quality::run(b).await,
        BenchCmd::Mixed(b) => crate::bench_mixed::run(b).await,
    }
}

pub(crate) fn temp_data_dir(kind: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "cairn-bench-{kind}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    ))
}

/// Seeds `jobs` writes (concurrency 8) from a client thread.
fn seed_writes(base: String, jobs: usize, per_job: usize, topics: bool) -> Result<(f64, usize)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(64).build_http();
        let url = format!("{base}/v1/memory/write");
        let counter = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..8 {
            let (client, url, counter, errors) = (client.clone(), url.clone(), counter.clone(), errors.clone());
            workers.push(tokio::spawn(async move {
                loop {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        break;
                    }
                    let nodes: Vec<Value> = (0..per_job)
                        .map(|k| json!({"client_id": format!("d-{i}-{k}"), "type": "event", "text_summary": memory_text(i * per_job + k)}))
                        .collect();
                    let body = json!({"scope": SCOPE, "input_text": format!("derive bench {i}"), "memory_lane": "shared",
                        "trigger_topic_cluster": topics, "nodes": nodes});
                    if !matches!(post(&client, &url, &body).await, Ok((200, _))) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for w in workers {
            w.await?;
        }
        Ok((started.elapsed().as_secs_f64(), errors.load(Ordering::Relaxed)))
    })
}

async fn derive_bench(b: DeriveBench) -> Result<()> {
    if b.jobs == 0 || b.workers == 0 || b.nodes_per_job == 0 {
        bail!("--jobs, --workers and --nodes-per-job must be at least 1");
    }
    let data_dir = temp_data_dir("derive");
    let server = start_server(&b.app, &data_dir).await.context("starting the server")?;
    let base = server.base.clone();
    let (jobs, per_job, topics) = (b.jobs, b.nodes_per_job, b.with_topics);
    let seeding = std::thread::spawn(move || seed_writes(base, jobs, per_job, topics));
    let (seed_secs, seed_errors) = tokio::task::spawn_blocking(move || seeding.join())
        .await?
        .map_err(|_| anyhow::anyhow!("seeding panicked"))??;
    if seed_errors > 0 {
        bail!("{seed_errors} seeding writes failed");
    }

    use crate::derive_calls::{Verb, call_ok};
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..b.workers {
        let app = server.app.clone();
        let body = json!({"max_jobs": 100_000, "budget_ms": 20_000, "batch_size": b.batch_size});
        tasks.push(tokio::spawn(async move {
            let mut sums = [0i64; 7]; // claimed, done, nodes, topic runs, retrying+dead, topics created, index build ms
            loop {
                let rep = call_ok(&app, Verb::Tick(body.clone()), &format!("bench-derive-{w}")).await?;
                let claimed = rep["claimed"].as_i64().unwrap_or(0);
                sums[0] += claimed;
                sums[1] += rep["done"].as_i64().unwrap_or(0);
                sums[2] += rep["embed"]["nodes_embedded"].as_i64().unwrap_or(0);
                sums[3] += rep["topic_cluster"]["runs"].as_i64().unwrap_or(0);
                sums[4] += rep["retrying"].as_i64().unwrap_or(0) + rep["dead_lettered"].as_i64().unwrap_or(0);
                sums[5] += rep["topic_cluster"]["topics_created"].as_i64().unwrap_or(0);
                sums[6] += rep["vector_index"]["build_ms"].as_i64().unwrap_or(0);
                if claimed == 0 {
                    return Ok::<_, anyhow::Error>(sums);
                }
            }
        }));
    }
    let mut totals = [0i64; 7];
    for t in tasks {
        let s = t.await??;
        for (a, b) in totals.iter_mut().zip(s) {
            *a += b;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let status = call_ok(&server.app, Verb::OutboxStatus(vec![]), "bench-derive").await?;
    let embed_jobs = b.jobs as f64;
    let result = json!({
        "bench": "derive",
        "embedder": server.app.llm.embedder.label(),
        "jobs_enqueued": {"embed_nodes": b.jobs, "topic_cluster": if b.with_topics { b.jobs } else { 0 }},
        "nodes": b.jobs * b.nodes_per_job,
        "workers": b.workers,
        "batch_size": b.batch_size,
        "seed_seconds": seed_secs,
        "drain_seconds": secs,
        "jobs_done": totals[1],
        "nodes_embedded": totals[2],
        "topic_cluster_runs": totals[3],
        "topics_created": totals[5],
        "index_build_ms": totals[6],
        "failed_attempts": totals[4],
        "embed_jobs_per_sec": embed_jobs / secs,
        "all_jobs_per_sec": totals[1] as f64 / secs,
        "nodes_per_sec": totals[2] as f64 / secs,
        "outbox_after": status["outbox"],
    });
    if b.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "cairn bench derive: {} writes ({} memories each, topics {}) drained by {} worker(s), embedder {}",
            b.jobs,
            b.nodes_per_job,
            if b.with_topics { "on" } else { "off" },
            b.workers,
            server.app.llm.embedder.label()
        );
        println!("  seed       {:.1} s ({:.0} writes/s)", seed_secs, b.jobs as f64 / seed_secs);
        println!(
            "  drain      {:.2} s: {} jobs done ({:.0} jobs/s, embed jobs {:.0}/s), {} nodes embedded ({:.0}/s), {} topic runs, {} topics",
            secs,
            totals[1],
            result["all_jobs_per_sec"].as_f64().unwrap_or(0.0),
            result["embed_jobs_per_sec"].as_f64().unwrap_or(0.0),
            totals[2],
            result["nodes_per_sec"].as_f64().unwrap_or(0.0),
            totals[3],
            totals[5]
        );
        println!("  index      {} ms building the vector index (included in the drain)", totals[6]);
        println!("  outbox     {}", status["outbox"]);
    }
    server.shutdown(&data_dir, true).await;
    let left = status["outbox"]["pending"].as_i64().unwrap_or(0)
        + status["outbox"]["retrying"].as_i64().unwrap_or(0)
        + status["outbox"]["dead_letter"].as_i64().unwrap_or(0);
    if left > 0 {
        bail!("{left} jobs were not done");
    }
    Ok(())
}

async fn write_bench(b: WriteBench) -> Result<()> {
    if b.concurrency == 0 || b.writes == 0 {
        bail!("--writes and --concurrency must be at least 1");
    }
    let temp = b.run.data_dir.is_none();
    let data_dir = match &b.run.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "cairn-bench-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        )),
    };
    if temp && data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)?;
    }
    let server = start_server(&b.run.app, &data_dir).await.context("starting the server")?;
    let others = more_instances(&b.run.app, &data_dir, b.instances).await?;
    let bases: Vec<String> = std::iter::once(&server).chain(&others).map(|s| s.base.clone()).collect();

    // The client runs on its own thread and runtime, like a separate
    // process would, so it does not compete for the server's workers.
    let (preload, preload_batch, writes, concurrency, verify, scopes) =
        (b.preload, b.preload_batch, b.writes, b.concurrency, b.verify, b.scopes);
    let client_thread = std::thread::spawn(move || -> Result<ClientResult> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(client_phase(bases, preload, preload_batch, writes, concurrency, verify, scopes))
    });
    let ClientResult { preload_secs, mut lat, errors, secs, verify } =
        tokio::task::spawn_blocking(move || client_thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("bench client panicked"))??;
    lat.sort();

    let result = json!({
        "bench": "write",
        "writes": b.writes,
        "concurrency": b.concurrency,
        "instances": b.instances,
        "scopes": b.scopes,
        "backend": server.app.host_db.backend_name(),
        "preloaded_memories": b.preload,
        "preload_seconds": preload_secs,
        "preload_memories_per_sec": if preload_secs > 0.0 { b.preload as f64 / preload_secs } else { 0.0 },
        "latency_ms": {
            "p50": percentile(&lat, 50.0), "p95": percentile(&lat, 95.0), "p99": percentile(&lat, 99.0),
            "max": lat.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0),
        },
        "throughput_writes_per_sec": lat.len() as f64 / secs,
        "errors": errors,
        "verify": verify.as_ref().map(|(s, r, t)| json!({"status": s, "ok": r["ok"], "checked": r["checked"], "seconds": t})),
        "sync": format!("{:?}", b.run.app.sync).to_lowercase(),
    });
    if b.run.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "cairn bench write: {} writes at concurrency {} across {} instance(s) on {} into a scope preloaded with {} memories (sync={})",
            b.writes,
            b.concurrency,
            b.instances,
            result["backend"].as_str().unwrap_or(""),
            b.preload,
            result["sync"].as_str().unwrap_or("")
        );
        if b.preload > 0 {
            println!(
                "  preload    {:.1} s ({:.0} memories/s)",
                preload_secs,
                result["preload_memories_per_sec"].as_f64().unwrap_or(0.0)
            );
        }
        let l = &result["latency_ms"];
        println!(
            "  latency    p50 {:.3} ms   p95 {:.3} ms   p99 {:.3} ms   max {:.3} ms",
            l["p50"].as_f64().unwrap_or(0.0),
            l["p95"].as_f64().unwrap_or(0.0),
            l["p99"].as_f64().unwrap_or(0.0),
            l["max"].as_f64().unwrap_or(0.0)
        );
        println!(
            "  throughput {:.0} writes/s   errors {}",
            result["throughput_writes_per_sec"].as_f64().unwrap_or(0.0),
            result["errors"]
        );
        if let Some((status, resp, t)) = &verify {
            println!("  verify     {status} ok={} checked={} in {:.2} s", resp["ok"], resp["checked"], t);
        }
    }

    for other in others {
        other.stop_serving().await;
    }
    server.shutdown(&data_dir, temp && !b.run.keep).await;
    if result["errors"].as_u64().unwrap_or(0) > 0 {
        bail!("{} writes failed", result["errors"]);
    }
    Ok(())
}

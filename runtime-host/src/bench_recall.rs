//! `cairn bench recall`: seeds a fresh scope through the API, lets
//! derivation finish (embeddings and the IVF index), then measures recall
//! and recall_text latency and throughput at each concurrency, and write
//! latency with and without a concurrent recall load.

use crate::bench::{BenchRun, HttpClient, percentile, post, post_bytes, start_server, temp_data_dir};
use anyhow::{Context, Result, bail};
use clap::Args;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct RecallBench {
    /// Memories seeded into the scope (through /v1/memory/write).
    #[arg(long, default_value_t = 100_000)]
    memories: usize,
    /// Memories per seeding write.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Requests measured per phase.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Concurrency levels to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Writes measured alone and under a concurrency-16 recall load.
    #[arg(long, default_value_t = 300)]
    writes: usize,
    /// Recall `limit` (default: the profile's).
    #[arg(long)]
    limit: Option<i64>,
    /// How the seeded memories get vectors: `client` (each write carries
    /// the lexical embedder's vector of its text, so derivation only indexes
    /// them — short even with the slow minilm) or `derived` (derivation
    /// embeds every memory with the configured embedder).
    #[arg(long, default_value = "client")]
    seed_vectors: String,
    /// Servers on the one database for the measured phases (each its own
    /// app, pools and writer lock, in this process); requests go
    /// round-robin across them. Seeding and derivation use the first.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    instances: u32,
    #[command(flatten)]
    run: BenchRun,
}

const SCOPE: &str = "bench-recall";
const TOPICS: &[&str] = &[
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
];
const DETAILS: &[&str] =
    &["failed", "succeeded", "timed out", "was slow", "was retried", "was approved", "was rejected", "needs review"];
const WHO: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];

/// A seeded memory: a topic, a detail, a person and a number, so texts
/// share words in clusters.
fn memory(i: usize) -> String {
    format!(
        "{} {} {} for {} on run {}",
        TOPICS[i % TOPICS.len()],
        TOPICS[(i / 7) % TOPICS.len()],
        DETAILS[(i / 3) % DETAILS.len()],
        WHO[(i / 11) % WHO.len()],
        i % 1009
    )
}

/// A query: a few of the vocabulary's words.
fn query(i: usize) -> String {
    format!("{} {} {}", TOPICS[(i * 5) % TOPICS.len()], DETAILS[(i * 3) % DETAILS.len()], WHO[(i * 7) % WHO.len()])
}

/// One measured phase: sorted latencies of the successful requests.
#[derive(Default)]
pub(crate) struct Phase {
    pub(crate) name: String,
    pub(crate) concurrency: usize,
    pub(crate) lat: Vec<Duration>,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
    pub(crate) secs: f64,
}

impl Phase {
    pub(crate) fn json(&self) -> Value {
        json!({
            "phase": self.name, "concurrency": self.concurrency, "requests": self.lat.len() + self.errors,
            "p50_ms": percentile(&self.lat, 50.0), "p95_ms": percentile(&self.lat, 95.0),
            "p99_ms": percentile(&self.lat, 99.0), "per_sec": self.lat.len() as f64 / self.secs.max(1e-9),
            "errors": self.errors, "first_error": self.first_error,
        })
    }
}

/// Prints phases as the benches' table.
pub(crate) fn print_phases(phases: &[Phase]) {
    println!(
        "  {:<28} {:>3} {:>9} {:>9} {:>9} {:>10} {:>6}",
        "phase", "c", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors"
    );
    for p in phases {
        println!(
            "  {:<28} {:>3} {:>9.2} {:>9.2} {:>9.2} {:>10.0} {:>6}",
            p.name,
            p.concurrency,
            percentile(&p.lat, 50.0),
            percentile(&p.lat, 95.0),
            percentile(&p.lat, 99.0),
            p.lat.len() as f64 / p.secs.max(1e-9),
            p.errors
        );
        if let Some(e) = &p.first_error {
            println!("      first error: {}", e.chars().take(300).collect::<String>());
        }
    }
}

/// Runs `n` requests built by `body(i)` against `url` at `concurrency`
/// (also the write bench's measured phase).
pub(crate) async fn phase(
    client: &HttpClient,
    url: String,
    name: &str,
    n: usize,
    concurrency: usize,
    body: Arc<dyn Fn(usize) -> Value + Send + Sync>,
) -> Phase {
    phase_across(client, Arc::new(vec![url]), name, n, concurrency, body).await
}

/// [`phase`] against several servers: request `i` goes to `urls[i % len]`
/// (instances behind a round-robin load balancer).
pub(crate) async fn phase_across(
    client: &HttpClient,
    urls: Arc<Vec<String>>,
    name: &str,
    n: usize,
    concurrency: usize,
    body: Arc<dyn Fn(usize) -> Value + Send + Sync>,
) -> Phase {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, urls, next, body) = (client.clone(), urls.clone(), next.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut p = Phase::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return p;
                }
                let b = body(i);
                let t = Instant::now();
                match post_bytes(&client, &urls[i % urls.len()], &b).await {
                    Ok((200, _)) => p.lat.push(t.elapsed()),
                    Ok((status, resp)) => {
                        p.errors += 1;
                        p.first_error.get_or_insert_with(|| format!("{status}: {}", String::from_utf8_lossy(&resp)));
                    }
                    Err(e) => {
                        p.errors += 1;
                        p.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
        }));
    }
    let mut out = Phase { name: name.into(), concurrency, ..Phase::default() };
    for t in tasks {
        if let Ok(p) = t.await {
            out.lat.extend(p.lat);
            out.errors += p.errors;
            if out.first_error.is_none() {
                out.first_error = p.first_error;
            }
        }
    }
    out.secs = started.elapsed().as_secs_f64();
    out.lat.sort();
    out
}

fn write_body(i: usize) -> Value {
    json!({"scope": SCOPE, "input_text": format!("bench write {i}"), "memory_lane": "shared",
           "trigger_topic_cluster": false,
           "nodes": [{"client_id": format!("w-{i}"), "type": "event", "text_summary": memory(i + 7_000_000)}]})
}

/// Everything the client side does after seeding and draining.
async fn measure(bases: Vec<String>, b: Arc<BenchPlan>) -> Result<(Vec<Phase>, Value)> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).build_http();
    // Each route on every instance; requests go round-robin across them.
    let on_all = |path: &str| Arc::new(bases.iter().map(|b| format!("{b}{path}")).collect::<Vec<_>>());
    let (recall_urls, text_urls, write_urls, find_urls) = (
        on_all("/v1/memory/recall"),
        on_all("/v1/memory/recall_text"),
        on_all("/v1/memory/write"),
        on_all("/v1/memory/find"),
    );
    let recall_url = recall_urls[0].clone();
    let vectors: Arc<Vec<Vec<f32>>> =
        Arc::new((0..512).map(|i| crate::llm::local_embedder::embed(&query(i), b.dims)).collect());
    let limit = b.limit;
    let with_limit = move |mut v: Value| {
        if let Some(l) = limit {
            v["limit"] = json!(l);
        }
        v
    };
    let recall_body: Arc<dyn Fn(usize) -> Value + Send + Sync> = {
        let vectors = vectors.clone();
        Arc::new(move |i| with_limit(json!({"scope": SCOPE, "query_embedding": vectors[i % vectors.len()]})))
    };
    // recall_text twice: every query new (each one embedded: the query
    // cache misses), then 16 queries over and over (the cache hits).
    let miss_body: Arc<dyn Fn(usize) -> Value + Send + Sync> =
        Arc::new(move |i| with_limit(json!({"scope": SCOPE, "query_text": format!("{} {}", query(i), 100_000 + i)})));
    let text_body: Arc<dyn Fn(usize) -> Value + Send + Sync> =
        Arc::new(move |i| with_limit(json!({"scope": SCOPE, "query_text": query(i % 16)})));

    // One debug answer says how stage 1 was served.
    let mut probe = recall_body(0);
    probe["return_debug"] = json!(true);
    let (status, resp) = post(&client, &recall_url, &probe).await?;
    if status != 200 {
        bail!("recall failed with {status}: {resp}");
    }
    let stage1 = resp["debug"]["stage1"].clone();

    // Warm-up.
    phase_across(&client, recall_urls.clone(), "warmup", 200, 4, recall_body.clone()).await;
    let mut phases = Vec::new();
    // The floor: a find on an empty scope costs what any request costs
    // (HTTP, a fresh instance of the composed gateway, two SQLite statements)
    // and nothing more; recall throughput cannot exceed it.
    let floor: Arc<dyn Fn(usize) -> Value + Send + Sync> =
        Arc::new(|_| json!({"scope": "bench-floor", "client_id": "none"}));
    for &c in &b.concurrency {
        phases.push(
            phase_across(&client, find_urls.clone(), "floor: find (empty scope)", b.requests, c, floor.clone()).await,
        );
        phases.push(phase_across(&client, recall_urls.clone(), "recall", b.requests, c, recall_body.clone()).await);
        let miss = {
            let body = miss_body.clone();
            // Each concurrency level asks its own new texts.
            Arc::new(move |i| body(i + c * 10_000_000))
        };
        phases.push(phase_across(&client, text_urls.clone(), "recall_text (cache miss)", b.requests, c, miss).await);
        phases.push(
            phase_across(&client, text_urls.clone(), "recall_text (cache hit)", b.requests, c, text_body.clone()).await,
        );
    }
    // Writes alone, then while 16 clients recall.
    let writes: Arc<dyn Fn(usize) -> Value + Send + Sync> = Arc::new(write_body);
    phases.push(phase_across(&client, write_urls.clone(), "write (alone)", b.writes, 1, writes.clone()).await);
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (client, urls, stop, body) = (client.clone(), recall_urls.clone(), stop.clone(), recall_body.clone());
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for w in 0..16 {
                let (client, url, stop, body) =
                    (client.clone(), urls[w % urls.len()].clone(), stop.clone(), body.clone());
                tasks.push(tokio::spawn(async move {
                    let mut i = w;
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let _ = post(&client, &url, &body(i)).await;
                        i += 16;
                        n += 1;
                    }
                    n
                }));
            }
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap_or(0);
            }
            total
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let offset: Arc<dyn Fn(usize) -> Value + Send + Sync> = Arc::new(|i| write_body(i + 1_000_000));
    phases.push(phase_across(&client, write_urls, "write (during recall c=16)", b.writes, 1, offset).await);
    stop.store(true, Ordering::Relaxed);
    let background = load.await.unwrap_or(0);
    let bg_rate = background as f64 / started.elapsed().as_secs_f64();
    Ok((phases, json!({"stage1": stage1, "background_recalls_per_sec": bg_rate})))
}

struct BenchPlan {
    requests: usize,
    concurrency: Vec<usize>,
    writes: usize,
    limit: Option<i64>,
    dims: usize,
}

/// Writes `n` memories in batches from 2 concurrent clients; with
/// `client_vectors`, each carries its text's lexical vector of `dims`.
async fn seed(base: &str, n: usize, batch: usize, client_vectors: bool, dims: usize) -> Result<f64> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(8).build_http();
    let url = format!("{base}/v1/memory/write");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let from = next.fetch_add(batch, Ordering::Relaxed);
                if from >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let nodes: Vec<Value> = (from..(from + batch).min(n))
                    .map(|i| {
                        let mut node =
                            json!({"client_id": format!("m-{i}"), "type": "event", "text_summary": memory(i)});
                        if client_vectors {
                            node["embedding"] = json!(crate::llm::local_embedder::embed(&memory(i), dims));
                        }
                        node
                    })
                    .collect();
                let body = json!({"scope": SCOPE, "input_text": format!("seed {from}"), "memory_lane": "shared",
                                  "trigger_topic_cluster": false, "nodes": nodes});
                let (status, resp) = post(&client, &url, &body).await?;
                if status != 200 {
                    bail!("seeding write failed with {status}: {resp}");
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Ticks in process until nothing is left; returns (seconds, index build ms).
pub(crate) async fn drain(app: &Arc<crate::app::App>) -> Result<(f64, i64)> {
    use crate::derive_calls::{Verb, call_ok};
    let started = Instant::now();
    let body = json!({"max_jobs": 100_000, "budget_ms": 20_000, "batch_size": 64});
    let mut build_ms = 0;
    loop {
        let rep = call_ok(app, Verb::Tick(body.clone()), "bench-recall").await?;
        build_ms += rep["vector_index"]["build_ms"].as_i64().unwrap_or(0);
        if rep["claimed"].as_i64().unwrap_or(0) == 0 {
            return Ok((started.elapsed().as_secs_f64(), build_ms));
        }
    }
}

pub async fn run(b: RecallBench) -> Result<()> {
    if b.memories == 0 || b.requests == 0 || b.batch == 0 || b.concurrency.contains(&0) {
        bail!("--memories, --requests, --batch and every --concurrency must be at least 1");
    }
    let temp = b.run.data_dir.is_none();
    let data_dir = b.run.data_dir.clone().unwrap_or_else(|| temp_data_dir("recall"));
    let server = start_server(&b.run.app, &data_dir).await.context("starting the server")?;
    let base = server.base.clone();

    if b.seed_vectors != "client" && b.seed_vectors != "derived" {
        bail!("--seed-vectors must be client or derived");
    }
    let dims = crate::tiers::embedding_dims(&crate::tiers::load(&b.run.app.tiers_path())?).unwrap_or(384);
    let (seed_base, memories, batch, client_vectors) = (base.clone(), b.memories, b.batch, b.seed_vectors == "client");
    let seed_secs = std::thread::spawn(move || -> Result<f64> {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(seed(
            &seed_base,
            memories,
            batch,
            client_vectors,
            dims,
        ))
    });
    let seed_secs = tokio::task::spawn_blocking(move || seed_secs.join())
        .await?
        .map_err(|_| anyhow::anyhow!("seeding panicked"))??;
    let (drain_secs, build_ms) = drain(&server.app).await?;
    let plan = Arc::new(BenchPlan {
        requests: b.requests,
        concurrency: b.concurrency.clone(),
        writes: b.writes,
        limit: b.limit,
        dims,
    });
    let others = crate::bench::more_instances(&b.run.app, &data_dir, b.instances).await?;
    let bases: Vec<String> = std::iter::once(base.clone()).chain(others.iter().map(|s| s.base.clone())).collect();
    let client = std::thread::spawn(move || -> Result<(Vec<Phase>, Value)> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?
            .block_on(measure(bases, plan))
    });
    let (phases, extra) = tokio::task::spawn_blocking(move || client.join())
        .await?
        .map_err(|_| anyhow::anyhow!("bench client panicked"))??;

    let result = json!({
        "bench": "recall",
        "memories": b.memories,
        "embedder": server.app.llm.embedder.label(),
        "backend": server.app.host_db.backend_name(),
        "instances": b.instances,
        "seed_vectors": b.seed_vectors,
        "seed_seconds": seed_secs,
        "drain_seconds": drain_secs,
        "index_build_ms": build_ms,
        "stage1": extra["stage1"],
        "background_recalls_per_sec": extra["background_recalls_per_sec"],
        "phases": phases.iter().map(Phase::json).collect::<Vec<_>>(),
        "targets": {"recall_text_p95_ms_at_c1_cache_miss": 25, "recall_text_p95_ms_at_c1_cache_hit": 8,
                    "recalls_per_sec_at_c16": 2000},
    });
    if b.run.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "cairn bench recall: {} memories in one scope on {}, {} instance(s), embedder {}, vectors {}",
            b.memories,
            result["backend"].as_str().unwrap_or(""),
            b.instances,
            server.app.llm.embedder.label(),
            if b.seed_vectors == "client" { "from the client (lexical)" } else { "derived" }
        );
        println!("  seed       {seed_secs:.1} s ({:.0} memories/s)", b.memories as f64 / seed_secs);
        println!("  derive     {drain_secs:.1} s (index build {build_ms} ms)");
        let s = &result["stage1"];
        println!(
            "  stage 1    mode {} — {} of {} lists probed, {} codes scanned",
            s["mode"], s["lists_probed"], s["lists_total"], s["codes_scanned"]
        );
        print_phases(&phases);
        println!(
            "  background recall load during the write phase: {:.0} recalls/s",
            extra["background_recalls_per_sec"].as_f64().unwrap_or(0.0)
        );
        println!(
            "  targets: recall_text p95 at c=1 <= 25 ms on a query-cache miss, <= 8 ms on a hit; >= 2,000 recalls/s at c=16"
        );
    }
    for other in others {
        other.stop_serving().await;
    }
    server.shutdown(&data_dir, temp && !b.run.keep).await;
    let errors: usize = phases.iter().filter(|p| p.name != "warmup").map(|p| p.errors).sum();
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}

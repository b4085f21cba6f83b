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
    /// Data dir to use (default: a fresh temporary one, removed afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the temporary data dir.
    #[arg(long)]
    keep: bool,
    /// Also time a full chain verification of the scope at the end.
    #[arg(long)]
    verify: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    app: AppArgs,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Server {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

async fn start_server(app: &AppArgs, data_dir: &std::path::Path) -> Result<Server> {
    let app = crate::load_app(app, data_dir).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(crate::http_server::serve(
        app,
        listener,
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    Ok(Server { base, stop: Some(tx), task })
}

async fn post(client: &HttpClient, url: &str, body: &Value) -> Result<(u16, Value)> {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let resp = client.request(req).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
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
    base: String,
    preload: usize,
    preload_batch: usize,
    writes: usize,
    concurrency: usize,
    verify: bool,
) -> Result<ClientResult> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).build_http();
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

    let counter = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, counter, errors) = (client.clone(), write_url.clone(), counter.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                if i >= writes {
                    break;
                }
                let body = json!({
                    "scope": SCOPE,
                    "input_text": format!("bench write {i}"),
                    "memory_lane": "shared",
                    "nodes": [{"client_id": format!("w-{i}"), "type": "event", "text_summary": memory_text(i + 1_000_000)}],
                });
                let t = Instant::now();
                match post(&client, &url, &body).await {
                    Ok((200, _)) => lat.push(t.elapsed()),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut lat = Vec::with_capacity(writes);
    for w in workers {
        lat.extend(w.await?);
    }
    let secs = started.elapsed().as_secs_f64();
    let verify = if verify {
        let t = Instant::now();
        let (status, resp) =
            post(&client, &format!("{base}/v1/memory/commits/verify"), &json!({"scope": SCOPE})).await?;
        Some((status, resp, t.elapsed().as_secs_f64()))
    } else {
        None
    };
    Ok(ClientResult { preload_secs, lat, errors: errors.load(Ordering::Relaxed), secs, verify })
}

pub async fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Write(b) => write_bench(b).await,
    }
}

async fn write_bench(b: WriteBench) -> Result<()> {
    if b.concurrency == 0 || b.writes == 0 {
        bail!("--writes and --concurrency must be at least 1");
    }
    let temp = b.data_dir.is_none();
    let data_dir = match &b.data_dir {
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
    let mut server = start_server(&b.app, &data_dir).await.context("starting the server")?;

    // The client runs on its own thread and runtime, like a separate
    // process would, so it does not compete for the server's workers.
    let base = server.base.clone();
    let (preload, preload_batch, writes, concurrency, verify) =
        (b.preload, b.preload_batch, b.writes, b.concurrency, b.verify);
    let client_thread = std::thread::spawn(move || -> Result<ClientResult> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(client_phase(base, preload, preload_batch, writes, concurrency, verify))
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
        "sync": format!("{:?}", b.app.sync).to_lowercase(),
    });
    if b.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "cairn bench write: {} writes at concurrency {} into a scope preloaded with {} memories (sync={})",
            b.writes,
            b.concurrency,
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

    if let Some(stop) = server.stop.take() {
        let _ = stop.send(());
    }
    let _ = (&mut server.task).await;
    if temp && !b.keep {
        let _ = std::fs::remove_dir_all(&data_dir);
    } else {
        eprintln!("data dir kept at {}", data_dir.display());
    }
    if result["errors"].as_u64().unwrap_or(0) > 0 {
        bail!("{} writes failed", result["errors"]);
    }
    Ok(())
}

//! `cairn`: Cairn's wasmtime host and operator CLI.
//!
//! - `cairn up`: serve the app described by `spin.toml` (the same `.wasm`
//!   components Spin runs) on the embedded SQLite default.
//! - `cairn job ...`: derivation and outbox operations on a data dir.
//! - `cairn bench write|derive|recall|policy`: write latency, derivation
//!   throughput, recall latency, rule evaluation and tool selection latency.
//! - `cairn tiers-json`: the tiers file as the JSON `spin up` is given.

mod alert_sender;
mod app;
mod app_manifest;
mod batch_writer;
mod bench;
mod bench_mixed;
mod bench_policy;
mod bench_quality;
mod bench_recall;
mod compose;
mod console;
mod cron;
mod derive_calls;
mod engine;
mod evidence_bundle;
mod evidence_publisher;
mod gates;
mod host_db;
mod http_server;
mod jobs;
mod llm;
mod metrics;
mod migrate_store;
mod postgres;
mod recall_audit;
mod spin_bindings;
mod sqlite;
mod state;
mod telemetry;
mod tenant_limits;
mod tiers;
mod lanes;
mod variables;

/// The repository root for tests, read at run time: the build directory is
/// shared by every checkout, so a test binary compiled in one may run for
/// another, and `env!` would point it at the other's files.
#[cfg(test)]
fn repo_root() -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from);
    dir.unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))).join("..")
}

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use sqlite::runtime_config::{SqliteConfig, Synchronous};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Cairn: a verifiable memory kernel for AI agents, as WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the app (HTTP API on --listen).
    Up(UpArgs),
    /// Operator jobs on a data dir: derivation, outbox status and replay, rebuilds.
    Job {
        #[command(subcommand)]
        what: jobs::JobCmd,
    },
    /// Before a rollout: is this configuration (the flags, variables and
    /// environment of `cairn up`) fit to serve hosted tenants? Exit 0 / 2 / 1.
    Preflight(gates::preflight::PreflightArgs),
    /// A rollout's release evidence bundle: collect (and record in the
    /// audit log) or verify.
    Release {
        #[command(subcommand)]
        what: gates::evidence::ReleaseCmd,
    },
    /// Release gates against a live server (`gate core`).
    Gate {
        #[command(subcommand)]
        what: GateCmd,
    },
    /// Benchmarks over HTTP against a fresh data dir.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCmd,
    },
    /// Tier profiles: print the tiers file as the JSON the `tier_profiles`
    /// variable takes (what `make tiers-json` writes to config/tiers.json
    /// for `spin up`).
    TiersJson {
        #[arg(long, env = "CAIRN_TIERS", default_value = "config/tiers.yaml")]
        tiers: PathBuf,
    },
}

#[derive(Subcommand)]
enum GateCmd {
    /// The core production gate: API and database probes, a contract smoke
    /// in a gate tenant it creates and tears down, the health gate, the
    /// cross-tenant consistency check and a short perf run. Exit 0 / 2 / 1.
    Core(gates::core::CoreGateArgs),
}

/// Where the app and its data live, shared by `up` and `bench`.
#[derive(Args, Clone, Debug)]
pub struct AppArgs {
    /// The app manifest (Spin manifest v2).
    #[arg(long, env = "CAIRN_MANIFEST", default_value = "spin.toml")]
    pub manifest: PathBuf,
    /// Tier profiles (ProvisioningProfile rows), passed to the components as
    /// variables [default: config/tiers.yaml beside the manifest].
    #[arg(long, env = "CAIRN_TIERS")]
    pub tiers: Option<PathBuf>,
    /// Admin token for /v1/admin/* and packs (unset: those routes answer 503).
    #[arg(long, env = "CAIRN_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Set an application variable (repeatable), like `spin up --variable`.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// PostgreSQL for the components' data instead of the data dir's SQLite
    /// (`postgres://user:password@host:port/db`; docs/postgres.md): sets
    /// the `database_url` and `database_host` variables.
    #[arg(long, env = "CAIRN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A second PostgreSQL for the tenants of tiers placed there
    /// (`resource_caps.store: postgres`, `driver_flags.store_connection:
    /// tenant_database_url`; docs/postgres.md): sets the
    /// `tenant_database_url` and `tenant_database_host` variables.
    #[arg(long, env = "CAIRN_TENANT_DATABASE_URL", hide_env_values = true)]
    pub tenant_database_url: Option<String>,
    /// PEM certificates of the CA a PostgreSQL server's certificate chains
    /// to, besides Mozilla's roots (for `sslmode=require`, which verifies).
    #[arg(long, env = "CAIRN_DATABASE_CA_FILE")]
    pub database_ca_file: Option<PathBuf>,
    /// SQLite durability: `normal` survives process crashes, `full` also power loss.
    #[arg(long, env = "CAIRN_SYNC", value_enum, default_value = "normal")]
    pub sync: Synchronous,
    /// Directory for compiled components (default: $XDG_CACHE_HOME/cairn or ~/.cache/cairn).
    #[arg(long, env = "CAIRN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile components on every start instead of caching them.
    #[arg(long)]
    pub no_cache: bool,
    /// Requests in flight at once (the instance pool's size).
    #[arg(long, env = "CAIRN_MAX_CONCURRENCY", default_value_t = 128)]
    pub max_concurrency: u32,
    /// Worker threads of the guest lane, where every guest but a write runs
    /// (reads, admin calls, cron ticks), so the threads serving HTTP (and
    /// running writes) never wait behind a recall (0: every guest on those
    /// threads; default: one per core). docs/derivation.md.
    #[arg(long, env = "CAIRN_GUEST_THREADS")]
    pub guest_threads: Option<usize>,
    /// Longest a request may run before it is stopped.
    #[arg(long, env = "CAIRN_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub request_timeout_secs: u64,
    /// Largest memory one guest module may use, MiB.
    #[arg(long, env = "CAIRN_MAX_INSTANCE_MEMORY_MB", default_value_t = 1024)]
    pub max_instance_memory_mb: usize,
    /// Embedder behind `generate-embeddings`: `minilm` (all-MiniLM-L6-v2 in
    /// process), `lexical` (feature hashing; `local` is its old name),
    /// `auto` (minilm when its files are in --ai-models-dir, else lexical),
    /// `openai` (an OpenAI-compatible /v1/embeddings endpoint) or `fail`
    /// (every call fails; for testing).
    #[arg(long, env = "CAIRN_EMBEDDER", default_value = "auto")]
    pub embedder: String,
    /// Spin's `ai-models` directory: all-MiniLM-L6-v2 in `all-minilm-l6-v2/`
    /// (`make models` fills ~/.cache/cairn/ai-models).
    #[arg(long, env = "CAIRN_AI_MODELS")]
    pub ai_models_dir: Option<PathBuf>,
    /// Query embeddings kept for recall_text (an LRU; 0 = no cache).
    #[arg(long, env = "CAIRN_EMBED_CACHE", default_value_t = 4096)]
    pub embed_cache_entries: usize,
    /// URL of the OpenAI-compatible endpoint (base URL or full .../v1/embeddings).
    #[arg(long, env = "CAIRN_EMBEDDER_URL")]
    pub embedder_url: Option<String>,
    /// Model name sent to the endpoint.
    #[arg(long, env = "CAIRN_EMBEDDER_MODEL", default_value = "text-embedding-3-small")]
    pub embedder_model: String,
    /// Bearer token for the endpoint.
    #[arg(long, env = "CAIRN_EMBEDDER_API_KEY", hide_env_values = true)]
    pub embedder_api_key: Option<String>,
    /// Timeout of one embeddings request, ms.
    #[arg(long, env = "CAIRN_EMBEDDER_TIMEOUT_MS", default_value_t = 10_000)]
    pub embedder_timeout_ms: u64,
}

impl AppArgs {
    /// The tiers file: `--tiers` as given, else `config/tiers.yaml` in the
    /// manifest's directory (the manifest's component paths are resolved
    /// against that directory too, so `--manifest DIR/spin.toml` works from
    /// anywhere).
    pub fn tiers_path(&self) -> PathBuf {
        match &self.tiers {
            Some(t) => t.clone(),
            None => tiers_beside(&self.manifest),
        }
    }
}

/// `config/tiers.yaml` in the directory of `manifest`.
pub fn tiers_beside(manifest: &Path) -> PathBuf {
    config_beside(manifest, "tiers.yaml")
}

/// `config/<name>` in the directory of `manifest`.
pub fn config_beside(manifest: &Path, name: &str) -> PathBuf {
    let dir = manifest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    dir.join("config").join(name)
}

#[derive(Args)]
struct UpArgs {
    /// Address to listen on.
    #[arg(long, env = "CAIRN_LISTEN", default_value = "127.0.0.1:3001")]
    listen: String,
    /// Data directory (the embedded SQLite database lives here).
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = ".cairn")]
    data_dir: PathBuf,
    /// Do not run the manifest's cron schedules (derivation then runs only
    /// through `POST /v1/admin/derive/tick` or `cairn job derive`), nor
    /// the alert dispatch.
    #[arg(long, env = "CAIRN_NO_CRON")]
    no_cron: bool,
    /// Seconds between alert dispatches (`cairn job alert-dispatch`; 0 = never).
    #[arg(long, env = "CAIRN_ALERT_INTERVAL_SECS", default_value_t = 60)]
    alert_interval_secs: u64,
    #[command(flatten)]
    app: AppArgs,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.trim().to_string(), v.to_string())).ok_or_else(|| "expected NAME=VALUE".into())
}

fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("cairn").join("compiled"))
}

/// `~/.cache/cairn/ai-models` (where `make models` puts all-MiniLM-L6-v2).
fn default_ai_models_dir() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".cache/cairn/ai-models")
}

/// Loads the app for `args` with its data in `data_dir`.
pub async fn load_app(args: &AppArgs, data_dir: &Path) -> Result<Arc<app::App>> {
    load_app_with(args, data_dir, None).await
}

/// Whether the resolved variables leave memory auth off.
pub fn auth_off(vars: &variables::AppVariables) -> bool {
    vars.get("memory_auth_mode").map(str::trim).is_none_or(|m| m.is_empty() || m == "off")
}

/// The `Host` values a server listening on `addr` answers to: the address
/// itself and the loopback names, with its port.
fn own_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut hosts = vec![addr.to_string()];
    for name in ["localhost", "127.0.0.1", "[::1]"] {
        let h = format!("{name}:{port}");
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts
}

/// The variables the components get: the manifest's defaults under the
/// tiers file's, the environment's (`SPIN_VARIABLE_*`) and the command
/// line's (`--var`, `--admin-token`); with auth off, a server's own hosts
/// join `allowed_hosts`.
pub fn app_variables(
    args: &AppArgs,
    manifest: &app_manifest::AppManifest,
    tier_vars: &BTreeMap<String, String>,
    listen: Option<SocketAddr>,
) -> Result<variables::AppVariables> {
    let mut cli_vars: BTreeMap<String, String> = args.vars.iter().cloned().collect();
    if let Some(t) = &args.admin_token {
        cli_vars.insert("admin_token".into(), t.clone());
    }
    for (url, prefix) in [(&args.database_url, ""), (&args.tenant_database_url, "tenant_")] {
        if let Some(url) = url.as_deref().filter(|u| !u.trim().is_empty()) {
            cli_vars.insert(format!("{prefix}database_host"), postgres::grant_for(url)?);
            cli_vars.insert(format!("{prefix}database_url"), url.to_string());
        }
    }
    let mut variables = variables::AppVariables::resolve(manifest, tier_vars, std::env::vars(), &cli_vars)?;
    if let Some(addr) = listen
        && auth_off(&variables)
    {
        variables.extend_list("allowed_hosts", &own_hosts(addr));
    }
    Ok(variables)
}

/// The embedder `--embedder` and its flags configure (`dims` from the tiers).
pub fn embedder_from_args(args: &AppArgs, dims: usize) -> Result<llm::Embedder> {
    llm::Embedder::from_config(&llm::EmbedderConfig {
        kind: args.embedder.clone(),
        url: args.embedder_url.clone(),
        model: args.embedder_model.clone(),
        api_key: args.embedder_api_key.clone(),
        timeout: Duration::from_millis(args.embedder_timeout_ms.max(1)),
        dims,
        ai_models_dir: args.ai_models_dir.clone().unwrap_or_else(default_ai_models_dir),
    })
}

/// [`load_app`] for a server that will listen on `listen`: with auth off,
/// its own hosts join `allowed_hosts` (the gateway's DNS-rebinding guard).
pub async fn load_app_with(args: &AppArgs, data_dir: &Path, listen: Option<SocketAddr>) -> Result<Arc<app::App>> {
    let manifest = app_manifest::AppManifest::load(&args.manifest)?;
    let mut tier_vars = tiers::load(&args.tiers_path())?;
    let dims = tiers::embedding_dims(&tier_vars).unwrap_or(384);
    let embedder = embedder_from_args(args, dims)?;
    // What derived vectors are labelled with (below env and --var in precedence).
    tier_vars.insert("embedding_model_label".into(), embedder.label());
    // Recall audit rows come back to the host, which batches them off the
    // request path (Spin's default, `true`, writes one per recall).
    tier_vars.insert("memory_recall_audit".into(), "host".into());
    // The compliance controls (config/controls.yaml beside the manifest), for
    // the governance schedule's compliance evidence packages.
    let controls = config_beside(&args.manifest, "controls.yaml");
    if controls.is_file() {
        let text = std::fs::read_to_string(&controls).with_context(|| format!("reading {}", controls.display()))?;
        let doc: serde_json::Value =
            serde_norway::from_str(&text).with_context(|| format!("parsing {}", controls.display()))?;
        tier_vars.insert("compliance_controls".into(), doc.to_string());
    }
    tracing::info!(embedder = %embedder.label(), dims, "embedder configured");
    let variables = app_variables(args, &manifest, &tier_vars, listen)?;
    let placed = tiers::check_placements(|n| variables.get(n).map(str::to_string))?;
    if !placed.is_empty() {
        tracing::info!(?placed, "tiers storing apart from the home store");
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let mut dbs = HashMap::new();
    dbs.insert("default".to_string(), SqliteConfig::default_in(data_dir, args.sync));
    let sqlite = sqlite::SqliteCapability::open(&dbs).await?;
    let cache_dir = if args.no_cache { None } else { args.cache_dir.clone().or_else(default_cache_dir) };
    let tls = postgres::tls_config(args.database_ca_file.as_deref())?;
    let opts = app::LoadOptions {
        manifest,
        variables,
        sqlite,
        postgres: postgres::PostgresCapability::with_tls(postgres::POOL_SIZE, tls),
        llm: llm::LlmCapability::new(embedder, args.embed_cache_entries),
        cache_dir,
        pool: engine::PoolLimits {
            instances: args.max_concurrency.max(1),
            max_memory_bytes: args.max_instance_memory_mb << 20,
        },
        limits: app::RunLimits {
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            max_memory_bytes: args.max_instance_memory_mb << 20,
        },
        guest_threads: args.guest_threads.unwrap_or_else(lanes::Lanes::default_threads),
    };
    let app = tokio::task::spawn_blocking(move || app::App::load(opts)).await??;
    Ok(Arc::new(app))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Binds (without listening yet) the first address `listen` resolves to
/// that can be bound.
async fn bind_socket(listen: &str) -> Result<tokio::net::TcpSocket> {
    let mut last = None;
    for addr in tokio::net::lookup_host(listen).await.with_context(|| format!("resolving {listen}"))? {
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        // As TcpListener::bind does: a restart need not wait out TIME_WAIT.
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket.bind(addr) {
            Ok(()) => return Ok(socket),
            Err(e) => last = Some(e),
        }
    }
    let e = last.map(anyhow::Error::from).unwrap_or_else(|| anyhow::anyhow!("no address"));
    Err(e.context(format!("binding {listen}")))
}

async fn up(args: UpArgs) -> Result<()> {
    // Bound first so the app knows its address (an allowed Host), but
    // listening only once the app is ready.
    let socket = bind_socket(&args.listen).await?;
    let addr = socket.local_addr()?;
    let app = load_app_with(&args.app, &args.data_dir, Some(addr)).await?;
    let listener = socket.listen(1024).with_context(|| format!("listening on {addr}"))?;
    let auth = app.variables.get("memory_auth_mode").map(str::trim).filter(|m| !m.is_empty()).unwrap_or("off");
    if auth == "off" {
        if !addr.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve {addr} with memory_auth_mode=off: without auth anyone who can reach it reads and \
                 writes every tenant's memory; set --var memory_auth_mode=api_key (or jwt) or listen on a loopback address"
            );
        }
        tracing::warn!(
            listen = %addr,
            allowed_hosts = app.variables.get("allowed_hosts").unwrap_or_default(),
            "memory auth is off (allowed on a loopback address only; no cross-origin browser access)"
        );
    } else {
        tracing::info!(mode = auth, "memory auth on");
    }
    tracing::info!(
        listen = %addr,
        data_dir = %args.data_dir.display(),
        database = %args.data_dir.join("cairn.db").display(),
        sync = ?args.app.sync,
        admin_token = if args.app.admin_token.is_some() || std::env::var_os("SPIN_VARIABLE_ADMIN_TOKEN").is_some() { "set" } else { "unset" },
        "cairn listening on http://{addr}"
    );
    let mut cron_tasks = if args.no_cron { Vec::new() } else { cron::start(&app)? };
    if !args.no_cron && args.alert_interval_secs > 0 {
        cron_tasks.push(alert_sender::schedule(app.clone(), Duration::from_secs(args.alert_interval_secs)));
    }
    http_server::serve(app, listener, shutdown_signal(), Duration::from_secs(30)).await?;
    for t in cron_tasks {
        t.abort();
    }
    tracing::info!("bye");
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn main() -> Result<()> {
    // Error values should not capture backtraces on the request path (an
    // environment with RUST_BACKTRACE=1 would otherwise pay a stack walk per
    // error); panics still print theirs. Set RUST_LIB_BACKTRACE to override.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    // candle asks for its thread count on every matrix product, and without
    // RAYON_NUM_THREADS it counts physical cores by parsing /proc/cpuinfo
    // each time: ~50 parses per MiniLM forward pass, 12.9 ms instead of
    // 8 ms for a query's embedding (measured; docs/recall.md). Set it once.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    // Usage errors exit 1 (clap's default is 2), so the gates' "failed"
    // (2) never means "bad flags" (the reference's exit codes).
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let code = if e.use_stderr() { 1 } else { 0 };
        let _ = e.print();
        std::process::exit(code)
    });
    init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(async move {
        match cli.cmd {
            Cmd::Up(args) => up(args).await,
            Cmd::Job { what } => jobs::run(what).await,
            Cmd::Preflight(args) => gates::preflight::run(args).await,
            Cmd::Gate { what: GateCmd::Core(args) } => gates::core::run(args).await,
            Cmd::Release { what: gates::evidence::ReleaseCmd::Evidence(args) } => gates::evidence::evidence(args).await,
            Cmd::Release { what: gates::evidence::ReleaseCmd::Verify(args) } => gates::evidence::verify(args).await,
            Cmd::Bench { what } => bench::run(what).await,
            Cmd::TiersJson { tiers } => {
                print!("{}", tiers::json_file(&tiers)?);
                Ok(())
            }
        }
    });
    if let Err(e) = &result {
        tracing::error!("{e:#}");
        bail!("cairn failed");
    }
    Ok(())
}

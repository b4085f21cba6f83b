//! The embeddings capability: `fermyon:spin/llm@2.0.0`
//! `generate-embeddings` for model `all-minilm-l6-v2` (the one embedding
//! model Spin defines), served by one of the embedders the operator picks
//! (`--embedder`):
//!
//! - `minilm`: sentence-transformers/all-MiniLM-L6-v2 on the CPU in this
//!   process (`cairn-minilm`: candle, masked mean pooling), from Spin's
//!   `ai-models` directory (`--ai-models-dir`, default
//!   `~/.cache/cairn/ai-models`, filled by `make models`);
//! - `lexical` (`local` is the old name): [`local_embedder`], deterministic
//!   feature hashing, no model files, dimension from the default tier;
//! - `auto` (default): `minilm` when its files are present, else `lexical`,
//!   and the start-up log says which and why;
//! - `openai`: any OpenAI-compatible `POST /v1/embeddings` endpoint
//!   ([`openai`]); the provider's 4xx answers become `invalid-input`
//!   (not retried), everything else `runtime-error` (retried);
//! - `fail`: every call fails with `runtime-error` — for proving that
//!   writes never depend on the embedder.
//!
//! Single-text calls (recall_text's query) go through a bounded LRU cache
//! ([`query_cache`]); hits, misses and embedding time are counted per
//! request for the request log. Like Spin, a component may only use models
//! listed in its `ai_models`. `infer` is not provided (`model-not-supported`).

pub mod host;
pub mod local_embedder;
pub mod openai;
pub mod query_cache;

use crate::state::Priority;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The model name components ask for.
pub const EMBEDDING_MODEL: &str = "all-minilm-l6-v2";

/// Which embedder answers `generate-embeddings`.
pub enum Embedder {
    Lexical { dims: usize },
    MiniLm(Arc<cairn_minilm::MiniLm>),
    OpenAi(Box<openai::OpenAiEmbedder>),
    Fail { message: String },
}

/// The label vectors made by the in-process MiniLM carry.
pub const MINILM_LABEL: &str = "minilm:all-minilm-l6-v2";

/// Operator settings (CLI flags / environment).
#[derive(Debug, Clone)]
pub struct EmbedderConfig {
    pub kind: String,
    pub url: Option<String>,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
    pub dims: usize,
    /// Spin's `ai-models` directory (the model in `all-minilm-l6-v2/`).
    pub ai_models_dir: PathBuf,
}

impl Embedder {
    pub fn from_config(c: &EmbedderConfig) -> Result<Embedder> {
        let model_dir = c.ai_models_dir.join(cairn_minilm::MODEL_NAME);
        let load_minilm = || -> Result<Embedder, cairn_minilm::Error> {
            let started = Instant::now();
            let model = cairn_minilm::MiniLm::load(&model_dir)?;
            tracing::info!(dir = %model_dir.display(), load_ms = started.elapsed().as_millis() as u64, "embedder: all-MiniLM-L6-v2 loaded");
            Ok(Embedder::MiniLm(Arc::new(model)))
        };
        let lexical_fallback = |why: &dyn std::fmt::Display| {
            tracing::warn!("embedder: lexical fallback (feature hashing, no semantic recall): {why}");
            Embedder::Lexical { dims: c.dims }
        };
        let wrong_dims = format!(
            "the minilm embedder makes {}-dim vectors but the default tier's resource_caps.embedding_dims is {}",
            cairn_minilm::DIMS,
            c.dims
        );
        Ok(match c.kind.as_str() {
            // Missing files fall back; files that are there but do not load
            // are an error, as for `minilm`.
            "auto" if c.dims != cairn_minilm::DIMS => lexical_fallback(&wrong_dims),
            "auto" => match load_minilm() {
                Err(e @ cairn_minilm::Error::MissingFile { .. }) => lexical_fallback(&e),
                other => other?,
            },
            "minilm" if c.dims != cairn_minilm::DIMS => bail!("--embedder minilm: {wrong_dims}"),
            "minilm" => load_minilm().context("--embedder minilm")?,
            "lexical" | "local" => Embedder::Lexical { dims: c.dims },
            "openai" => {
                let Some(url) = &c.url else { bail!("--embedder openai needs --embedder-url") };
                Embedder::OpenAi(Box::new(openai::OpenAiEmbedder::new(url, &c.model, c.api_key.clone(), c.timeout)?))
            }
            "fail" => Embedder::Fail { message: "the embedder is configured to fail (--embedder fail)".into() },
            other => bail!("unknown embedder '{other}' (expected auto, minilm, lexical, openai or fail)"),
        })
    }

    /// How the embedder is described in logs and model labels.
    pub fn label(&self) -> String {
        match self {
            Embedder::Lexical { .. } => local_embedder::LOCAL_MODEL_NAME.to_string(),
            Embedder::MiniLm(_) => MINILM_LABEL.to_string(),
            Embedder::OpenAi(o) => format!("openai:{}", o.model()),
            Embedder::Fail { .. } => "fail".into(),
        }
    }
}

/// Embedding work of one request, for the request log.
#[derive(Debug, Default)]
pub struct EmbedStats {
    pub calls: AtomicU64,
    pub micros: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
}

/// Why a call failed, in the interface's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmError {
    ModelNotSupported,
    InvalidInput(String),
    Runtime(String),
}

/// The capability shared by every instance.
pub struct LlmCapability {
    pub embedder: Embedder,
    cache: query_cache::QueryCache,
    /// Where derivation's MiniLM batches run: one thread at a lower CPU
    /// priority (nice 10), so a request's query embedding and the rest of
    /// the request path get the cores first (see [`background_pool`]).
    background: Option<Arc<rayon::ThreadPool>>,
}

/// How much lower derivation's embedding thread runs (`nice`).
const BACKGROUND_NICE: i32 = 10;

/// One thread for background embedding, niced: on a 2-core machine MiniLM
/// batches on both cores took the CPU from every request while derivation
/// ran (docs/derivation.md, "Who goes first").
fn background_pool() -> Option<Arc<rayon::ThreadPool>> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "cairn-embed-bg".into())
        .start_handler(|_| {
            // SAFETY: plain syscalls on the calling thread (Linux nice is per thread).
            let ok = unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICE) == 0
            };
            if !ok {
                tracing::warn!("could not lower the background embedding thread's priority");
            }
        })
        .build()
        .map_err(|e| tracing::warn!(error = %e, "no background embedding pool; derivation embeds like requests"))
        .ok()
        .map(Arc::new)
}

impl LlmCapability {
    /// `cache_entries` bounds the query cache (0 turns it off).
    pub fn new(embedder: Embedder, cache_entries: usize) -> Arc<LlmCapability> {
        let background = if matches!(embedder, Embedder::MiniLm(_)) { background_pool() } else { None };
        Arc::new(LlmCapability { embedder, cache: query_cache::QueryCache::new(cache_entries), background })
    }

    /// Embeds `texts` with `model`, counting the work in `stats`.
    pub async fn embed(
        &self,
        model: &str,
        texts: &[String],
        stats: &EmbedStats,
        priority: Priority,
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        if model != EMBEDDING_MODEL {
            return Err(LlmError::ModelNotSupported);
        }
        // A query (one text) is looked up first; batches are derivation's
        // and rarely repeat.
        let single = texts.len() == 1;
        if single && let Some(v) = self.cache.get(&texts[0]) {
            stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(vec![v]);
        }
        let started = Instant::now();
        let result = self.embed_uncached(texts, priority).await;
        stats.calls.fetch_add(1, Ordering::Relaxed);
        stats.micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        if single && let Ok(v) = &result {
            stats.cache_misses.fetch_add(1, Ordering::Relaxed);
            self.cache.put(&texts[0], &v[0]);
        }
        result
    }

    async fn embed_uncached(&self, texts: &[String], priority: Priority) -> Result<Vec<Vec<f32>>, LlmError> {
        match &self.embedder {
            Embedder::Lexical { dims } => Ok(texts.iter().map(|t| local_embedder::embed(t, *dims)).collect()),
            Embedder::MiniLm(model) => {
                let model = model.clone();
                let pool = self.background.clone().filter(|_| priority == Priority::Background);
                let texts = texts.to_vec();
                // CPU-bound: off the async workers; derivation's on its
                // niced thread (candle's products run in the pool they are
                // called from).
                tokio::task::spawn_blocking(move || {
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    match pool {
                        Some(pool) => pool.install(|| model.embed(&refs)),
                        None => model.embed(&refs),
                    }
                })
                .await
                .map_err(|e| LlmError::Runtime(format!("the embedding task failed: {e}")))?
                .map_err(|e| LlmError::Runtime(e.to_string()))
            }
            Embedder::OpenAi(o) => o.embed(texts).await.map_err(|e| match e {
                openai::EmbedError::InvalidInput(m) => LlmError::InvalidInput(m),
                openai::EmbedError::Runtime(m) => LlmError::Runtime(m),
            }),
            Embedder::Fail { message } => Err(LlmError::Runtime(message.clone())),
        }
    }
}

/// Per-instance state: the shared capability and the models this
/// component may use.
#[derive(Clone)]
pub struct InstanceState {
    pub capability: Arc<LlmCapability>,
    pub allowed_models: Arc<Vec<String>>,
    pub stats: Arc<EmbedStats>,
    pub priority: Priority,
}

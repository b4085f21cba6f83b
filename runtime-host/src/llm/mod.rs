//! The embeddings capability: `fermyon:spin/llm@2.0.0`
//! `generate-embeddings` for model `all-minilm-l6-v2` (the one embedding
//! model Spin defines), served by one of three embedders the operator picks:
//!
//! - `local` (default): [`local_embedder`], deterministic and lexical, no
//!   network, dimension from the default tier (`resource_caps.embedding_dims`);
//! - `openai`: any OpenAI-compatible `POST /v1/embeddings` endpoint
//!   ([`openai`]); the provider's 4xx answers become `invalid-input`
//!   (not retried), everything else `runtime-error` (retried);
//! - `fail`: every call fails with `runtime-error` — for proving that
//!   writes never depend on the embedder.
//!
//! Like Spin, a component may only use models listed in its `ai_models`.
//! `infer` is not provided (`model-not-supported`).

pub mod host;
pub mod local_embedder;
pub mod openai;

use anyhow::{Result, bail};
use std::sync::Arc;
use std::time::Duration;

/// The model name components ask for.
pub const EMBEDDING_MODEL: &str = "all-minilm-l6-v2";

/// Which embedder answers `generate-embeddings`.
pub enum Embedder {
    Local { dims: usize },
    OpenAi(Box<openai::OpenAiEmbedder>),
    Fail { message: String },
}

/// Operator settings (CLI flags / environment).
#[derive(Debug, Clone)]
pub struct EmbedderConfig {
    pub kind: String,
    pub url: Option<String>,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
    pub dims: usize,
}

impl Embedder {
    pub fn from_config(c: &EmbedderConfig) -> Result<Embedder> {
        Ok(match c.kind.as_str() {
            "local" => Embedder::Local { dims: c.dims },
            "openai" => {
                let Some(url) = &c.url else { bail!("--embedder openai needs --embedder-url") };
                Embedder::OpenAi(Box::new(openai::OpenAiEmbedder::new(url, &c.model, c.api_key.clone(), c.timeout)?))
            }
            "fail" => Embedder::Fail { message: "the embedder is configured to fail (--embedder fail)".into() },
            other => bail!("unknown embedder '{other}' (expected local, openai or fail)"),
        })
    }

    /// How the embedder is described in logs and model labels.
    pub fn label(&self) -> String {
        match self {
            Embedder::Local { .. } => local_embedder::LOCAL_MODEL_NAME.to_string(),
            Embedder::OpenAi(o) => format!("openai:{}", o.model()),
            Embedder::Fail { .. } => "fail".into(),
        }
    }
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
}

impl LlmCapability {
    pub fn new(embedder: Embedder) -> Arc<LlmCapability> {
        Arc::new(LlmCapability { embedder })
    }

    /// Embeds `texts` with `model`.
    pub async fn embed(&self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        if model != EMBEDDING_MODEL {
            return Err(LlmError::ModelNotSupported);
        }
        match &self.embedder {
            Embedder::Local { dims } => Ok(texts.iter().map(|t| local_embedder::embed(t, *dims)).collect()),
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
}

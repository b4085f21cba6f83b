//! The worker's view of the embedding provider (the host's
//! `fermyon:spin/llm` `generate-embeddings` in the component; a fake in
//! tests).

/// Why a batch could not be embedded.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedFailure {
    /// Worth retrying later (provider down, rate limited, timed out);
    /// `false` when the input or the configuration is wrong.
    pub retryable: bool,
    pub message: String,
}

impl EmbedFailure {
    pub fn retryable(message: impl Into<String>) -> Self {
        EmbedFailure { retryable: true, message: message.into() }
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        EmbedFailure { retryable: false, message: message.into() }
    }
}

pub trait Embedder {
    /// One vector per text, in order.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedFailure>;
    /// The name recorded as the nodes' `embedding_model`.
    fn model_name(&self) -> String;
}

//! Embeddings through `fermyon:spin/llm@2.0.0` `generate-embeddings`.
//!
//! Error mapping (what Cairn's host reports, and how Spin's own errors
//! read): `invalid-input` and `model-not-supported` are not worth retrying
//! (bad input, a provider's 4xx, wrong configuration); `runtime-error` is
//! (provider down, rate limited, timed out).

use crate::bindings::fermyon::spin::llm;

/// A failed embedding call.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmFailure {
    pub retryable: bool,
    pub message: String,
}

/// One vector per text, in order.
pub fn generate(model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmFailure> {
    match llm::generate_embeddings(model, texts) {
        Ok(r) => Ok(r.embeddings),
        Err(llm::Error::ModelNotSupported) => Err(LlmFailure {
            retryable: false,
            message: format!("model_not_supported: the host has no embedding model '{model}' (is it in ai_models?)"),
        }),
        Err(llm::Error::InvalidInput(m)) => {
            Err(LlmFailure { retryable: false, message: format!("invalid_input: {m}") })
        }
        Err(llm::Error::RuntimeError(m)) => {
            Err(LlmFailure { retryable: true, message: format!("provider_error: {m}") })
        }
    }
}

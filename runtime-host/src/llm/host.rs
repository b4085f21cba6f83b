//! `fermyon:spin/llm@2.0.0` host implementation.

use super::LlmError;
use crate::spin_bindings::llm::{self, EmbeddingsResult, EmbeddingsUsage, Error, InferencingParams, InferencingResult};
use crate::state::RequestState;

impl llm::Host for RequestState {
    async fn infer(
        &mut self,
        _model: String,
        _prompt: String,
        _params: Option<InferencingParams>,
    ) -> wasmtime::Result<Result<InferencingResult, Error>> {
        Ok(Err(Error::ModelNotSupported))
    }

    async fn generate_embeddings(
        &mut self,
        model: String,
        text: Vec<String>,
    ) -> wasmtime::Result<Result<EmbeddingsResult, Error>> {
        if !self.llm.allowed_models.iter().any(|m| m == &model) {
            return Ok(Err(Error::InvalidInput(format!(
                "the component may not use model '{model}': add it to the component's ai_models"
            ))));
        }
        let tokens: usize = text.iter().map(|t| t.split_whitespace().count()).sum();
        Ok(match self.llm.capability.embed(&model, &text, &self.llm.stats, self.llm.priority).await {
            Ok(embeddings) => Ok(EmbeddingsResult {
                embeddings,
                usage: EmbeddingsUsage { prompt_token_count: tokens.min(u32::MAX as usize) as u32 },
            }),
            Err(LlmError::ModelNotSupported) => Err(Error::ModelNotSupported),
            Err(LlmError::InvalidInput(m)) => Err(Error::InvalidInput(m)),
            Err(LlmError::Runtime(m)) => Err(Error::RuntimeError(m)),
        })
    }
}

//! sentence-transformers/all-MiniLM-L6-v2 on the CPU, in pure Rust:
//! candle's upstream BERT (exact gelu, with the attention mask) and the
//! `tokenizers` crate, pooled as sentence-transformers pools it.
//!
//! - The tokenizer truncates at 256 tokens (the model's `max_seq_length` in
//!   `sentence_bert_config.json`) and pads a batch to its longest input; the
//!   shipped `tokenizer.json` asks for a fixed 128-token padding and a 128
//!   truncation, both overridden here.
//! - Pooling is the mean over the real tokens only (the attention mask),
//!   then L2 normalization, so a text's vector does not depend on the other
//!   texts of its batch (Spin's local engine averages the padding too).
//! - A batch is embedded in sub-batches of similar length (sorted by token
//!   count), which keeps padding — wasted work — small; the vectors come back
//!   in input order.
//!
//! The model directory is Spin's `ai-models/all-minilm-l6-v2` layout:
//! `model.safetensors`, `tokenizer.json`, `config.json`.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use std::path::{Path, PathBuf};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The model's name in Spin's `ai_models` and its `ai-models` directory.
pub const MODEL_NAME: &str = "all-minilm-l6-v2";
/// The vectors' length.
pub const DIMS: usize = 384;
/// Longest input in tokens (sentence-transformers' `max_seq_length`).
pub const MAX_TOKENS: usize = 256;
/// The files a model directory must hold.
pub const MODEL_FILES: &[&str] = &["model.safetensors", "tokenizer.json", "config.json"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the all-MiniLM-L6-v2 model directory {dir} lacks {file} (run `make models`, or copy model.safetensors, tokenizer.json and config.json there)"
    )]
    MissingFile { dir: PathBuf, file: &'static str },
    #[error(
        "the all-MiniLM-L6-v2 model in {dir} could not be loaded ({what}): {message} (run `make models` to fetch it again)"
    )]
    Load { dir: PathBuf, what: &'static str, message: String },
    #[error("embedding failed: {0}")]
    Inference(String),
}

fn inference(e: impl std::fmt::Display) -> Error {
    Error::Inference(e.to_string())
}

/// A loaded model, ready to embed; `Send + Sync`, so one copy serves every
/// thread.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    /// Texts per forward pass.
    sub_batch: usize,
}

impl MiniLm {
    /// Loads the model from a directory in Spin's `ai-models` layout.
    pub fn load(dir: &Path) -> Result<MiniLm, Error> {
        for file in MODEL_FILES {
            if !dir.join(file).is_file() {
                return Err(Error::MissingFile { dir: dir.to_path_buf(), file });
            }
        }
        let load_err = |what: &'static str| {
            let dir = dir.to_path_buf();
            move |e: &dyn std::fmt::Display| Error::Load { dir, what, message: e.to_string() }
        };
        let config_text = std::fs::read_to_string(dir.join("config.json")).map_err(|e| load_err("config.json")(&e))?;
        let config: Config = serde_json::from_str(&config_text).map_err(|e| load_err("config.json")(&e))?;
        if config.hidden_size != DIMS {
            return Err(load_err("config.json")(&format!("hidden_size {} is not {DIMS}", config.hidden_size)));
        }
        let mut tokenizer =
            Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| load_err("tokenizer.json")(&e))?;
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| load_err("tokenizer.json")(&e))?;
        let device = Device::Cpu;
        let weights = std::fs::read(dir.join("model.safetensors")).map_err(|e| load_err("model.safetensors")(&e))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| load_err("model.safetensors")(&e))?;
        let model = BertModel::load(vb, &config).map_err(|e| load_err("model.safetensors")(&e))?;
        Ok(MiniLm { model, tokenizer, device, sub_batch: 32 })
    }

    /// Embeds `texts`: one unit vector of [`DIMS`] per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        if texts.len() <= 1 {
            // A query: nothing to group (and no second tokenization).
            return if texts.is_empty() { Ok(Vec::new()) } else { self.forward(texts) };
        }
        // Token counts first, to group texts of similar length.
        let lengths: Vec<usize> = texts
            .iter()
            .map(|t| self.tokenizer.encode(*t, true).map(|e| e.get_ids().len()))
            .collect::<Result<_, _>>()
            .map_err(inference)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| lengths[i]);
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(self.sub_batch) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            for (&i, v) in chunk.iter().zip(self.forward(&batch)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// One forward pass over texts padded to the longest of them.
    fn forward(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(inference)?;
        let n = encodings.len();
        let len = encodings[0].get_ids().len();
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &encodings {
            ids.extend(e.get_ids().iter().map(|&x| x as i64));
            mask.extend(e.get_attention_mask().iter().map(|&x| x as i64));
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device).map_err(inference)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device).map_err(inference)?;
        let type_ids = ids.zeros_like().map_err(inference)?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask)).map_err(inference)?;
        let pooled = masked_mean(&hidden, &mask).map_err(inference)?;
        let rows: Vec<Vec<f32>> = pooled.to_vec2().map_err(inference)?;
        Ok(rows.into_iter().map(normalized).collect())
    }
}

/// Mean of `hidden` (n, len, dims) over the positions where `mask` (n, len)
/// is 1.
fn masked_mean(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    summed.broadcast_div(&counts)
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[cfg(test)]
mod tests;

//! The derivation worker as a component: the thin wasm adapter (cron
//! export, HTTP routes, operator verbs, `fermyon:spin/llm` as the embedder)
//! over the logic in `crates/cairn-derive`.

#[cfg(target_arch = "wasm32")]
mod component;

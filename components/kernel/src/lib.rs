//! The memory kernel as a component: the thin wasm adapter exporting
//! `cairn:memory/memory` over the logic in `crates/cairn-memory`.

#[cfg(target_arch = "wasm32")]
mod component;

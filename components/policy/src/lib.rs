//! Cairn's policy component (Memory -> Policy): the thin wasm adapter
//! exporting `cairn:policy/policy` over the logic in `crates/cairn-rules`
//! (rule lifecycle, evaluation, tool selection, decisions and feedback).
//! Its tables belong to the kernel's schema (rule definitions are written
//! with their rule nodes), so it reports no schema of its own.

#[cfg(target_arch = "wasm32")]
mod component;

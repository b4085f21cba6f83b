//! Cairn's derivation component. Derived data (embeddings, topics, the
//! vector index) is computed from the outbox the write path fills; this
//! component is where that worker runs, driven by Spin's cron trigger, an
//! HTTP tick or the host's scheduler.
//!
//! So far it reports the outbox backlog (`GET /v1/admin/derive/status`,
//! admin token): the worker itself lands with the derivation issue.

pub mod outbox_status;

#[cfg(target_arch = "wasm32")]
mod component;

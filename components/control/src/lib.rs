//! Cairn's control plane component: tenants, projects, API keys, quotas,
//! audit events and tier profiles — the thin wasm adapter exporting
//! `cairn:control/control` over `crates/cairn-control-plane`.

#[cfg(target_arch = "wasm32")]
mod component;

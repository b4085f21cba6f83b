//! The deny-all adapter (world `cairn:deny-adapter/deny-all`): what a
//! composed dependency reaches instead of the host for every capability it
//! does not inherit. `cairn` embeds the built component
//! (`runtime-host/src/compose/deny_adapter.wasm`, rebuilt by
//! `make deny-adapter`); the answers are the ones Spin's adapter gives, so a
//! dependency behaves the same under both hosts.

#[cfg(target_arch = "wasm32")]
mod component;

//! Cairn's HTTP gateway: the `wasi:http` trigger component that imports the
//! kernel, policy and control interfaces.
//!
//! - [`routes`]: the route table;
//! - [`openapi`]: the OpenAPI document served at `/openapi.json`;
//! - [`browser_gate`]: the `Host` check and, with auth off, no cross-origin access;
//! - [`auth_gate`]: memory-route auth (API keys, JWTs) and identity binding;
//! - [`quota_gate`]: tenant quotas per protection class;
//! - [`dispatch`]: request ids, CORS, admin guard, envelope, kernel calls;
//! - [`policy_routes`]: the policy routes, recall's `rules`, planning/context;
//! - `component` (wasm only): the Spin SDK binding.

pub mod auth_gate;
pub mod browser_gate;
pub mod dispatch;
pub mod openapi;
pub mod policy_routes;
pub mod quota_gate;
pub mod routes;

#[cfg(target_arch = "wasm32")]
mod component;

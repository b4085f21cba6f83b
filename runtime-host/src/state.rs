//! The per-request store data: WASI, `wasi:http`, and the state of each
//! Spin capability (SQLite, variables, embeddings), plus the store's resource limits.

use crate::llm;
use crate::postgres;
use crate::sqlite;
use crate::variables::ComponentVariables;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Who an instance works for, which decides who gets the write lock and
/// the CPU first: requests (`Foreground`) over derivation (`Background`,
/// every instance of a component with the derivation exports: its cron
/// ticks, verbs and admin routes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Priority {
    #[default]
    Foreground,
    Background,
}

/// What one request (or tick) spent, read by the request log.
#[derive(Debug, Default, Clone)]
pub struct RequestStats {
    pub db: std::sync::Arc<sqlite::DbStats>,
    pub embed: std::sync::Arc<llm::EmbedStats>,
}

pub struct RequestState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub sqlite: sqlite::InstanceState,
    pub postgres: postgres::InstanceState,
    pub variables: ComponentVariables,
    pub llm: llm::InstanceState,
    pub limits: StoreLimits,
}

impl RequestState {
    pub fn new(
        sqlite: sqlite::InstanceState,
        postgres: postgres::InstanceState,
        variables: ComponentVariables,
        llm: llm::InstanceState,
        max_memory: usize,
    ) -> RequestState {
        RequestState {
            // Guests' stdout/stderr go to the host's (their panics and
            // eprintln! land next to our request log).
            wasi: WasiCtx::builder().inherit_stdout().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            sqlite,
            postgres,
            variables,
            llm,
            limits: wasmtime::StoreLimitsBuilder::new().memory_size(max_memory).trap_on_grow_failure(true).build(),
        }
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: Default::default() }
    }
}

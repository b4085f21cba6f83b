//! Host-side bindings of the Spin interfaces Cairn's components import,
//! generated from the repository's `wit/` (the same files the components
//! bind), so host and guests cannot disagree on a type.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "cairn:common/spin-host",
    imports: { default: async | trappable },
    with: {
        "spin:sqlite/sqlite@3.0.0.connection": crate::sqlite::host::ConnectionHandle,
        "spin:postgres/postgres@4.0.0.connection": crate::postgres::host::ConnectionHandle,
    },
});

pub use fermyon::spin::llm;
pub use fermyon::spin::variables;

/// The derivation component's exports (`cairn:derive/derive` and the cron
/// trigger's `handle-cron-event`), which the scheduler and `cairn job` call.
pub mod derive {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "cairn:derive/derive-exports",
        exports: { default: async },
    });
}
pub use spin::postgres::postgres;
pub use spin::sqlite::sqlite;

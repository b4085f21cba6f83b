//! Host-side bindings of the Spin interfaces Cairn's components import,
//! generated from the repository's `wit/` (the same files the components
//! bind), so host and guests cannot disagree on a type.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "cairn:kernel/spin-host",
    imports: { default: async | trappable },
    with: {
        "spin:sqlite/sqlite@3.0.0.connection": crate::sqlite::host::ConnectionHandle,
    },
});

pub use fermyon::spin::variables;
pub use spin::sqlite::sqlite;

//! Cairn's control plane component: tenants, projects, API keys, quotas,
//! audit events and tier profiles.
//!
//! A thin adapter over `crates/cairn-control-plane` (so far the audit log;
//! tenants, keys and quotas land with the control-plane issue), composed
//! into the gateway and reporting itself in `GET /health`.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        world: "control-plane",
        path: "../../wit",
        with: {
            "spin:sqlite/sqlite@3.0.0": cairn_spin::bindings::spin::sqlite::sqlite,
            "fermyon:spin/variables@2.0.0": cairn_spin::bindings::fermyon::spin::variables,
            "fermyon:spin/llm@2.0.0": cairn_spin::bindings::fermyon::spin::llm,
        },
    });

    struct Control;

    impl exports::cairn::kernel::control::Guest for Control {
        fn info() -> cairn::kernel::types::ComponentInfo {
            cairn::kernel::types::ComponentInfo {
                name: "control".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                schema_version: cairn_control_plane::schema::current_version() as u32,
            }
        }
    }

    export!(Control);
}

//! Cairn's control plane component: tenants, projects, API keys, quotas,
//! audit events and tier profiles.
//!
//! So far it is composed into the gateway and reports itself in
//! `GET /health`; the control plane lands with its issue. It keeps no schema yet.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        world: "control-plane",
        path: "../../wit",
        with: {
            "spin:sqlite/sqlite@3.0.0": cairn_spin::bindings::spin::sqlite::sqlite,
            "fermyon:spin/variables@2.0.0": cairn_spin::bindings::fermyon::spin::variables,
        },
    });

    struct Control;

    impl exports::cairn::kernel::control::Guest for Control {
        fn info() -> cairn::kernel::types::ComponentInfo {
            cairn::kernel::types::ComponentInfo {
                name: "control".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                schema_version: 0,
            }
        }
    }

    export!(Control);
}

//! Cairn's policy component (Memory -> Policy): rule lifecycle, evaluation,
//! tool selection, decisions and feedback.
//!
//! So far it is composed into the gateway and reports itself in
//! `GET /health`; the rule engine lands with its issue. It keeps no schema yet.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        world: "policy-engine",
        path: "../../wit",
        with: {
            "spin:sqlite/sqlite@3.0.0": cairn_spin::bindings::spin::sqlite::sqlite,
            "fermyon:spin/variables@2.0.0": cairn_spin::bindings::fermyon::spin::variables,
            "fermyon:spin/llm@2.0.0": cairn_spin::bindings::fermyon::spin::llm,
        },
    });

    struct Policy;

    impl exports::cairn::kernel::policy::Guest for Policy {
        fn info() -> cairn::kernel::types::ComponentInfo {
            cairn::kernel::types::ComponentInfo {
                name: "policy".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                schema_version: 0,
            }
        }
    }

    export!(Policy);
}

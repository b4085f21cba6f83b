//! The wasm adapter: exports `cairn:policy/policy`, opens the store of the
//! request's tenant (`cairn_control_plane::placement`) and reads settings
//! from Spin variables.

use cairn_control_plane::placement;
use cairn_core::ApiError;
use cairn_memory::settings::scope_defaults;
use cairn_rules::{Op, run};
use cairn_spin::wasi_env::{now_ms, random_uuid};

wit_bindgen::generate!({
    world: "cairn:policy/policy-engine",
    path: "../../wit",
    with: {
        "spin:sqlite/sqlite@3.0.0": cairn_spin::bindings::spin::sqlite::sqlite,
        "spin:postgres/postgres@4.0.0": cairn_spin::bindings::spin::postgres::postgres,
        "fermyon:spin/variables@2.0.0": cairn_spin::bindings::fermyon::spin::variables,
        "fermyon:spin/llm@2.0.0": cairn_spin::bindings::fermyon::spin::llm,
        "cairn:common/types@0.1.0": generate,
    },
});

use cairn::common::types::Error;
use exports::cairn::policy::policy::{CallContext, ComponentInfo, Guest};

struct Policy;

fn to_wit(e: ApiError) -> Error {
    Error { status: e.status, code: e.code, message: e.message, details: e.details.map(|d| d.to_string()) }
}

fn call(op: Op, body: String) -> Result<String, Error> {
    // The rules are memories: in the store of the body's tenant.
    let db = placement::for_tenant(|| placement::body_tenant(&body)).map_err(to_wit)?;
    // Rules only need the default tenant and scope, not the whole settings
    // (which parse the tier profiles).
    let defaults = scope_defaults(cairn_spin::variables::get);
    run(&db, &defaults, op, &body, now_ms(), &random_uuid).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
}

impl Guest for Policy {
    fn info() -> ComponentInfo {
        ComponentInfo { name: "policy".into(), version: env!("CARGO_PKG_VERSION").into(), schema_version: 0 }
    }
    fn rules_evaluate(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::RulesEvaluate, request)
    }
    fn rules_state(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::RulesState, request)
    }
    fn feedback(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::Feedback, request)
    }
    fn tools_select(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::ToolsSelect, request)
    }
    fn tools_decision(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::ToolsDecision, request)
    }
    fn tools_feedback(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::ToolsFeedback, request)
    }
    fn recall_rules(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::RecallRules, request)
    }
}

export!(Policy);

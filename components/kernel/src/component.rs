//! The wasm adapter: exports `cairn:memory/memory`, opens the store of the
//! request's tenant (`cairn_control_plane::placement`: the home store
//! unless its tier places it apart) and reads settings from Spin variables.

use cairn_control_plane::placement;
use cairn_core::ApiError;
use cairn_memory::recall::request::Endpoint;
use cairn_memory::settings::Settings;
use cairn_memory::{Op, run};
use cairn_spin::store::Store;
use cairn_spin::wasi_env::{now_ms, random_uuid};

wit_bindgen::generate!({
    world: "cairn:memory/kernel",
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
use exports::cairn::memory::memory::{CallContext, ComponentInfo, Guest, RecallAnswer};

struct Kernel;

fn to_wit(e: ApiError) -> Error {
    Error { status: e.status, code: e.code, message: e.message, details: e.details.map(|d| d.to_string()) }
}

fn settings() -> Settings {
    Settings::from_lookup(cairn_spin::variables::get)
}

/// The store of the tenant a JSON body names.
fn body_store(body: &str) -> Result<Store, Error> {
    placement::for_tenant(|| placement::body_tenant(body)).map_err(to_wit)
}

fn call(op: Op, body: String) -> Result<String, Error> {
    let db = body_store(&body)?;
    run(&db, &settings(), op, &body, now_ms(), random_uuid).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
}

fn call_query(
    query: &[(String, String)],
    f: impl FnOnce(&Store, &Settings) -> Result<serde_json::Value, ApiError>,
) -> Result<String, Error> {
    let db = placement::for_tenant(|| placement::query_tenant(query)).map_err(to_wit)?;
    cairn_memory::schema::ensure(&db, &cairn_core::time_fmt::rfc3339_millis(now_ms())).map_err(to_wit)?;
    f(&db, &settings()).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
}

/// The query embedding for recall_text: one `generate-embeddings` call.
fn embed_query(text: &str) -> Result<Vec<f32>, ApiError> {
    let mut vectors = cairn_spin::embeddings::generate(cairn_memory::settings::EMBEDDING_MODEL, &[text.to_string()])
        .map_err(|f| cairn_memory::recall::text_query::map_failure(&f.message))?;
    if vectors.len() != 1 {
        return Err(cairn_memory::recall::text_query::map_failure(&format!(
            "malformed answer: {} vectors for one text",
            vectors.len()
        )));
    }
    Ok(vectors.remove(0))
}

fn recall_call(ctx: CallContext, request: String, endpoint: Endpoint) -> Result<RecallAnswer, Error> {
    let (db, apart) = placement::open_tenant(|| placement::body_tenant(&request)).map_err(to_wit)?;
    let now = now_ms();
    let run = || {
        let body = cairn_memory::parse_body(&request)?;
        cairn_memory::schema::ensure(&db, &cairn_core::time_fmt::rfc3339_millis(now))?;
        let mut settings = settings();
        if apart {
            // The host batches audit rows into the home store; a tenant
            // placed apart keeps them beside its memories instead.
            settings.recall_audit = cairn_memory::settings::AuditSink::Inline;
        }
        cairn_memory::recall::recall(&db, &settings, &body, endpoint, ctx.admin, &embed_query, now)
    };
    run()
        .map(|a| RecallAnswer {
            body: cairn_core::json_text(&a.body),
            audit_row: a.audit_row.map(|r| cairn_core::json_text(&r)),
        })
        .map_err(to_wit)
}

impl Guest for Kernel {
    fn info() -> ComponentInfo {
        ComponentInfo {
            name: "kernel".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            schema_version: cairn_memory::schema::current_version() as u32,
        }
    }
    fn capabilities() -> Result<String, Error> {
        // The home store's, and which tiers store elsewhere (names of
        // backends, never URLs).
        let run = || {
            let db = cairn_spin::store::open()?;
            cairn_memory::schema::ensure(&db, &cairn_core::time_fmt::rfc3339_millis(now_ms()))?;
            let placed = cairn_spin::store::placements()?.map(|p| p.summary()).unwrap_or_default();
            Ok(serde_json::json!({
                "memory_store_backend": cairn_spin::sql::Sql::dialect(&db).name(),
                "memory_store_placements": placed,
                "lexical_index": cairn_memory::recall::lexical::available(&db)?,
                "database_target_hash": cairn_memory::schema::database_id(&db)?
                    .map(|id| cairn_memory::schema::database_target_hash(&id)),
            }))
        };
        run().map(|v: serde_json::Value| cairn_core::json_text(&v)).map_err(to_wit)
    }
    fn write(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::Write, request)
    }
    fn find(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::Find, request)
    }
    fn recall(ctx: CallContext, request: String) -> Result<RecallAnswer, Error> {
        recall_call(ctx, request, Endpoint::Recall)
    }
    fn recall_text(ctx: CallContext, request: String) -> Result<RecallAnswer, Error> {
        recall_call(ctx, request, Endpoint::RecallText)
    }
    fn create_session(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::CreateSession, request)
    }
    fn write_event(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::WriteEvent, request)
    }
    fn list_session_events(
        _ctx: CallContext,
        session_id: String,
        query: Vec<(String, String)>,
    ) -> Result<String, Error> {
        call_query(&query, |db, s| cairn_memory::sessions::list_events(db, s, &session_id, &query))
    }
    fn export_pack(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::ExportPack, request)
    }
    fn import_pack(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::ImportPack, request)
    }
    fn list_commits(_ctx: CallContext, query: Vec<(String, String)>) -> Result<String, Error> {
        call_query(&query, |db, s| cairn_memory::commit_log::list(db, s, &query))
    }
    fn verify_commits(_ctx: CallContext, request: String) -> Result<String, Error> {
        call(Op::VerifyCommits, request)
    }
}

export!(Kernel);

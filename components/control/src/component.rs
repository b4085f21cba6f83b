//! The wasm adapter: exports `cairn:kernel/control`, opens the `default`
//! SQLite database, reads the tier profiles from Spin variables.

use cairn_control_plane::admin::{self, AdminCtx};
use cairn_core::ApiError;
use cairn_spin::spin_sqlite::SpinSqlite;

wit_bindgen::generate!({
    world: "control-plane",
    path: "../../wit",
    with: {
        "spin:sqlite/sqlite@3.0.0": cairn_spin::bindings::spin::sqlite::sqlite,
        "fermyon:spin/variables@2.0.0": cairn_spin::bindings::fermyon::spin::variables,
        "fermyon:spin/llm@2.0.0": cairn_spin::bindings::fermyon::spin::llm,
    },
});

use cairn::kernel::types::Error;
use exports::cairn::kernel::control::{CallContext, ComponentInfo, Guest};

struct Control;

fn to_wit(e: ApiError) -> Error {
    Error { status: e.status, code: e.code, message: e.message, details: e.details.map(|d| d.to_string()) }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the host provides random bytes");
}

impl Guest for Control {
    fn info() -> ComponentInfo {
        ComponentInfo {
            name: "control".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            schema_version: cairn_control_plane::schema::current_version() as u32,
        }
    }

    fn admin(
        ctx: CallContext,
        method: String,
        path: String,
        query: Vec<(String, String)>,
        body: String,
    ) -> Result<String, Error> {
        let db = SpinSqlite::open("default").map_err(to_wit)?;
        let profiles = cairn_spin::variables::get("tier_profiles");
        let default_tier = cairn_spin::variables::get("default_tier").unwrap_or_else(|| "solo".into());
        let actx = AdminCtx {
            request_id: &ctx.request_id,
            now_ms: now_ms(),
            random: &random,
            tier_profiles: profiles.as_deref(),
            default_tier: &default_tier,
        };
        admin::route(&db, &actx, &method, &path, &query, &body).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
    }

    fn resolve_api_key(key: String) -> Result<Option<String>, Error> {
        let db = SpinSqlite::open("default").map_err(to_wit)?;
        let now = now_ms();
        cairn_control_plane::schema::ensure(&db, &cairn_core::time_fmt::rfc3339_millis(now)).map_err(to_wit)?;
        let p = cairn_control_plane::api_keys::resolve(&db, &key, now).map_err(to_wit)?;
        Ok(p.map(|p| {
            serde_json::json!({"tenant_id": p.tenant_id, "agent_id": p.agent_id, "team_id": p.team_id,
                               "role": p.role, "key_prefix": p.key_prefix})
            .to_string()
        }))
    }
}

export!(Control);

//! The wasm adapter: exports `cairn:control/control`, opens the configured
//! database (`cairn_spin::store`), reads the tier profiles from Spin variables.

use cairn_control_plane::admin::{self, AdminCtx};
use cairn_control_plane::placement;
use cairn_core::ApiError;
use cairn_spin::sql::Sql;
use cairn_spin::store::{self, Store};
use cairn_spin::wasi_env::{now_ms, random};

wit_bindgen::generate!({
    world: "cairn:control/control-plane",
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
use exports::cairn::control::control::{CallContext, ComponentInfo, Guest};

struct Control;

fn to_wit(e: ApiError) -> Error {
    Error { status: e.status, code: e.code, message: e.message, details: e.details.map(|d| d.to_string()) }
}

/// `billing=disabled`: every tenant is on the `solo` floor.
fn billing_disabled() -> bool {
    cairn_spin::variables::get("billing").is_some_and(|b| b.trim() == "disabled")
}

/// The tier a tenant is on: its own, else `default_tier`; `solo` when
/// billing is disabled.
fn tenant_tier(db: &Store, tenant_id: &str) -> Result<String, Error> {
    let default_tier = cairn_spin::variables::get("default_tier").unwrap_or_else(|| "solo".into());
    let rule = placement::TierRule { billing_disabled: billing_disabled(), default_tier: &default_tier };
    placement::tenant_tier(db, rule, tenant_id).map_err(to_wit)
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
        let db = store::open().map_err(to_wit)?;
        let profiles = cairn_spin::variables::get("tier_profiles");
        let default_tier = cairn_spin::variables::get("default_tier").unwrap_or_else(|| "solo".into());
        let default_tenant = cairn_spin::variables::get("memory_tenant_id").unwrap_or_else(|| "default".into());
        let open_tenant_store = |tenant: &str| placement::boxed_tenant_store(&db, tenant);
        let tier_store = |tier: &str| Ok(store::placements()?.and_then(|p| p.for_tier(tier).cloned()));
        let actx = AdminCtx {
            request_id: &ctx.request_id,
            now_ms: now_ms(),
            random: &random,
            tier_profiles: profiles.as_deref(),
            default_tier: &default_tier,
            billing_disabled: billing_disabled(),
            default_tenant_id: &default_tenant,
            alert_loopback_targets: cairn_spin::variables::get("alert_loopback_targets")
                .is_some_and(|v| v.trim() == "true"),
            tenant_store: Some(&open_tenant_store),
            tier_store: Some(&tier_store),
        };
        admin::route(&db, &actx, &method, &path, &query, &body).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
    }

    fn admit(tenant_id: String, classes: Vec<String>, stores: bool) -> Result<(), Error> {
        let db = store::open().map_err(to_wit)?;
        let now = cairn_core::time_fmt::rfc3339_millis(now_ms());
        cairn_control_plane::schema::ensure(&db, &now).map_err(to_wit)?;
        let tier = tenant_tier(&db, &tenant_id)?;
        // The storage count lives in the kernel's schema, in the store of
        // the tenant's memories (home unless its tier places it apart; the
        // tier is known, so it is not read again).
        let apart = if stores { placement::tier_store(&tier).map_err(to_wit)? } else { None };
        let memories: Option<&dyn Sql> = stores.then(|| apart.as_ref().map_or(&db as &dyn Sql, |s| s as &dyn Sql));
        if let Some(m) = memories {
            cairn_memory::schema::ensure(m, &now).map_err(to_wit)?;
        }
        let profiles: Option<serde_json::Value> =
            cairn_spin::variables::get("tier_profiles").and_then(|p| serde_json::from_str(&p).ok());
        let profile = profiles.as_ref().and_then(|p| p.get("tiers")?.get(&tier));
        let default_tenant = cairn_spin::variables::get("memory_tenant_id").unwrap_or_else(|| "default".into());
        let sleep = |ms: i64| std::thread::sleep(std::time::Duration::from_millis(ms.max(0) as u64));
        cairn_control_plane::quota_buckets::admit(
            &db,
            &tenant_id,
            &classes,
            memories,
            profile,
            &default_tenant,
            &now_ms,
            &sleep,
        )
        .map_err(to_wit)
    }

    fn admit_explicit(tenant_id: String, classes: Vec<String>) -> Result<(), Error> {
        // No schema check up front: a tenant without a profile costs the
        // one read of its profile (admit_explicit ensures the schema when
        // there is one).
        let db = store::open().map_err(to_wit)?;
        let sleep = |ms: i64| std::thread::sleep(std::time::Duration::from_millis(ms.max(0) as u64));
        cairn_control_plane::quota_buckets::admit_explicit(&db, &tenant_id, &classes, &now_ms, &sleep).map_err(to_wit)
    }

    fn resolve_api_key(key: String) -> Result<Option<String>, Error> {
        let db = store::open().map_err(to_wit)?;
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

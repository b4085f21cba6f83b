//! Request handling, independent of the HTTP binding: request id, the
//! browser gate (`Host`, `Origin`) and CORS, routing, admin guard, `X-Tenant-Id` fallback, the call into the kernel
//! and the error envelope. The wasm adapter (`component.rs`) only moves
//! bytes between `wasi:http` and [`handle`].

use crate::browser_gate::CorsOrigins;
use crate::quota_gate::Quotas;
use crate::routes::{Match, Route, match_route};
use cairn_core::ApiError;
use cairn_core::admin_token as admin_auth;
use serde_json::{Value, json};

/// Largest accepted request body (the reference's `bodyLimit`).
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// A request as the gateway sees it. Header names are lowercase; `host`
/// holds the request's authority (the binding puts it there).
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// The body, or `Err` when it exceeded [`MAX_BODY_BYTES`] or failed to read.
    pub body: Result<Vec<u8>, BodyError>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BodyError {
    TooLarge,
    Read(String),
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A call into the kernel's `memory` interface.
pub enum MemoryCall<'a> {
    Write(&'a str),
    Find(&'a str),
    Recall(&'a str),
    RecallText(&'a str),
    CreateSession(&'a str),
    WriteEvent(&'a str),
    ListSessionEvents(&'a str, Vec<(String, String)>),
    ExportPack(&'a str),
    ImportPack(&'a str),
    ListCommits(Vec<(String, String)>),
    VerifyCommits(&'a str),
}

/// A call into the `policy` interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyCall {
    RulesEvaluate,
    RulesState,
    Feedback,
    ToolsSelect,
    ToolsDecision,
    ToolsFeedback,
    RecallRules,
}

/// What the gateway needs from its environment.
pub trait Backend {
    /// The configured admin token, if any.
    fn admin_token(&self) -> Option<String>;
    /// A configuration variable (empty counts as unset).
    fn variable(&self, name: &str) -> Option<String>;
    /// The principal JSON a control-plane API key resolves to.
    fn resolve_api_key(&self, key: &str) -> Result<Option<String>, ApiError>;
    /// Unix time in seconds.
    fn now_s(&self) -> i64;
    /// Admits a tenant's request: a token of each quota class (429 when a
    /// bucket is empty) and, when it `stores` memory, the storage cap (413).
    fn admit(&self, tenant: &str, classes: &[&str], stores: bool) -> Result<(), ApiError>;
    /// Admits a tenant's request against its own quota profile alone (no
    /// tier quotas, no storage cap); no profile, no limit.
    fn admit_explicit(&self, tenant: &str, classes: &[&str]) -> Result<(), ApiError>;
    /// `cors_allow_origins`: comma-separated exact origins a browser may
    /// call from, `*` for any; empty (the default) for none.
    fn cors_origins(&self) -> String;
    /// Calls the kernel.
    fn memory(&self, call: MemoryCall, request_id: &str, admin: bool) -> Result<String, ApiError>;
    /// Calls the policy engine with a JSON request.
    fn policy(&self, call: PolicyCall, request: &str, request_id: &str, admin: bool) -> Result<String, ApiError>;
    /// Calls the control plane's admin API (`path` below `/v1/admin/control/`).
    fn control_admin(
        &self,
        method: &str,
        path: &str,
        query: Vec<(String, String)>,
        body: &str,
        request_id: &str,
    ) -> Result<String, ApiError>;
    /// `(name, version, schema_version)` of each composed component.
    fn components(&self) -> Vec<(String, String, u32)>;
    /// The kernel's database capabilities (`{"lexical_index": bool,
    /// "memory_store_backend": "sqlite" | "postgres", …}`).
    fn memory_capabilities(&self) -> Value;
    /// The recall audit rows the kernel handed back during this request
    /// (`memory_recall_audit = host`), for the host to persist.
    fn take_audit_rows(&self) -> Vec<String> {
        Vec::new()
    }
    /// A fresh random request id.
    fn new_request_id(&self) -> String;
}

/// The request id: the caller's `x-request-id` when it is sane, else a new one.
pub fn request_id(req: &HttpRequest, backend: &dyn Backend) -> String {
    match req.header("x-request-id").map(str::trim) {
        Some(id) if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()) => id.to_string(),
        _ => backend.new_request_id(),
    }
}

fn json_response(status: u16, body: Vec<u8>) -> HttpResponse {
    HttpResponse { status, headers: vec![("content-type".into(), "application/json; charset=utf-8".into())], body }
}

fn error_response(e: &ApiError) -> HttpResponse {
    let mut r = json_response(e.status, e.to_body().to_string().into_bytes());
    // Errors that say when to come back (recall_text's upstream failures).
    if let Some(ms) = e.details.as_ref().and_then(|d| d.get("retry_after_ms")).and_then(Value::as_u64) {
        r.headers.push(("retry-after".into(), ms.div_ceil(1000).max(1).to_string()));
    }
    r
}

/// The `tenant_id` a JSON response starts with (all kernel responses do),
/// found without parsing the whole document; used only for logs.
pub fn leading_tenant(body: &[u8]) -> Option<String> {
    let rest = body.strip_prefix(br#"{"tenant_id":""#)?;
    let end = rest.iter().position(|b| *b == b'"' || *b == b'\\')?;
    (rest.get(end) == Some(&b'"')).then(|| String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// The header a recall audit row travels to the host in.
pub const AUDIT_HEADER: &str = "x-cairn-recall-audit";

/// Handles one request.
pub fn handle(backend: &dyn Backend, req: HttpRequest) -> HttpResponse {
    let rid = request_id(&req, backend);
    let origin = req.header("origin").map(str::to_string);
    let cors = CorsOrigins::parse(&backend.cors_origins());
    let mut resp = if let Err(e) = browser_gate(backend, &req, &cors) {
        error_response(&e)
    } else if req.method == "OPTIONS" {
        HttpResponse { status: 204, headers: Vec::new(), body: Vec::new() }
    } else {
        match route_and_call(backend, &req, &rid) {
            Ok(r) => r,
            Err(e) => {
                if e.status >= 500 {
                    eprintln!("request {rid}: {} {} failed: {e}", req.method, req.path);
                }
                error_response(&e)
            }
        }
    };
    let tenant = leading_tenant(&resp.body)
        .or_else(|| req.header("x-tenant-id").map(str::to_string))
        .unwrap_or_else(|| "-".into());
    resp.headers.push(("x-request-id".into(), rid));
    // Read by the host for its request log line (stripped before sending).
    resp.headers.push(("x-cairn-tenant".into(), tenant));
    // Recall audit rows for the host's batched writer (stripped before
    // sending): hex of the row's JSON, so any text is a valid header value.
    for row in backend.take_audit_rows() {
        resp.headers.push((AUDIT_HEADER.into(), hex::encode(row)));
    }
    add_cors(&mut resp, &cors, origin.as_deref(), req.method == "OPTIONS");
    resp
}

/// The `Host` check and, while memory auth is off, the refusal of
/// cross-origin requests ([`crate::browser_gate`]); `/health` and the
/// OpenAPI document (public, read-only) skip both.
fn browser_gate(backend: &dyn Backend, req: &HttpRequest, cors: &CorsOrigins) -> Result<(), ApiError> {
    if req.path == "/health" || req.path == "/openapi.json" {
        return Ok(());
    }
    // An unparsable mode counts as off here (the stricter rules); memory
    // routes then answer 500 for it.
    let auth_off = crate::auth_gate::mode(backend).map_or(true, |m| m == cairn_core::auth::Mode::Off);
    let allowed = crate::browser_gate::allowed_hosts(backend.variable("allowed_hosts").as_deref(), auth_off);
    let host = req.header("host");
    if let Some(allowed) = &allowed {
        crate::browser_gate::check_host(host, allowed)?;
    }
    if auth_off {
        crate::browser_gate::check_origin(req.header("origin"), cors, host, allowed.as_deref())?;
    }
    Ok(())
}

fn add_cors(resp: &mut HttpResponse, cors: &CorsOrigins, origin: Option<&str>, preflight: bool) {
    let allow = match cors {
        CorsOrigins::Any => "*".to_string(),
        CorsOrigins::List(list) if list.is_empty() => return,
        CorsOrigins::List(_) => {
            // The answer depends on the Origin whenever there is a list.
            resp.headers.push(("vary".into(), "Origin".into()));
            match origin.filter(|o| cors.allows(o)) {
                Some(o) => o.trim().to_string(),
                None => return,
            }
        }
    };
    resp.headers.push(("access-control-allow-origin".into(), allow));
    resp.headers.push(("access-control-expose-headers".into(), "x-request-id".into()));
    if preflight {
        resp.headers.push((
            "access-control-allow-headers".into(),
            "content-type,x-api-key,x-tenant-id,authorization,x-request-id,x-admin-token".into(),
        ));
        resp.headers.push(("access-control-allow-methods".into(), "GET,POST,OPTIONS".into()));
        resp.headers.push(("access-control-max-age".into(), "600".into()));
    }
}

/// The body as UTF-8 text (`{}` when empty).
fn raw_body_text(req: &HttpRequest) -> Result<String, ApiError> {
    let bytes = match &req.body {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return Err(ApiError::new(
                413,
                "payload_too_large",
                format!("request body exceeds {MAX_BODY_BYTES} bytes"),
            )
            .with_details(json!({"limit_bytes": MAX_BODY_BYTES})));
        }
        Err(BodyError::Read(m)) => {
            return Err(ApiError::bad_request("invalid_request", format!("could not read request body: {m}")));
        }
    };
    let text =
        std::str::from_utf8(bytes).map_err(|_| ApiError::bad_request("invalid_json", "request body is not UTF-8"))?;
    Ok(if text.trim().is_empty() { "{}".to_string() } else { text.to_string() })
}

/// The body as UTF-8 JSON text, with `X-Tenant-Id` injected when the body
/// names no tenant (only then is the body parsed here).
fn body_text(req: &HttpRequest) -> Result<String, ApiError> {
    let text = raw_body_text(req)?;
    let Some(tenant) = req.header("x-tenant-id").map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(text);
    };
    let mut v: Value = serde_json::from_str(&text)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body is not valid JSON: {e}")))?;
    if let Some(m) = v.as_object_mut()
        && m.get("tenant_id").is_none_or(Value::is_null)
    {
        m.insert("tenant_id".into(), json!(tenant));
    }
    Ok(v.to_string())
}

/// Whether a JSON body holds U+0000 in a string or key (`\u0000`; JSON
/// allows no raw control characters). Parsed only when the escape occurs.
fn json_has_nul(body: &[u8]) -> bool {
    fn any_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(any_nul),
            Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || any_nul(v)),
            _ => false,
        }
    }
    body.windows(6).any(|w| w == b"\\u0000")
        && serde_json::from_slice::<Value>(body).is_ok_and(|v| any_nul(&v))
}

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    let mut q = cairn_core::encoding::parse_query(&req.query);
    if let Some(t) = req.header("x-tenant-id").map(str::trim).filter(|t| !t.is_empty())
        && !q.iter().any(|(k, v)| k == "tenant_id" && !v.is_empty())
    {
        q.push(("tenant_id".into(), t.to_string()));
    }
    q
}

fn route_and_call(backend: &dyn Backend, req: &HttpRequest, rid: &str) -> Result<HttpResponse, ApiError> {
    // U+0000 in a path or query value (as in a JSON string, which the
    // request reader refuses): PostgreSQL's text cannot hold it, and one
    // kernel answers alike on both backends.
    if req.path.to_ascii_lowercase().contains("%00")
        || cairn_core::encoding::parse_query(&req.query).iter().any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(ApiError::bad_request("invalid_request", "the path and query must not contain U+0000 (NUL)"));
    }
    if let Ok(body) = &req.body
        && json_has_nul(body)
    {
        return Err(ApiError::bad_request("invalid_request", "JSON strings and keys must not contain U+0000 (NUL)"));
    }
    let route = match match_route(&req.method, &req.path) {
        Match::Found(r) => r,
        Match::WrongMethod(allowed) => {
            let mut r =
                error_response(&ApiError::new(405, "method_not_allowed", format!("use {allowed} for {}", req.path)));
            r.headers.push(("allow".into(), allowed.into()));
            return Ok(r);
        }
        Match::NotFound => {
            return Err(ApiError::not_found("not_found", format!("no route for {} {}", req.method, req.path)));
        }
    };
    let admin = match route.needs_admin() {
        true => {
            admin_auth::check(backend.admin_token().as_deref(), req.header("x-admin-token"))?;
            true
        }
        // Only a request that presents a token can be an admin one; the
        // others skip the variable lookup.
        false => {
            req.header("x-admin-token").is_some()
                && backend
                    .admin_token()
                    .is_some_and(|t| admin_auth::check(Some(&t), req.header("x-admin-token")).is_ok())
        }
    };
    if route == Route::Health {
        return Ok(json_response(200, health(backend).to_string().into_bytes()));
    }
    if route == Route::OpenApi {
        return Ok(json_response(200, crate::openapi::DOCUMENT.as_bytes().to_vec()));
    }
    let guarded = crate::auth_gate::guarded(&route);
    let mode = if guarded { crate::auth_gate::mode(backend)? } else { cairn_core::auth::Mode::Off };
    let principal = match mode {
        cairn_core::auth::Mode::Off => None,
        m => Some(crate::auth_gate::authenticate(backend, req, m)?),
    };
    let quotas =
        if guarded { crate::quota_gate::mode(backend, mode != cairn_core::auth::Mode::Off) } else { Quotas::Off };
    if quotas != Quotas::Off {
        // Borrowed, not copied: every write and recall passes here.
        let raw = req.body.as_ref().ok().and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default();
        let classes = crate::quota_gate::classes(&route, raw);
        if !classes.is_empty() {
            let tenant = match &principal {
                Some(p) => p.tenant_id.clone(),
                None => crate::quota_gate::tenant_of(backend, raw, &query_pairs(req), req.header("x-tenant-id")),
            };
            crate::quota_gate::draw(backend, quotas, &route, &tenant, &classes)?;
        }
    }
    // The body (or query) as the operation will see it: bound to the
    // principal when there is one.
    let text = |req: &HttpRequest| -> Result<String, ApiError> {
        match &principal {
            Some(p) => crate::auth_gate::bind_text(&raw_body_text(req)?, p, &route, req.header("x-tenant-id")),
            None => body_text(req),
        }
    };
    let pairs = |req: &HttpRequest| -> Result<Vec<(String, String)>, ApiError> {
        let mut q = query_pairs(req);
        if let Some(p) = &principal {
            crate::auth_gate::bind_query(&mut q, p, &route)?;
        }
        Ok(q)
    };
    if let Route::ControlAdmin { path } = &route {
        let out = backend.control_admin(&req.method, path, query_pairs(req), &raw_body_text(req)?, rid)?;
        return Ok(json_response(200, out.into_bytes()));
    }
    if let Some(call) = crate::policy_routes::policy_call(&route) {
        let out = backend.policy(call, &text(req)?, rid, admin)?;
        return Ok(json_response(200, out.into_bytes()));
    }
    if route == Route::PlanningContext {
        let out = crate::policy_routes::planning_context(backend, &text(req)?, rid, admin)?;
        return Ok(json_response(200, out.into_bytes()));
    }
    let mut body = String::new();
    let call = match &route {
        Route::ListSessionEvents { session_id } => MemoryCall::ListSessionEvents(session_id, pairs(req)?),
        Route::ListCommits => MemoryCall::ListCommits(pairs(req)?),
        r => {
            body = text(req)?;
            match r {
                Route::Write => MemoryCall::Write(&body),
                Route::Find => MemoryCall::Find(&body),
                Route::Recall => MemoryCall::Recall(&body),
                Route::RecallText => MemoryCall::RecallText(&body),
                Route::CreateSession => MemoryCall::CreateSession(&body),
                Route::WriteEvent => MemoryCall::WriteEvent(&body),
                Route::PackExport => MemoryCall::ExportPack(&body),
                Route::PackImport => MemoryCall::ImportPack(&body),
                Route::VerifyCommits => MemoryCall::VerifyCommits(&body),
                _ => unreachable!("handled above"),
            }
        }
    };
    let recall = matches!(route, Route::Recall | Route::RecallText);
    let mut out = backend.memory(call, rid, admin)?;
    if recall {
        out = crate::policy_routes::with_recall_rules(backend, &body, out, rid, admin)?;
    }
    Ok(json_response(200, out.into_bytes()))
}

fn health(backend: &dyn Backend) -> Value {
    let components: serde_json::Map<String, Value> = backend
        .components()
        .into_iter()
        .map(|(name, version, schema)| (name, json!({"version": version, "schema_version": schema})))
        .collect();
    let hard = json!({"failure_mode": "hard_fail", "degraded_modes": []});
    let capabilities = backend.memory_capabilities();
    let lexical = capabilities["lexical_index"].as_bool().unwrap_or(false);
    // The kernel's database: `sqlite`, or `postgres` under `database_url`.
    let store = capabilities["memory_store_backend"].as_str().unwrap_or("sqlite");
    json!({
        "ok": true,
        "service": "cairn",
        "memory_store_backend": store,
        // Tiers whose tenants store apart from the home store (`tier ->
        // sqlite | postgres`; docs/postgres.md).
        "memory_store_placements": capabilities.get("memory_store_placements").cloned().unwrap_or_else(|| json!({})),
        // Which database this server serves (`cairn gate core --data-dir`).
        "database_target_hash": capabilities["database_target_hash"],
        "components": components,
        "memory_store_feature_capabilities": {"sessions_graph": true, "packs_export": true, "packs_import": true,
                                              "lexical_index": lexical},
        "memory_store_write_capabilities": {"shadow_mirror_v2": false},
        "memory_store_capability_contract": {
            "sessions_graph": hard, "packs_export": hard, "packs_import": hard,
            "shadow_mirror_v2": {"failure_mode": "soft_degrade", "degraded_modes": ["capability_unsupported"]},
            // Without FTS5, recall_text seeds by vectors alone.
            "lexical_index": {"failure_mode": "soft_degrade", "degraded_modes": ["dense_only"]},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Fake {
        admin: Option<String>,
        cors: String,
        vars: Vec<(&'static str, &'static str)>,
        calls: RefCell<Vec<String>>,
        admits: RefCell<Vec<String>>,
    }

    impl Backend for Fake {
        fn admin_token(&self) -> Option<String> {
            self.admin.clone()
        }
        fn cors_origins(&self) -> String {
            self.cors.clone()
        }
        fn variable(&self, name: &str) -> Option<String> {
            self.vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        }
        fn resolve_api_key(&self, _key: &str) -> Result<Option<String>, ApiError> {
            Ok(None)
        }
        fn now_s(&self) -> i64 {
            0
        }
        fn admit(&self, tenant: &str, classes: &[&str], stores: bool) -> Result<(), ApiError> {
            self.admits.borrow_mut().push(format!("tier+profile {tenant} {classes:?} stores={stores}"));
            Ok(())
        }
        fn admit_explicit(&self, tenant: &str, classes: &[&str]) -> Result<(), ApiError> {
            self.admits.borrow_mut().push(format!("profile {tenant} {classes:?}"));
            Ok(())
        }
        fn memory(&self, call: MemoryCall, _rid: &str, admin: bool) -> Result<String, ApiError> {
            let body = match call {
                MemoryCall::Write(b) => format!("write {b} admin={admin}"),
                MemoryCall::ListCommits(q) => format!("commits {q:?}"),
                MemoryCall::ExportPack(b) => format!("export {b}"),
                _ => "other".into(),
            };
            self.calls.borrow_mut().push(body);
            Ok(r#"{"tenant_id":"t1","scope":"s"}"#.into())
        }
        fn policy(&self, call: PolicyCall, body: &str, _rid: &str, _admin: bool) -> Result<String, ApiError> {
            self.calls.borrow_mut().push(format!("{call:?} {body}"));
            Ok(r#"{"scope":"s","applied":{"policy":{"tool":{}}}}"#.into())
        }
        fn control_admin(
            &self,
            method: &str,
            path: &str,
            _query: Vec<(String, String)>,
            _body: &str,
            _rid: &str,
        ) -> Result<String, ApiError> {
            self.calls.borrow_mut().push(format!("control {method} {path}"));
            Ok(r#"{"ok":true}"#.into())
        }
        fn components(&self) -> Vec<(String, String, u32)> {
            vec![("kernel".into(), "0.1.0".into(), 1)]
        }
        fn memory_capabilities(&self) -> Value {
            json!({"lexical_index": true})
        }
        fn new_request_id(&self) -> String {
            "generated".into()
        }
    }

    /// A request; `host: 127.0.0.1:3001` unless `headers` name a host.
    fn req(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> HttpRequest {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if !headers.iter().any(|(k, _)| k == "host") {
            headers.push(("host".into(), "127.0.0.1:3001".into()));
        }
        HttpRequest {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers,
            body: Ok(body.as_bytes().to_vec()),
        }
    }

    fn header<'a>(r: &'a HttpResponse, name: &str) -> Option<&'a str> {
        r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Without auth a tenant's own quota profile still applies (`auto`);
    /// `true` adds the tier's quotas and storage cap, `false` turns both off.
    #[test]
    fn quota_mode_follows_tenant_quota_enabled() {
        let write = r#"{"tenant_id":"acme","nodes":[{"tenant_id":"other"}]}"#;
        let admits = |vars: Vec<(&'static str, &'static str)>, path: &str, body: &str| {
            let f = Fake { vars, ..Default::default() };
            handle(&f, req("POST", path, &[], body));
            f.admits.take()
        };
        assert_eq!(admits(vec![], "/v1/memory/write", write), [r#"profile acme ["write"]"#]);
        assert_eq!(
            admits(vec![("tenant_quota_enabled", "auto")], "/v1/memory/find", "{}"),
            [r#"profile default ["recall"]"#]
        );
        assert_eq!(
            admits(vec![("tenant_quota_enabled", "true")], "/v1/memory/write", write),
            [r#"tier+profile acme ["write"] stores=true"#]
        );
        assert!(admits(vec![("tenant_quota_enabled", "false")], "/v1/memory/write", write).is_empty());
        // The tenant comes from the header when the body names none.
        let f = Fake { vars: vec![("memory_tenant_id", "home")], ..Default::default() };
        handle(&f, req("POST", "/v1/memory/write", &[("x-tenant-id", "hdr")], r#"{"scope":"s"}"#));
        handle(&f, req("POST", "/v1/memory/write", &[], r#"{"tenant_id":7}"#));
        assert_eq!(f.admits.take(), [r#"profile hdr ["write"]"#, r#"profile home ["write"]"#]);
        // Admin routes draw nothing.
        assert!(admits(vec![], "/v1/admin/control/tenants", "{}").is_empty());
    }

    #[test]
    fn a_nul_in_the_path_or_query_is_refused() {
        let f = Fake::default();
        for path in ["/v1/memory/sessions/a%00b/events", "/v1/memory/commits?scope=x%00"] {
            let r = handle(&f, req("GET", path, &[], ""));
            assert_eq!(r.status, 400, "{path}");
        }
        assert_eq!(handle(&f, req("GET", "/v1/memory/commits?scope=x", &[], "")).status, 200);
        let nul = r#"{"slots_contains": {"k": "a\u0000"}}"#;
        assert_eq!(handle(&f, req("POST", "/v1/memory/find", &[], nul)).status, 400);
        // An escaped backslash before "u0000" is text, not U+0000.
        let text = r#"{"slots_contains": {"k": "a\\u0000"}}"#;
        assert_eq!(handle(&f, req("POST", "/v1/memory/find", &[], text)).status, 200);
    }

    #[test]
    fn echoes_request_id_and_tenant() {
        let f = Fake::default();
        let r = handle(&f, req("POST", "/v1/memory/write", &[("x-request-id", " abc ")], "{}"));
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "x-request-id"), Some("abc"));
        assert_eq!(header(&r, "x-cairn-tenant"), Some("t1"));
        let r = handle(&f, req("GET", "/health", &[], ""));
        assert_eq!(header(&r, "x-request-id"), Some("generated"));
    }

    #[test]
    fn tenant_header_fills_missing_tenant_only() {
        let f = Fake::default();
        handle(&f, req("POST", "/v1/memory/write", &[("x-tenant-id", "acme")], r#"{"scope":"s"}"#));
        handle(&f, req("POST", "/v1/memory/write", &[("x-tenant-id", "acme")], r#"{"tenant_id":"mine"}"#));
        handle(&f, req("GET", "/v1/memory/commits?scope=s", &[("x-tenant-id", "acme")], ""));
        let calls = f.calls.borrow();
        assert!(calls[0].contains(r#""tenant_id":"acme""#), "{}", calls[0]);
        assert!(calls[1].contains(r#""tenant_id":"mine""#));
        assert!(calls[2].contains(r#"("tenant_id", "acme")"#));
    }

    #[test]
    fn errors_use_the_envelope() {
        let f = Fake::default();
        let r = handle(&f, req("GET", "/v1/nope", &[], ""));
        assert_eq!(r.status, 404);
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["error"], "not_found");
        let r = handle(&f, req("GET", "/v1/memory/write", &[], ""));
        assert_eq!(r.status, 405);
        let mut big = req("POST", "/v1/memory/write", &[], "");
        big.body = Err(BodyError::TooLarge);
        let r = handle(&f, big);
        assert_eq!(r.status, 413);
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["error"], "payload_too_large");
        let r = handle(&f, req("POST", "/v1/memory/write", &[("x-tenant-id", "a")], "{not json"));
        assert_eq!(r.status, 400);
    }

    #[test]
    fn admin_routes_are_guarded() {
        let mut f = Fake::default();
        let r = handle(&f, req("POST", "/v1/memory/packs/export", &[], "{}"));
        assert_eq!(r.status, 503);
        f.admin = Some("s3cret".into());
        let r = handle(&f, req("POST", "/v1/memory/packs/export", &[("x-admin-token", "bad")], "{}"));
        assert_eq!(r.status, 401);
        let r = handle(&f, req("POST", "/v1/memory/packs/export", &[("x-admin-token", "s3cret")], "{}"));
        assert_eq!(r.status, 200);
        // The admin flag reaches the kernel on ordinary routes too.
        handle(&f, req("POST", "/v1/memory/write", &[("x-admin-token", "s3cret")], "{}"));
        assert!(f.calls.borrow().last().unwrap().ends_with("admin=true"));
    }

    #[test]
    fn options_preflight() {
        let f = Fake { cors: "*".into(), ..Default::default() };
        let r = handle(&f, req("OPTIONS", "/v1/memory/write", &[("origin", "http://x")], ""));
        assert_eq!(r.status, 204);
        assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
        assert!(header(&r, "access-control-allow-methods").is_some());
    }

    const EVIL: (&str, &str) = ("origin", "https://evil.example");

    fn error_code(r: &HttpResponse) -> String {
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        b["error"].as_str().unwrap_or_default().to_string()
    }

    #[test]
    fn no_cross_origin_access_by_default() {
        let f = Fake::default();
        for (method, path) in [
            ("POST", "/v1/memory/find"),
            ("GET", "/v1/memory/find"),
            ("OPTIONS", "/v1/memory/find"),
            ("POST", "/v1/memory/write"),
            ("OPTIONS", "/v1/memory/write"),
            ("GET", "/v1/memory/commits"),
        ] {
            let r = handle(&f, req(method, path, &[EVIL, ("access-control-request-method", "POST")], "{}"));
            assert_eq!(r.status, 403, "{method} {path}");
            assert_eq!(error_code(&r), "cross_origin_forbidden");
            assert_eq!(header(&r, "access-control-allow-origin"), None);
            assert_eq!(header(&r, "access-control-allow-methods"), None);
            assert!(header(&r, "x-request-id").is_some());
        }
        assert!(f.calls.borrow().is_empty(), "nothing reached the kernel");
        // No Origin (curl, SDKs) and the server's own origin work.
        let r = handle(&f, req("POST", "/v1/memory/write", &[], "{}"));
        assert_eq!((r.status, header(&r, "access-control-allow-origin")), (200, None));
        let r = handle(&f, req("POST", "/v1/memory/write", &[("origin", "http://127.0.0.1:3001")], "{}"));
        assert_eq!((r.status, header(&r, "access-control-allow-origin")), (200, None));
        // Health stays reachable.
        assert_eq!(handle(&f, req("GET", "/health", &[EVIL, ("host", "evil.example")], "")).status, 200);
    }

    #[test]
    fn allow_list_echoes_the_origin() {
        let f = Fake { cors: "https://app.example, http://localhost:5173".into(), ..Default::default() };
        let r = handle(&f, req("OPTIONS", "/v1/memory/find", &[("origin", "https://app.example")], ""));
        assert_eq!(r.status, 204);
        assert_eq!(header(&r, "access-control-allow-origin"), Some("https://app.example"));
        assert_eq!(header(&r, "vary"), Some("Origin"));
        assert!(header(&r, "access-control-allow-headers").is_some());
        let r = handle(&f, req("POST", "/v1/memory/find", &[("origin", "http://localhost:5173")], "{}"));
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "access-control-allow-origin"), Some("http://localhost:5173"));
        let r = handle(&f, req("POST", "/v1/memory/find", &[EVIL], "{}"));
        assert_eq!((r.status, header(&r, "access-control-allow-origin")), (403, None));
    }

    #[test]
    fn auth_on_answers_without_allowing_other_origins() {
        let mut f = Fake { vars: vec![("memory_auth_mode", "api_key")], ..Default::default() };
        // Preflight as before, but no origin is allowed by default.
        let r = handle(&f, req("OPTIONS", "/v1/memory/write", &[EVIL], ""));
        assert_eq!((r.status, header(&r, "access-control-allow-origin")), (204, None));
        let r = handle(&f, req("POST", "/v1/memory/write", &[EVIL, ("host", "cairn.example.com")], "{}"));
        assert_eq!(r.status, 401, "auth decides; no Host check without allowed_hosts");
        f.cors = "https://app.example".into();
        let r = handle(&f, req("OPTIONS", "/v1/memory/write", &[("origin", "https://app.example")], ""));
        assert_eq!(header(&r, "access-control-allow-origin"), Some("https://app.example"));
        // A configured allowed_hosts is enforced with auth on too.
        f.vars.push(("allowed_hosts", "cairn.example.com"));
        let r = handle(&f, req("POST", "/v1/memory/write", &[("host", "evil.example")], "{}"));
        assert_eq!((r.status, error_code(&r).as_str()), (421, "host_not_allowed"));
    }

    #[test]
    fn host_must_be_allowed_while_auth_is_off() {
        let mut f = Fake::default();
        for host in ["evil.example:3001", "evil.example", "127.0.0.1.evil.example:3001", ""] {
            let r = handle(&f, req("POST", "/v1/memory/find", &[("host", host)], "{}"));
            assert_eq!((r.status, error_code(&r).as_str()), (421, "host_not_allowed"), "{host}");
        }
        for host in ["localhost:3001", "[::1]:3001", "127.0.0.1:9"] {
            assert_eq!(handle(&f, req("POST", "/v1/memory/find", &[("host", host)], "{}")).status, 200, "{host}");
        }
        // Once configured (as `cairn up` does), only the listed host:ports.
        f.vars.push(("allowed_hosts", "127.0.0.1:3001,localhost:3001,cairn.internal"));
        assert_eq!(handle(&f, req("POST", "/v1/memory/find", &[("host", "127.0.0.1:9")], "{}")).status, 421);
        assert_eq!(handle(&f, req("POST", "/v1/memory/find", &[("host", "cairn.internal:80")], "{}")).status, 200);
        // An allowed host named with its port is an own origin too.
        let r = handle(&f, req("POST", "/v1/memory/find", &[("origin", "http://localhost:3001")], "{}"));
        assert_eq!(r.status, 200);
        let r = handle(&f, req("POST", "/v1/memory/find", &[("origin", "http://cairn.internal:8080")], "{}"));
        assert_eq!(r.status, 403);
    }

    #[test]
    fn leading_tenant_scan() {
        assert_eq!(leading_tenant(br#"{"tenant_id":"abc","x":1}"#).as_deref(), Some("abc"));
        assert_eq!(leading_tenant(br#"{"ok":true}"#), None);
        assert_eq!(leading_tenant(br#"{"tenant_id":"a\"b"}"#), None);
    }
}

//! The wasm adapter: a Spin SDK HTTP component that reads the request
//! (stopping at the body limit), hands it to [`dispatch::handle`] and writes
//! the response. Kernel, policy and control are imported through WIT.

use crate::dispatch::{self, Backend, BodyError, HttpRequest, MAX_BODY_BYTES, MemoryCall, PolicyCall};
use cairn_core::ApiError;
use futures::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

wit_bindgen::generate!({
    world: "gateway-imports",
    path: "../../wit",
    // The imported interfaces live in their own packages (wit/deps/cairn-*).
    generate_all,
});

use cairn::common::types::{CallContext, Error};
use cairn::control::control;
use cairn::memory::memory;
use cairn::policy::policy;

/// The composed imports; `audit_rows` collects the recall audit rows the
/// kernel hands back (`memory_recall_audit = host`) for the host.
#[derive(Default)]
struct Imports {
    audit_rows: std::cell::RefCell<Vec<String>>,
}

fn from_wit(e: Error) -> ApiError {
    ApiError {
        status: e.status,
        code: e.code,
        message: e.message,
        details: e.details.and_then(|d| serde_json::from_str(&d).ok()),
    }
}

impl Imports {
    fn keep_audit(&self, a: memory::RecallAnswer) -> String {
        if let Some(row) = a.audit_row {
            self.audit_rows.borrow_mut().push(row);
        }
        a.body
    }
}

impl Backend for Imports {
    fn take_audit_rows(&self) -> Vec<String> {
        std::mem::take(&mut self.audit_rows.borrow_mut())
    }

    fn admin_token(&self) -> Option<String> {
        spin_sdk::variables::get("admin_token").ok().filter(|t| !t.is_empty())
    }

    fn variable(&self, name: &str) -> Option<String> {
        spin_sdk::variables::get(name).ok().filter(|v| !v.is_empty())
    }

    fn resolve_api_key(&self, key: &str) -> Result<Option<String>, ApiError> {
        control::resolve_api_key(key).map_err(from_wit)
    }

    fn admit(&self, tenant: &str, classes: &[&str], stores: bool) -> Result<(), ApiError> {
        let classes: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
        control::admit(tenant, &classes, stores).map_err(from_wit)
    }

    fn admit_explicit(&self, tenant: &str, classes: &[&str]) -> Result<(), ApiError> {
        let classes: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
        control::admit_explicit(tenant, &classes).map_err(from_wit)
    }

    fn now_s(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }

    fn cors_origins(&self) -> String {
        // Empty (the default): no cross-origin access.
        spin_sdk::variables::get("cors_allow_origins").unwrap_or_default()
    }

    fn memory(&self, call: MemoryCall, request_id: &str, admin: bool) -> Result<String, ApiError> {
        let ctx = CallContext { request_id: request_id.to_string(), admin };
        let out = match call {
            MemoryCall::Write(b) => memory::write(&ctx, b),
            MemoryCall::Find(b) => memory::find(&ctx, b),
            MemoryCall::Recall(b) => memory::recall(&ctx, b).map(|a| self.keep_audit(a)),
            MemoryCall::RecallText(b) => memory::recall_text(&ctx, b).map(|a| self.keep_audit(a)),
            MemoryCall::CreateSession(b) => memory::create_session(&ctx, b),
            MemoryCall::WriteEvent(b) => memory::write_event(&ctx, b),
            MemoryCall::ListSessionEvents(id, q) => memory::list_session_events(&ctx, id, &q),
            MemoryCall::ExportPack(b) => memory::export_pack(&ctx, b),
            MemoryCall::ImportPack(b) => memory::import_pack(&ctx, b),
            MemoryCall::ListCommits(q) => memory::list_commits(&ctx, &q),
            MemoryCall::VerifyCommits(b) => memory::verify_commits(&ctx, b),
        };
        out.map_err(from_wit)
    }

    fn policy(&self, call: PolicyCall, request: &str, request_id: &str, admin: bool) -> Result<String, ApiError> {
        let ctx = CallContext { request_id: request_id.to_string(), admin };
        let request = request.to_string();
        let out = match call {
            PolicyCall::RulesEvaluate => policy::rules_evaluate(&ctx, &request),
            PolicyCall::RulesState => policy::rules_state(&ctx, &request),
            PolicyCall::Feedback => policy::feedback(&ctx, &request),
            PolicyCall::ToolsSelect => policy::tools_select(&ctx, &request),
            PolicyCall::ToolsDecision => policy::tools_decision(&ctx, &request),
            PolicyCall::ToolsFeedback => policy::tools_feedback(&ctx, &request),
            PolicyCall::RecallRules => policy::recall_rules(&ctx, &request),
        };
        out.map_err(from_wit)
    }

    fn control_admin(
        &self,
        method: &str,
        path: &str,
        query: Vec<(String, String)>,
        body: &str,
        request_id: &str,
    ) -> Result<String, ApiError> {
        let ctx = CallContext { request_id: request_id.to_string(), admin: true };
        control::admin(&ctx, method, path, &query, body).map_err(from_wit)
    }

    fn components(&self) -> Vec<(String, String, u32)> {
        [memory::info(), policy::info(), control::info()]
            .into_iter()
            .map(|i| (i.name, i.version, i.schema_version))
            .collect()
    }

    fn memory_capabilities(&self) -> serde_json::Value {
        memory::capabilities()
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| serde_json::json!({"lexical_index": false}))
    }

    fn new_request_id(&self) -> String {
        let mut b = [0u8; 16];
        let _ = getrandom::fill(&mut b);
        cairn_core::stable_id::uuid_v4(b)
    }
}

/// Beyond the limit, how much more of an oversized body is read and
/// discarded so the client (still sending) gets the 413 instead of a reset
/// connection.
const DRAIN_BYTES: usize = 4 * MAX_BODY_BYTES;

/// Reads the body, refusing to buffer more than the limit.
async fn read_body(req: IncomingRequest, declared: Option<usize>) -> Result<Vec<u8>, BodyError> {
    if declared.is_some_and(|n| n > DRAIN_BYTES) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(MAX_BODY_BYTES));
    let mut seen = 0usize;
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        seen += chunk.len();
        if seen > DRAIN_BYTES {
            return Err(BodyError::TooLarge);
        }
        if seen <= MAX_BODY_BYTES {
            body.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_BODY_BYTES { Err(BodyError::TooLarge) } else { Ok(body) }
}

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let method = req.method().to_string();
    let path_q = req.path_with_query().unwrap_or_else(|| "/".into());
    let (path, query) = match path_q.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path_q, String::new()),
    };
    let mut headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), String::from_utf8_lossy(&v).into_owned()))
        .collect();
    // `host` is the request's authority: the host takes it from an
    // absolute-form target or the Host header, and may strip the header.
    if let Some(authority) = req.authority() {
        headers.retain(|(k, _)| k != "host");
        headers.push(("host".into(), authority));
    }
    let declared = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.trim().parse().ok());
    let body = if method == "GET" || method == "HEAD" || method == "OPTIONS" {
        Ok(Vec::new())
    } else {
        read_body(req, declared).await
    };
    let resp = dispatch::handle(&Imports::default(), HttpRequest { method, path, query, headers, body });
    let mut header_list: Vec<(String, Vec<u8>)> = resp.headers.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
    // A known length lets the host send head and body together instead of
    // chunked framing.
    if resp.status != 204 {
        header_list.push(("content-length".into(), resp.body.len().to_string().into_bytes()));
    }
    let fields = Fields::from_list(&header_list).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(resp.status);
    send(out, response, &resp.body);
}

/// Sends the response. When the host can buffer the whole body at once it
/// is written and finished before the response is handed over, so head and
/// body leave together; otherwise it is streamed after the hand-over.
fn send(out: ResponseOutparam, response: OutgoingResponse, body: &[u8]) {
    use spin_sdk::wit::wasi::http0_2_0::types::OutgoingBody;
    let Ok(outgoing) = response.body() else {
        eprintln!("could not take the response body");
        return;
    };
    let Ok(stream) = outgoing.write() else {
        eprintln!("could not open the response body stream");
        return;
    };
    let fits = stream.check_write().map(|permit| permit as usize >= body.len()).unwrap_or(false);
    if fits {
        if !body.is_empty() && stream.write(body).is_err() {
            eprintln!("could not write the response body");
        }
        drop(stream);
        let _ = OutgoingBody::finish(outgoing, None);
        out.set(response);
        return;
    }
    out.set(response);
    for chunk in body.chunks(4096) {
        if let Err(e) = stream.blocking_write_and_flush(chunk) {
            eprintln!("could not stream the response body: {e}");
            return;
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}

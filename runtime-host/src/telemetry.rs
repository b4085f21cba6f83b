//! Request telemetry (reference `memory_request_telemetry`): one row per
//! memory request — tenant, endpoint class, status, latency, request id —
//! written in batches off the request path ([`crate::batch_writer`]). The
//! control plane's diagnostics read it. `CAIRN_TELEMETRY=0` turns it off.

use crate::batch_writer::BatchRow;

/// One request's row.
pub struct Row {
    pub tenant_id: String,
    pub endpoint: &'static str,
    pub status: u16,
    pub latency_ms: f64,
    pub request_id: String,
    /// The API key's public prefix, when the request carried one.
    pub api_key_prefix: Option<String>,
    pub created_at: String,
}

impl BatchRow for Row {
    const INSERT: &'static str = "INSERT INTO memory_request_telemetry \
        (tenant_id, endpoint, status_code, latency_ms, request_id, api_key_prefix, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)";
    fn params(&self) -> Vec<libsql::Value> {
        vec![
            self.tenant_id.clone().into(),
            self.endpoint.into(),
            (self.status as i64).into(),
            self.latency_ms.into(),
            self.request_id.clone().into(),
            self.api_key_prefix.clone().map_or(libsql::Value::Null, libsql::Value::Text),
            self.created_at.clone().into(),
        ]
    }
}

/// The endpoint class a path is recorded under (`None`: not recorded).
pub fn endpoint_of(path: &str) -> Option<&'static str> {
    Some(match path.trim_end_matches('/') {
        "/v1/memory/write" | "/v1/memory/sessions" | "/v1/memory/events" | "/v1/memory/packs/import" => "write",
        "/v1/memory/recall_text" => "recall_text",
        "/v1/memory/recall"
        | "/v1/memory/find"
        | "/v1/memory/packs/export"
        | "/v1/memory/planning/context"
        | "/v1/memory/tools/decision" => "recall",
        _ => return None,
    })
}

//! The wasm adapter: a Spin HTTP component for `/v1/admin/derive/...`.

use cairn_core::ApiError;
use cairn_spin::spin_sqlite::SpinSqlite;
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

fn now() -> String {
    let ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    cairn_core::time_fmt::rfc3339_millis(ms)
}

fn route(req: &Request) -> Result<serde_json::Value, ApiError> {
    let token = spin_sdk::variables::get("admin_token").ok();
    let presented = req.header("x-admin-token").and_then(|h| h.as_str());
    cairn_core::admin_token::check(token.as_deref(), presented)?;
    match (req.method().to_string().as_str(), req.path().trim_end_matches('/')) {
        ("GET", "/v1/admin/derive/status") => {
            let db = SpinSqlite::open("default")?;
            crate::outbox_status::status(&db, &now())
        }
        (m, p) => Err(ApiError::not_found("not_found", format!("no route for {m} {p}"))),
    }
}

#[http_component]
fn handle(req: Request) -> impl IntoResponse {
    let rid = req.header("x-request-id").and_then(|h| h.as_str()).unwrap_or("-").to_string();
    let (status, body) = match route(&req) {
        Ok(v) => (200, v),
        Err(e) => (e.status, e.to_body()),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-request-id", rid)
        .body(body.to_string())
        .build()
}

//! The operator console (`GET /console`, docs/console.md): a few static
//! files built into the binary — one HTML page, its stylesheet and
//! hand-written ES modules — that call the admin API from the operator's
//! browser with the admin token they type in. The files hold no data and
//! no secret; everything they show comes from `/v1/admin/control/*`
//! behind the token, so serving them needs no authentication.
//!
//! Every response carries a strict Content-Security-Policy (scripts and
//! styles from this origin only, no inline code, no framing, API calls to
//! this origin only), `nosniff`, `no-referrer`, and `no-store` for the HTML.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// What the page may load and do: nothing from elsewhere, no inline
/// script or style, no plugins, no framing, no form posts.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The files under `/console/`: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("index.html")),
    ("console.css", "text/css; charset=utf-8", include_bytes!("console.css")),
    ("favicon.svg", "image/svg+xml", include_bytes!("favicon.svg")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_bytes!("api.js")),
    ("dom.js", "text/javascript; charset=utf-8", include_bytes!("dom.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_bytes!("charts.js")),
    ("tenants.js", "text/javascript; charset=utf-8", include_bytes!("tenants.js")),
    ("slo.js", "text/javascript; charset=utf-8", include_bytes!("slo.js")),
    ("outbox.js", "text/javascript; charset=utf-8", include_bytes!("outbox.js")),
    ("audit.js", "text/javascript; charset=utf-8", include_bytes!("audit.js")),
    ("alerts.js", "text/javascript; charset=utf-8", include_bytes!("alerts.js")),
];

/// Whether `path` is the console's (`/console`, `/console/...`).
pub fn is_console(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// The file a console path names: `/console` and `/console/` are the page.
fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    let name = match path.strip_prefix("/console").unwrap_or(path).trim_start_matches('/') {
        "" => "index.html",
        n => n,
    };
    ASSETS.iter().find(|(n, _, _)| *n == name).map(|(_, ct, bytes)| (*ct, *bytes))
}

/// The response to a console request (`GET`/`HEAD`; others get 405).
pub fn response(method: &hyper::Method, path: &str) -> hyper::Response<HyperOutgoingBody> {
    let (status, content_type, body): (u16, &str, &[u8]) =
        if method != hyper::Method::GET && method != hyper::Method::HEAD {
            (405, "text/plain; charset=utf-8", b"the console is read with GET\n")
        } else {
            match asset(path) {
                Some((ct, bytes)) => (200, ct, bytes),
                None => (404, "text/plain; charset=utf-8", b"no such console file\n"),
            }
        };
    let cache = if content_type.starts_with("text/html") || status != 200 { "no-store" } else { "no-cache" };
    let body = if method == hyper::Method::HEAD { Bytes::new() } else { Bytes::from_static(body) };
    let mut b = hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-security-policy", CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .header("cross-origin-opener-policy", "same-origin")
        .header("cache-control", cache);
    if status == 405 {
        b = b.header("allow", "GET, HEAD");
    }
    b.body(Full::new(body).map_err(|never| match never {}).boxed_unsync()).expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_built_in_files() {
        assert!(is_console("/console") && is_console("/console/app.js"));
        assert!(!is_console("/consoles") && !is_console("/v1/console"));
        assert_eq!(asset("/console").unwrap().0, "text/html; charset=utf-8");
        assert_eq!(asset("/console/").unwrap().0, "text/html; charset=utf-8");
        assert_eq!(asset("/console/charts.js").unwrap().0, "text/javascript; charset=utf-8");
        assert!(asset("/console/../Cargo.toml").is_none() && asset("/console/nope.js").is_none());
    }

    #[test]
    fn every_module_the_page_imports_is_served() {
        // Each `from './x.js'` in a module and each `src=` in the page names
        // a built-in file (a typo would be a 404 only a browser notices).
        for (name, _, bytes) in ASSETS {
            let text = std::str::from_utf8(bytes).unwrap();
            for part in text.split("from './").skip(1).chain(text.split("src=\"/console/").skip(1)) {
                let file = part.split(['\'', '"']).next().unwrap();
                assert!(ASSETS.iter().any(|(n, _, _)| *n == file), "{name} imports {file}, which is not served");
            }
            assert!(!text.contains("localStorage") && !text.contains("sessionStorage"), "{name} stores state");
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(asset("/console").unwrap().1).unwrap();
        assert!(!html.contains("<script>") && !html.contains(" style=") && !html.contains("<style"));
        assert!(html.contains("<script type=\"module\" src=\"/console/app.js\"></script>"));
    }
}

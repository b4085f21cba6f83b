//! The OpenAPI 3.1 document of Cairn's HTTP API, served at `GET
//! /openapi.json`. Written by hand in `docs/openapi.yaml` (the build turns
//! it into compact JSON) and held to the real routes by this module's
//! tests: every entry of the route tables — the gateway's
//! [`crate::routes::ROUTES`], the control plane's
//! `cairn_control_plane::admin::ROUTES` and derivation's
//! `cairn_derive::http_routes::ROUTES`, and the host's own
//! `cairn_core::path_template::HOST_ROUTES` — has an operation with request
//! and response schemas and error envelopes, under the component that
//! serves it (`x-cairn-component`), and the document names no route missing
//! from them.

/// The document, as served.
pub const DOCUMENT: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

#[cfg(test)]
mod tests {
    use super::DOCUMENT;
    use serde_json::Value;
    use std::collections::BTreeSet;

    const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).expect("the document is JSON")
    }

    /// (METHOD, path, component) of every route in the tables.
    fn routes() -> BTreeSet<(String, String, &'static str)> {
        let mut out = BTreeSet::new();
        for d in crate::routes::ROUTES {
            out.insert((d.method.to_string(), d.path.to_string(), "gateway"));
        }
        for d in cairn_control_plane::admin::ROUTES {
            out.insert((d.method.to_string(), format!("{}{}", crate::routes::CONTROL_PREFIX, d.path), "control"));
        }
        for (m, p, _) in cairn_derive::http_routes::ROUTES {
            out.insert((m.to_string(), p.to_string(), "derive"));
        }
        for (m, p) in cairn_core::path_template::HOST_ROUTES {
            out.insert((m.to_string(), p.to_string(), "host"));
        }
        out
    }

    /// (METHOD, path, component) of every operation in the document.
    fn operations(doc: &Value) -> BTreeSet<(String, String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let component = item["x-cairn-component"].as_str().unwrap_or_else(|| panic!("{path}: x-cairn-component"));
            for m in METHODS {
                if item.get(*m).is_some() {
                    out.insert((m.to_uppercase(), path.clone(), component.to_string()));
                }
            }
        }
        out
    }

    /// Follows a local `$ref`.
    fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let target = doc.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling $ref {r}"));
                resolve(doc, target)
            }
            None => v,
        }
    }

    #[test]
    fn every_route_has_an_operation_and_every_operation_a_route() {
        let doc = doc();
        let ops = operations(&doc);
        let documented: BTreeSet<(String, String, &str)> = ops
            .iter()
            .map(|(m, p, c)| {
                let c = match c.as_str() {
                    "gateway" => "gateway",
                    "control" => "control",
                    "derive" => "derive",
                    "host" => "host",
                    other => panic!("{m} {p}: unknown x-cairn-component {other}"),
                };
                (m.clone(), p.clone(), c)
            })
            .collect();
        let routes = routes();
        let missing: Vec<_> = routes.difference(&documented).collect();
        assert!(missing.is_empty(), "routes without an operation in docs/openapi.yaml: {missing:?}");
        let stray: Vec<_> = documented.difference(&routes).collect();
        assert!(stray.is_empty(), "operations in docs/openapi.yaml that no route table serves: {stray:?}");
    }

    #[test]
    fn every_operation_has_schemas_and_error_envelopes() {
        let doc = doc();
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..4]), Some("3.1."));
        let envelope = "#/components/schemas/ErrorEnvelope";
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                let Some(op) = item.get(*m) else { continue };
                let at = format!("{} {path}", m.to_uppercase());
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{at}: operationId"));
                assert!(ids.insert(id.to_string()), "{at}: operationId {id} used twice");
                assert!(op["security"].is_array(), "{at}: security (an empty list for none)");
                // Path parameters: exactly the template's, each described.
                let want: BTreeSet<&str> = cairn_core::path_template::template_params(path).into_iter().collect();
                let params: Vec<&Value> = item["parameters"]
                    .as_array()
                    .into_iter()
                    .chain(op["parameters"].as_array())
                    .flatten()
                    .map(|p| resolve(&doc, p))
                    .collect();
                let have: BTreeSet<&str> =
                    params.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect();
                assert_eq!(want, have, "{at}: path parameters");
                for p in &params {
                    assert!(p["schema"].is_object(), "{at}: parameter {} has no schema", p["name"]);
                }
                if matches!(*m, "post" | "put" | "patch") {
                    let body = resolve(&doc, &op["requestBody"]);
                    assert!(
                        body["content"]["application/json"]["schema"].is_object(),
                        "{at}: requestBody with an application/json schema"
                    );
                }
                let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{at}: responses"));
                let ok = resolve(&doc, &responses["200"]);
                let content = ok["content"].as_object().unwrap_or_else(|| panic!("{at}: 200 content"));
                assert!(content.values().all(|c| c["schema"].is_object()), "{at}: 200 schema");
                // Errors are the envelope; only a route that serves no JSON
                // (the console's page and files) may answer plain text.
                let json_route = content.contains_key("application/json");
                let mut errors = 0;
                for (status, r) in responses {
                    if !(status.starts_with('4') || status.starts_with('5')) {
                        continue;
                    }
                    errors += 1;
                    let r = resolve(&doc, r);
                    let schema = &r["content"]["application/json"]["schema"];
                    let text_ok = !json_route && r["content"]["text/plain"]["schema"].is_object();
                    assert!(schema["$ref"] == envelope || text_ok, "{at}: {status} is not the error envelope");
                }
                assert!(errors >= 2, "{at}: list the 4xx/5xx it answers with");
                assert!(responses.contains_key("500"), "{at}: 500");
            }
        }
    }

    /// The `$ref`s all resolve, and the security schemes the operations
    /// name exist.
    #[test]
    fn references_resolve() {
        let doc = doc();
        fn walk(doc: &Value, v: &Value) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        assert!(doc.pointer(r.trim_start_matches('#')).is_some(), "dangling $ref {r}");
                    }
                    m.values().for_each(|x| walk(doc, x));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(doc, x)),
                _ => {}
            }
        }
        walk(&doc, &doc);
        let schemes = doc["components"]["securitySchemes"].as_object().expect("securitySchemes");
        for item in doc["paths"].as_object().unwrap().values() {
            for m in METHODS {
                for req in item.get(*m).and_then(|op| op["security"].as_array()).into_iter().flatten() {
                    for name in req.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(name), "unknown security scheme {name}");
                    }
                }
            }
        }
    }
}

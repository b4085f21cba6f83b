//! Route templates as the OpenAPI document writes them: `/v1/x/{id}/y`,
//! where `{name}` stands for one non-empty path segment. The gateway's,
//! the control plane's and derivation's route tables are lists of these,
//! matched here, so the tables the servers route by are the lists the
//! OpenAPI test checks against the document.

/// The routes the `cairn` host answers itself, ahead of any component
/// (`runtime-host/src/http_server.rs` dispatches by this list): its
/// metrics and the operator console's page and files. Listed here, beside
/// the matcher the component tables use, so the OpenAPI test sees them with
/// the others.
pub const HOST_ROUTES: &[(&str, &str)] = &[("GET", "/metrics"), ("GET", "/console"), ("GET", "/console/{file}")];

/// The parameters of `path` when it fits `template`, percent-decoded (a
/// segment that does not decode is kept as sent); `None` when it does not
/// fit. Leading and trailing slashes are ignored on both sides, and a
/// decoded `%2F` stays inside its segment.
pub fn match_path_template(template: &str, path: &str) -> Option<Vec<String>> {
    let (t, p) = (template.trim_matches('/'), path.trim_matches('/'));
    let mut params = Vec::new();
    let mut ts = t.split('/');
    let mut ps = p.split('/');
    loop {
        match (ts.next(), ps.next()) {
            (None, None) => return Some(params),
            (Some(want), Some(got)) if is_param(want) => {
                if got.is_empty() {
                    return None;
                }
                params.push(crate::encoding::decode_uri_component(got).unwrap_or_else(|| got.to_string()));
            }
            (Some(want), Some(got)) if want == got => {}
            _ => return None,
        }
    }
}

fn is_param(segment: &str) -> bool {
    segment.len() > 2 && segment.starts_with('{') && segment.ends_with('}')
}

/// The parameter names of a template, in order.
pub fn template_params(template: &str) -> Vec<&str> {
    template.split('/').filter(|s| is_param(s)).map(|s| &s[1..s.len() - 1]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_segments() {
        assert_eq!(match_path_template("/a/{id}/b", "/a/x%2Fy/b/"), Some(vec!["x/y".to_string()]));
        assert_eq!(match_path_template("tenants/{t}", "tenants/acme"), Some(vec!["acme".to_string()]));
        assert_eq!(match_path_template("/a/{id}/b", "/a//b"), None);
        assert_eq!(match_path_template("/a/{id}/b", "/a/x/y/b"), None);
        assert_eq!(match_path_template("/a/b", "/a/b/c"), None);
        assert_eq!(match_path_template("/a/b", "/a"), None);
        assert_eq!(match_path_template("/health", "/health"), Some(vec![]));
        assert_eq!(template_params("/d/tenant/{tenant_id}/x/{id}"), ["tenant_id", "id"]);
    }
}

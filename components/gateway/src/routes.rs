//! The HTTP route table: which (method, path) goes to which operation.
//! Kept in one place so the route list in the README, `spin.toml`'s `/...`
//! trigger and the host's logs all describe the same set.

/// A recognised route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Write,
    Find,
    Recall,
    RecallText,
    CreateSession,
    WriteEvent,
    ListSessionEvents {
        session_id: String,
    },
    PackExport,
    PackImport,
    ListCommits,
    VerifyCommits,
    RulesEvaluate,
    RulesState,
    RuleFeedback,
    ToolsSelect,
    ToolsDecision,
    ToolsFeedback,
    PlanningContext,
    /// `/v1/admin/control/<path>`, any method (the control component routes it).
    ControlAdmin {
        path: String,
    },
}

impl Route {
    /// Routes that require the admin token.
    pub fn needs_admin(&self) -> bool {
        matches!(self, Route::PackExport | Route::PackImport | Route::ControlAdmin { .. })
    }
}

/// The outcome of matching a request line.
#[derive(Debug, PartialEq, Eq)]
pub enum Match {
    Found(Route),
    /// The path exists but not with this method; carries the allowed one.
    WrongMethod(&'static str),
    NotFound,
}

/// Matches `method` and `path` (without the query string).
pub fn match_route(method: &str, path: &str) -> Match {
    let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    if let Some(rest) = path.strip_prefix("/v1/admin/control/").filter(|r| !r.is_empty()) {
        return Match::Found(Route::ControlAdmin { path: rest.to_string() });
    }
    let (want, route) = match path {
        "/health" => ("GET", Route::Health),
        "/v1/memory/write" => ("POST", Route::Write),
        "/v1/memory/find" => ("POST", Route::Find),
        "/v1/memory/recall" => ("POST", Route::Recall),
        "/v1/memory/recall_text" => ("POST", Route::RecallText),
        "/v1/memory/sessions" => ("POST", Route::CreateSession),
        "/v1/memory/events" => ("POST", Route::WriteEvent),
        "/v1/memory/packs/export" => ("POST", Route::PackExport),
        "/v1/memory/packs/import" => ("POST", Route::PackImport),
        "/v1/memory/commits" => ("GET", Route::ListCommits),
        "/v1/memory/commits/verify" => ("POST", Route::VerifyCommits),
        "/v1/memory/rules/evaluate" => ("POST", Route::RulesEvaluate),
        "/v1/memory/rules/state" => ("POST", Route::RulesState),
        "/v1/memory/feedback" => ("POST", Route::RuleFeedback),
        "/v1/memory/tools/select" => ("POST", Route::ToolsSelect),
        "/v1/memory/tools/decision" => ("POST", Route::ToolsDecision),
        "/v1/memory/tools/feedback" => ("POST", Route::ToolsFeedback),
        "/v1/memory/planning/context" => ("POST", Route::PlanningContext),
        p => match p.strip_prefix("/v1/memory/sessions/").and_then(|r| r.strip_suffix("/events")) {
            Some(raw) if !raw.is_empty() && !raw.contains('/') => {
                let session_id = cairn_core::encoding::decode_uri_component(raw).unwrap_or_else(|| raw.to_string());
                ("GET", Route::ListSessionEvents { session_id })
            }
            _ => return Match::NotFound,
        },
    };
    if method == want || (method == "HEAD" && want == "GET") { Match::Found(route) } else { Match::WrongMethod(want) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_routes() {
        assert_eq!(match_route("POST", "/v1/memory/write"), Match::Found(Route::Write));
        assert_eq!(match_route("POST", "/v1/memory/write/"), Match::Found(Route::Write));
        assert_eq!(match_route("GET", "/v1/memory/write"), Match::WrongMethod("POST"));
        assert_eq!(
            match_route("GET", "/v1/memory/sessions/a%2Fb/events"),
            Match::Found(Route::ListSessionEvents { session_id: "a/b".into() })
        );
        assert_eq!(match_route("GET", "/v1/memory/sessions//events"), Match::NotFound);
        assert_eq!(match_route("GET", "/nope"), Match::NotFound);
        assert!(Route::PackImport.needs_admin());
        assert_eq!(match_route("POST", "/v1/memory/tools/select"), Match::Found(Route::ToolsSelect));
        assert_eq!(match_route("GET", "/v1/memory/rules/evaluate"), Match::WrongMethod("POST"));
        assert_eq!(
            match_route("DELETE", "/v1/admin/control/tenant-quotas/acme"),
            Match::Found(Route::ControlAdmin { path: "tenant-quotas/acme".into() })
        );
        assert!(Route::ControlAdmin { path: "tenants".into() }.needs_admin());
    }
}

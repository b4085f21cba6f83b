//! The HTTP route table: which (method, path) goes to which operation.
//! [`ROUTES`] is the one list: the matcher walks it, and the OpenAPI test
//! (`crate::openapi`) checks that every entry has an operation in
//! `docs/openapi.yaml` and that the document names no route missing here.

/// A recognised route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    OpenApi,
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

/// One entry of the table: method, path template (`{name}` is one
/// non-empty segment, percent-decoded) and the route it makes.
pub struct RouteDef {
    pub method: &'static str,
    pub path: &'static str,
    make: fn(Vec<String>) -> Route,
}

/// The gateway's own routes. `/v1/admin/control/*` is forwarded whole to
/// the control component ([`CONTROL_PREFIX`]), whose table is
/// `cairn_control_plane::admin::ROUTES`.
pub const ROUTES: &[RouteDef] = &[
    RouteDef { method: "GET", path: "/health", make: |_| Route::Health },
    RouteDef { method: "GET", path: "/openapi.json", make: |_| Route::OpenApi },
    RouteDef { method: "POST", path: "/v1/memory/write", make: |_| Route::Write },
    RouteDef { method: "POST", path: "/v1/memory/find", make: |_| Route::Find },
    RouteDef { method: "POST", path: "/v1/memory/recall", make: |_| Route::Recall },
    RouteDef { method: "POST", path: "/v1/memory/recall_text", make: |_| Route::RecallText },
    RouteDef { method: "POST", path: "/v1/memory/sessions", make: |_| Route::CreateSession },
    RouteDef { method: "POST", path: "/v1/memory/events", make: |_| Route::WriteEvent },
    RouteDef {
        method: "GET",
        path: "/v1/memory/sessions/{session_id}/events",
        make: |mut p| Route::ListSessionEvents { session_id: p.remove(0) },
    },
    RouteDef { method: "POST", path: "/v1/memory/packs/export", make: |_| Route::PackExport },
    RouteDef { method: "POST", path: "/v1/memory/packs/import", make: |_| Route::PackImport },
    RouteDef { method: "GET", path: "/v1/memory/commits", make: |_| Route::ListCommits },
    RouteDef { method: "POST", path: "/v1/memory/commits/verify", make: |_| Route::VerifyCommits },
    RouteDef { method: "POST", path: "/v1/memory/rules/evaluate", make: |_| Route::RulesEvaluate },
    RouteDef { method: "POST", path: "/v1/memory/rules/state", make: |_| Route::RulesState },
    RouteDef { method: "POST", path: "/v1/memory/feedback", make: |_| Route::RuleFeedback },
    RouteDef { method: "POST", path: "/v1/memory/tools/select", make: |_| Route::ToolsSelect },
    RouteDef { method: "POST", path: "/v1/memory/tools/decision", make: |_| Route::ToolsDecision },
    RouteDef { method: "POST", path: "/v1/memory/tools/feedback", make: |_| Route::ToolsFeedback },
    RouteDef { method: "POST", path: "/v1/memory/planning/context", make: |_| Route::PlanningContext },
];

/// Everything below this prefix goes to the control component.
pub const CONTROL_PREFIX: &str = "/v1/admin/control/";

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
    if let Some(rest) = path.strip_prefix(CONTROL_PREFIX).filter(|r| !r.is_empty()) {
        return Match::Found(Route::ControlAdmin { path: rest.to_string() });
    }
    let mut allowed = None;
    for def in ROUTES {
        let Some(params) = cairn_core::path_template::match_path_template(def.path, path) else { continue };
        if method == def.method || (method == "HEAD" && def.method == "GET") {
            return Match::Found((def.make)(params));
        }
        allowed.get_or_insert(def.method);
    }
    allowed.map_or(Match::NotFound, Match::WrongMethod)
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
        assert_eq!(match_route("POST", "/v1/memory/sessions/s1/events"), Match::WrongMethod("GET"));
        assert_eq!(match_route("GET", "/v1/memory/sessions//events"), Match::NotFound);
        assert_eq!(match_route("GET", "/v1/memory/sessions/a/b/events"), Match::NotFound);
        assert_eq!(match_route("GET", "/nope"), Match::NotFound);
        assert_eq!(match_route("HEAD", "/openapi.json"), Match::Found(Route::OpenApi));
        assert!(Route::PackImport.needs_admin());
        assert_eq!(match_route("POST", "/v1/memory/tools/select"), Match::Found(Route::ToolsSelect));
        assert_eq!(match_route("GET", "/v1/memory/rules/evaluate"), Match::WrongMethod("POST"));
        assert_eq!(
            match_route("DELETE", "/v1/admin/control/tenant-quotas/acme"),
            Match::Found(Route::ControlAdmin { path: "tenant-quotas/acme".into() })
        );
        assert!(Route::ControlAdmin { path: "tenants".into() }.needs_admin());
    }

    /// Every template is reachable: its own path (parameters filled in)
    /// matches it with its method.
    #[test]
    fn every_entry_matches_itself() {
        for def in ROUTES {
            let path = def.path.replace("{session_id}", "s1");
            assert!(matches!(match_route(def.method, &path), Match::Found(_)), "{} {}", def.method, def.path);
        }
    }
}

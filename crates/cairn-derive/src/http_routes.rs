//! The derive component's HTTP routes (all behind the admin token;
//! `spin.toml` sends `/v1/admin/derive/...`, `/v1/admin/control/outbox/...`,
//! the consistency check and the health gate here). [`ROUTES`] is the one
//! list: the component routes by it and the OpenAPI test checks it against
//! `docs/openapi.yaml`.

/// What a request asks the derive component for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeriveRoute {
    /// The outbox backlog (two paths).
    OutboxStatus,
    Tick,
    Rebuild,
    OutboxReplay,
    ConsistencyCheck,
    HealthGate,
    /// The weekly governance schedule (SpinKube's CronJob calls it).
    GovernanceSchedule,
}

/// (method, path, route).
pub const ROUTES: &[(&str, &str, DeriveRoute)] = &[
    ("GET", "/v1/admin/derive/status", DeriveRoute::OutboxStatus),
    ("POST", "/v1/admin/derive/tick", DeriveRoute::Tick),
    ("POST", "/v1/admin/derive/rebuild", DeriveRoute::Rebuild),
    ("GET", "/v1/admin/control/outbox", DeriveRoute::OutboxStatus),
    ("POST", "/v1/admin/control/outbox/replay", DeriveRoute::OutboxReplay),
    ("POST", "/v1/admin/control/consistency-check", DeriveRoute::ConsistencyCheck),
    ("POST", "/v1/admin/control/health-gate", DeriveRoute::HealthGate),
    ("POST", "/v1/admin/derive/governance-schedule", DeriveRoute::GovernanceSchedule),
];

/// The route for `method` and `path`: `Ok`, or `Err` with the methods the
/// path takes (empty: no such path).
pub fn match_route(method: &str, path: &str) -> Result<DeriveRoute, Vec<&'static str>> {
    let mut allowed = Vec::new();
    for (m, template, route) in ROUTES {
        if cairn_core::path_template::match_path_template(template, path).is_some() {
            if *m == method {
                return Ok(*route);
            }
            allowed.push(*m);
        }
    }
    Err(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(match_route("POST", "/v1/admin/derive/tick/"), Ok(DeriveRoute::Tick));
        assert_eq!(match_route("GET", "/v1/admin/control/outbox"), Ok(DeriveRoute::OutboxStatus));
        assert_eq!(match_route("GET", "/v1/admin/derive/tick"), Err(vec!["POST"]));
        assert_eq!(match_route("GET", "/v1/admin/derive/nope"), Err(vec![]));
    }
}

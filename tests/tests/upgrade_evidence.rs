//! Upgrades that demand evidence, over HTTP with the shipped tiers
//! (config/tiers.yaml): starter → growth is refused with a 409 naming the
//! deployment's weekly report and the tenant's replay drill, and succeeds
//! once both are registered; growth → enterprise then names its own three.

use cairn_e2e::{Options, Server};
use serde_json::{Value, json};

const TOKEN: &str = "upgrade-evidence-token";

fn post(s: &Server, path: &str, body: Value) -> cairn_e2e::Resp {
    s.post_with(&format!("/v1/admin/control/{path}"), &body, &[("x-admin-token", TOKEN)])
}

fn missing(r: &cairn_e2e::Resp) -> Vec<(String, String)> {
    r.body["details"]["missing"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.text))
        .iter()
        .map(|m| (m["kind"].as_str().unwrap().to_string(), m["covers"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn an_upgrade_is_refused_then_allowed_once_its_evidence_is_registered() {
    let s = Server::start_with(Options { admin_token: Some(TOKEN.into()), ..Default::default() });
    assert_eq!(post(&s, "tenants/acme/provision", json!({"tier": "starter"})).status, 200);

    let r = post(&s, "tenants/acme/upgrade", json!({"tier": "growth"}));
    assert_eq!((r.status, r.body["error"].as_str()), (409, Some("upgrade_evidence_missing")), "{}", r.text);
    assert_eq!(
        missing(&r),
        [("weekly_report".to_string(), "deployment".to_string()), ("replay_drill".into(), "tenant".into())]
    );
    assert_eq!(
        (r.body["details"]["from"].as_str(), r.body["details"]["to"].as_str()),
        (Some("starter"), Some("growth"))
    );

    // Another tenant's drill does not count.
    let drill = |tenant: &str| json!({"kind": "replay_drill", "tenant_id": tenant, "content": "{\"ok\": true}"});
    assert_eq!(post(&s, "evidence", drill("someone-else")).status, 200);
    assert_eq!(post(&s, "evidence", json!({"kind": "weekly_report", "content": "{\"ok\": true}"})).status, 200);
    let r = post(&s, "tenants/acme/upgrade", json!({"tier": "growth"}));
    assert_eq!(missing(&r), [("replay_drill".to_string(), "tenant".to_string())], "{}", r.text);
    let st = s.get_with("/v1/admin/control/tenants/acme/status", &[("x-admin-token", TOKEN)]);
    assert_eq!(st.body["tier"], "starter", "a refused upgrade changes nothing");

    assert_eq!(post(&s, "evidence", drill("acme")).status, 200);
    let r = post(&s, "tenants/acme/upgrade", json!({"tier": "growth"}));
    assert_eq!((r.status, r.body["tier"].as_str()), (200, Some("growth")), "{}", r.text);

    let r = post(&s, "tenants/acme/upgrade", json!({"tier": "enterprise"}));
    assert_eq!(r.status, 409, "{}", r.text);
    let kinds: Vec<String> = missing(&r).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["isolation_plan", "migration_runbook", "rollback_rehearsal"]);
}

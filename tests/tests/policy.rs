//! Memory -> Policy over HTTP: rules written through /write, their
//! lifecycle (rules/state), evaluation, tool selection with decisions,
//! feedback (rule and tool) and the chain staying verifiable. Ports the
//! reference's §10.1 #2 and #9–#13 and the §10.2 demo flow.

use cairn_e2e::Server;
use serde_json::{Value, json};

fn ok(s: &Server, path: &str, body: Value) -> Value {
    let r = s.post(path, &body);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body
}

fn err(s: &Server, path: &str, body: Value, status: u16, code: &str) -> Value {
    let r = s.post(path, &body);
    assert_eq!((r.status, r.body["error"].as_str()), (status, Some(code)), "{path}: {}", r.text);
    r.body
}

/// Writes one shared rule node and returns its id.
fn write_rule(s: &Server, scope: &str, tenant: Option<&str>, client_id: &str, slots: Value) -> String {
    let mut body = json!({
        "scope": scope, "input_text": format!("rule {client_id}"), "memory_lane": "shared",
        "nodes": [{"client_id": client_id, "type": "rule", "text_summary": format!("rule {client_id}"), "slots": slots}],
    });
    if let Some(t) = tenant {
        body["tenant_id"] = json!(t);
    }
    ok(s, "/v1/memory/write", body)["nodes"][0]["id"].as_str().unwrap().to_string()
}

fn set_state(s: &Server, scope: &str, tenant: Option<&str>, id: &str, state: &str) -> Value {
    let mut body = json!({"scope": scope, "rule_node_id": id, "state": state, "input_text": format!("{state} {id}")});
    if let Some(t) = tenant {
        body["tenant_id"] = json!(t);
    }
    ok(s, "/v1/memory/rules/state", body)
}

fn verify(s: &Server, scope: &str) {
    let v = ok(s, "/v1/memory/commits/verify", json!({"scope": scope}));
    assert_eq!(v["ok"], true, "{v}");
}

/// Reference §10.2 killer demo: tools/select follows candidate order until
/// an active rule prefers curl and denies bash; the explanation names it.
#[test]
fn demo_flow_rule_switches_the_selected_tool() {
    let s = Server::start();
    let scope = "demo";
    let ctx = json!({"run": {"id": "run-1"}});
    let before = ok(
        &s,
        "/v1/memory/tools/select",
        json!({"scope": scope, "context": ctx, "candidates": ["bash", "curl"], "strict": true, "run_id": "run-1"}),
    );
    assert_eq!(before["selection"]["selected"], "bash");
    assert_eq!(before["decision"]["run_id"], "run-1", "§10.1 #2: run_id echoed");
    assert_eq!(before["rules"]["matched"], 0);

    let rule = write_rule(
        &s,
        scope,
        None,
        "prefer-curl",
        json!({"if": {"run.id": "run-1"}, "then": {"tool": {"prefer": ["curl"], "deny": ["bash"]}},
               "rule_meta": {"priority": 50, "weight": 2}}),
    );
    // A draft rule does nothing.
    let draft =
        ok(&s, "/v1/memory/tools/select", json!({"scope": scope, "context": ctx, "candidates": ["bash", "curl"]}));
    assert_eq!(draft["selection"]["selected"], "bash");

    let state = set_state(&s, scope, None, &rule, "active");
    assert!(state["commit_hash"].as_str().unwrap().len() == 64);
    let after =
        ok(&s, "/v1/memory/tools/select", json!({"scope": scope, "context": ctx, "candidates": ["bash", "curl"]}));
    let sel = &after["selection"];
    assert_eq!(sel["selected"], "curl");
    assert_eq!(sel["denied"], json!([{"name": "bash", "reason": "deny_list"}]));
    assert_eq!(after["rules"]["applied"]["sources"][0]["rule_node_id"], rule.as_str());
    assert_eq!(after["rules"]["applied"]["tool_explain"]["winners"]["deny_by_tool"]["bash"], rule.as_str());
    assert_eq!(after["decision"]["source_rule_ids"], json!([rule]));
    assert_eq!(after["decision"]["policy_sha256"].as_str().unwrap().len(), 64);

    // The decision is stored and readable.
    let d =
        ok(&s, "/v1/memory/tools/decision", json!({"scope": scope, "decision_id": after["decision"]["decision_id"]}));
    assert_eq!(d["decision"]["selected_tool"], "curl");
    assert_eq!(d["decision"]["candidates"], json!(["bash", "curl"]));
    err(
        &s,
        "/v1/memory/tools/decision",
        json!({"scope": scope, "decision_id": "00000000-0000-4000-8000-000000000000"}),
        404,
        "decision_not_found_in_scope",
    );

    // Evaluate shows the match with its rank.
    let e = ok(&s, "/v1/memory/rules/evaluate", json!({"scope": scope, "context": ctx}));
    assert_eq!(e["active"][0]["rule_node_id"], rule.as_str());
    assert_eq!(e["active"][0]["rank"]["score"], 50_000 + 1);
    assert_eq!(e["active"][0]["match_detail"]["condition_paths"], json!(["run.id"]));
    assert_eq!(e["applied"]["policy"]["tool"], json!({"deny": ["bash"], "prefer": ["curl"]}));
    verify(&s, scope);
}

#[test]
fn shadow_rules_never_change_the_applied_policy() {
    let s = Server::start();
    let scope = "shadow";
    let rule = write_rule(&s, scope, None, "shadow-deny", json!({"if": {}, "then": {"tool": {"deny": ["psql"]}}}));
    set_state(&s, scope, None, &rule, "shadow");
    let sel = ok(
        &s,
        "/v1/memory/tools/select",
        json!({"scope": scope, "context": {}, "candidates": ["psql", "curl"], "include_shadow": true}),
    );
    assert_eq!(sel["selection"]["selected"], "psql");
    assert_eq!(sel["rules"]["shadow_selection"]["selected"], "curl");
    let e = ok(&s, "/v1/memory/rules/evaluate", json!({"scope": scope, "context": {}}));
    assert_eq!(e["applied"]["policy"], json!({"tool": {}}));
    assert_eq!(e["applied"]["shadow_policy"]["tool"]["deny"], json!(["psql"]));
    assert_eq!(e["shadow"][0]["rule_node_id"], rule.as_str());
    let no_shadow =
        ok(&s, "/v1/memory/rules/evaluate", json!({"scope": scope, "context": {}, "include_shadow": false}));
    assert_eq!(no_shadow["matched"], 0);
    assert!(no_shadow["applied"].get("shadow_policy").is_none());
    // Disabled rules are out of everything.
    set_state(&s, scope, None, &rule, "disabled");
    assert_eq!(ok(&s, "/v1/memory/rules/evaluate", json!({"scope": scope, "context": {}}))["considered"], 0);
    verify(&s, scope);
}

#[test]
fn tenants_never_see_each_others_rules() {
    let s = Server::start();
    let a = write_rule(
        &s,
        "shared-scope",
        Some("tenant-a"),
        "r",
        json!({"if": {"intent": "json"}, "then": {"output": {"format": "json", "strict": true}}}),
    );
    let b = write_rule(
        &s,
        "shared-scope",
        Some("tenant-b"),
        "r",
        json!({"if": {"intent": "json"}, "then": {"output": {"format": "text", "strict": false}}}),
    );
    assert_ne!(a, b);
    set_state(&s, "shared-scope", Some("tenant-a"), &a, "active");
    set_state(&s, "shared-scope", Some("tenant-b"), &b, "active");
    for (tenant, mine, theirs, format) in [("tenant-a", &a, &b, "json"), ("tenant-b", &b, &a, "text")] {
        let e = ok(
            &s,
            "/v1/memory/rules/evaluate",
            json!({"tenant_id": tenant, "scope": "shared-scope", "context": {"intent": "json"}, "include_shadow": false}),
        );
        let sources: Vec<&str> =
            e["applied"]["sources"].as_array().unwrap().iter().map(|x| x["rule_node_id"].as_str().unwrap()).collect();
        assert_eq!(sources, vec![mine.as_str()]);
        assert!(!sources.contains(&theirs.as_str()));
        assert_eq!(e["applied"]["policy"]["output"]["format"], format);
        assert_eq!(e["tenant_id"], tenant);
    }
    // Another tenant's rule id is not found in this tenant's scope.
    let r = err(
        &s,
        "/v1/memory/rules/state",
        json!({"tenant_id": "tenant-a", "scope": "shared-scope", "rule_node_id": b, "state": "disabled", "input_text": "x"}),
        400,
        "rule_not_found_in_scope",
    );
    assert_eq!(r["details"]["tenant_id"], "tenant-a");
}

#[test]
fn malformed_rules_are_refused_with_their_codes() {
    let s = Server::start();
    let scope = "bad-rules";
    for (cid, slots, code) in [
        ("bad-if", json!({"if": ["intent"], "then": {}}), "invalid_rule_if_json"),
        ("bad-exc", json!({"if": {}, "exceptions": {"user": "x"}, "then": {}}), "invalid_rule_exceptions_json"),
        ("bad-then", json!({"if": {}, "then": {"tools": {"allow": ["x"]}}}), "invalid_rule_then_json"),
        ("bad-then-type", json!({"if": {}, "then": {"tool": {"allow": "x"}}}), "invalid_rule_then_json"),
    ] {
        let id = write_rule(&s, scope, None, cid, slots);
        let body = json!({"scope": scope, "rule_node_id": id, "state": "active", "input_text": "promote"});
        let r = err(&s, "/v1/memory/rules/state", body.clone(), 400, code);
        if code == "invalid_rule_then_json" {
            assert!(r["details"]["message"].is_string(), "{r}");
        }
        // Demotions are never validated.
        let mut demote = body;
        demote["state"] = json!("disabled");
        ok(&s, "/v1/memory/rules/state", demote);
    }
    // Scope targets: refused on write (the reference answered 500).
    let w = s.post(
        "/v1/memory/write",
        &json!({"scope": scope, "input_text": "agent rule", "memory_lane": "shared",
                "nodes": [{"client_id": "agent-rule", "type": "rule", "slots": {"rule_scope": "agent"}}]}),
    );
    assert_eq!((w.status, w.body["error"].as_str()), (400, Some("invalid_rule_scope_target")), "{}", w.text);
    // Private rules need an owner.
    let w = s.post(
        "/v1/memory/write",
        &json!({"scope": scope, "input_text": "private rule", "nodes": [{"client_id": "p", "type": "rule"}]}),
    );
    assert_eq!((w.status, w.body["error"].as_str()), (400, Some("invalid_private_rule_owner")), "{}", w.text);
    // Unknown rule, bad state, bad uuid.
    err(
        &s,
        "/v1/memory/rules/state",
        json!({"scope": scope, "rule_node_id": "00000000-0000-4000-8000-000000000000", "state": "active", "input_text": "x"}),
        400,
        "rule_not_found_in_scope",
    );
    err(
        &s,
        "/v1/memory/rules/state",
        json!({"scope": scope, "rule_node_id": "00000000-0000-4000-8000-000000000000", "state": "live", "input_text": "x"}),
        400,
        "invalid_request",
    );
    err(&s, "/v1/memory/rules/evaluate", json!({"scope": scope, "context": {}, "limit": 201}), 400, "invalid_request");
    err(&s, "/v1/memory/rules/evaluate", json!({"scope": scope}), 400, "invalid_request");
    verify(&s, scope);
}

/// Reference §10.1 #9 (conditions), #10 (merge), #11–#12 (selection) and
/// #13 (effective tool policy), end to end.
#[test]
fn contract_smoke_rules_and_tools() {
    let s = Server::start();
    let scope = "smoke";
    let json_rule = write_rule(
        &s,
        scope,
        None,
        "json",
        json!({"if": {"intent": "json"}, "then": {"output": {"format": "json", "strict": true}, "tool": {"allow": ["psql"]}}}),
    );
    let psql_rule = write_rule(
        &s,
        scope,
        None,
        "psql",
        json!({"if": {"tool.name": "psql"}, "then": {"tool": {"deny": ["rm"], "allow": ["psql"]}}}),
    );
    let in_rule = write_rule(
        &s,
        scope,
        None,
        "in",
        json!({"if": {"intent": {"$in": ["json", "yaml"]}}, "exceptions": [{"user": "lucio"}], "then": {"tool": {"prefer": ["psql"]}}}),
    );
    let re_rule = write_rule(
        &s,
        scope,
        None,
        "re",
        json!({"if": {"query": {"$regex": "(a+)+$"}}, "then": {"tool": {"deny": ["curl"]}}}),
    );
    for id in [&json_rule, &psql_rule, &in_rule, &re_rule] {
        set_state(&s, scope, None, id, "active");
    }
    let matched = |ctx: Value| -> Vec<String> {
        let e = ok(&s, "/v1/memory/rules/evaluate", json!({"scope": scope, "context": ctx}));
        let mut ids: Vec<String> =
            e["active"].as_array().unwrap().iter().map(|m| m["rule_node_id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        ids
    };
    let mut want = vec![json_rule.clone(), psql_rule.clone(), in_rule.clone()];
    want.sort();
    assert_eq!(matched(json!({"intent": "json", "tool": {"name": "psql"}, "query": "aaaa"})), want);
    assert_eq!(matched(json!({"intent": "text"})), Vec::<String>::new());
    let mut without_in = vec![json_rule.clone()];
    without_in.sort();
    assert_eq!(matched(json!({"intent": "json", "user": "lucio"})), without_in);

    let e = ok(
        &s,
        "/v1/memory/rules/evaluate",
        json!({"scope": scope, "context": {"intent": "json", "tool": {"name": "psql"}}}),
    );
    let policy = &e["applied"]["policy"];
    assert_eq!(policy["output"], json!({"format": "json", "strict": true}));
    assert_eq!(policy["tool"]["allow"], json!(["psql"]));
    assert_eq!(policy["tool"]["deny"], json!(["rm"]));
    assert_eq!(policy["tool"]["prefer"], json!(["psql"]));

    let strict = ok(
        &s,
        "/v1/memory/tools/select",
        json!({"scope": scope, "context": {"intent": "json", "tool": {"name": "psql"}}, "candidates": ["rm", "curl", "psql", "psql"]}),
    );
    assert_eq!(strict["candidates"], json!(["rm", "curl", "psql"]));
    assert_eq!(strict["selection"]["allowed"], json!(["psql"]));
    assert_eq!(strict["selection"]["selected"], "psql");

    let none = err(
        &s,
        "/v1/memory/tools/select",
        json!({"scope": scope, "context": {"intent": "json"}, "candidates": ["curl"], "strict": true}),
        400,
        "no_tools_allowed",
    );
    assert_eq!(none["details"], json!({"candidates": 1, "allow": 1, "deny": 0}));
    let lenient = ok(
        &s,
        "/v1/memory/tools/select",
        json!({"scope": scope, "context": {"intent": "json"}, "candidates": ["curl"], "strict": false}),
    );
    assert_eq!(lenient["selection"]["fallback"]["reason"], "allowlist_filtered_all");
    assert_eq!(lenient["selection"]["selected"], "curl");
    err(
        &s,
        "/v1/memory/tools/select",
        json!({"scope": scope, "context": {}, "candidates": []}),
        400,
        "invalid_request",
    );
}

#[test]
fn feedback_links_decisions_and_counts_on_the_chain() {
    let s = Server::start();
    let scope = "feedback";
    let rule = write_rule(
        &s,
        scope,
        None,
        "prefer-curl",
        json!({"if": {}, "then": {"tool": {"prefer": ["curl"]}, "output": {"format": "text"}}}),
    );
    let other = write_rule(&s, scope, None, "format-only", json!({"if": {}, "then": {"output": {"strict": true}}}));
    set_state(&s, scope, None, &rule, "active");
    set_state(&s, scope, None, &other, "active");
    let ctx = json!({"run": {"id": "r9"}});
    let sel = ok(
        &s,
        "/v1/memory/tools/select",
        json!({"scope": scope, "context": ctx, "candidates": ["bash", "curl"], "run_id": "r9"}),
    );
    let decision = sel["decision"]["decision_id"].as_str().unwrap().to_string();

    // §10.1 #2: a decision id that is not a uuid.
    err(
        &s,
        "/v1/memory/tools/feedback",
        json!({"scope": scope, "context": ctx, "candidates": ["bash", "curl"], "selected_tool": "curl", "outcome": "positive", "decision_id": "not-a-uuid", "input_text": "fb"}),
        400,
        "invalid_request",
    );

    let base = json!({"scope": scope, "context": ctx, "candidates": ["bash", "curl"], "selected_tool": "curl", "outcome": "positive", "input_text": "worked"});
    let mut provided = base.clone();
    provided["decision_id"] = json!(decision);
    let fb = ok(&s, "/v1/memory/tools/feedback", provided.clone());
    assert_eq!(fb["decision_link_mode"], "provided");
    assert_eq!(fb["rule_node_ids"], json!([rule]), "target=tool attributes only tool rules");
    assert_eq!(fb["decision_policy_sha256"], sel["decision"]["policy_sha256"]);

    let mut wrong_tool = provided.clone();
    wrong_tool["selected_tool"] = json!("bash");
    err(&s, "/v1/memory/tools/feedback", wrong_tool, 400, "decision_selected_tool_mismatch");
    let mut wrong_cands = provided.clone();
    wrong_cands["candidates"] = json!(["curl"]);
    err(&s, "/v1/memory/tools/feedback", wrong_cands, 400, "decision_candidates_mismatch");
    let mut wrong_run = provided.clone();
    wrong_run["run_id"] = json!("other-run");
    err(&s, "/v1/memory/tools/feedback", wrong_run, 400, "decision_run_id_mismatch");
    let mut missing = provided.clone();
    missing["decision_id"] = json!("00000000-0000-4000-8000-000000000000");
    err(&s, "/v1/memory/tools/feedback", missing, 400, "decision_not_found_in_scope");

    let mut inferred = base.clone();
    inferred["run_id"] = json!("r9");
    let fb = ok(&s, "/v1/memory/tools/feedback", inferred);
    assert_eq!(
        (fb["decision_link_mode"].as_str(), fb["decision_id"].as_str()),
        (Some("inferred"), Some(decision.as_str()))
    );

    let mut fresh = base.clone();
    fresh["context"] = json!({"run": {"id": "never-selected"}});
    fresh["target"] = json!("all");
    fresh["outcome"] = json!("negative");
    let fb = ok(&s, "/v1/memory/tools/feedback", fresh);
    assert_eq!(fb["decision_link_mode"], "created_from_feedback");
    assert_eq!(fb["updated_rules"], 2);
    let d = ok(&s, "/v1/memory/tools/decision", json!({"scope": scope, "decision_id": fb["decision_id"]}));
    assert_eq!(d["decision"]["commit_id"], fb["commit_id"]);
    assert_eq!(d["decision"]["metadata"]["source"], "feedback_derived");

    // Rule feedback; counters show in the evaluation's stats and evidence.
    let rf = ok(
        &s,
        "/v1/memory/feedback",
        json!({"scope": scope, "rule_node_id": rule, "outcome": "positive", "run_id": "r9", "input_text": "good rule"}),
    );
    assert!(rf["feedback_id"].is_string() && rf["commit_hash"].is_string());
    err(
        &s,
        "/v1/memory/feedback",
        json!({"scope": scope, "rule_node_id": "00000000-0000-4000-8000-000000000000", "outcome": "positive", "input_text": "x"}),
        400,
        "rule_not_found_in_scope",
    );
    let e = ok(&s, "/v1/memory/rules/evaluate", json!({"scope": scope, "context": ctx}));
    let stats =
        e["active"].as_array().unwrap().iter().find(|m| m["rule_node_id"] == rule.as_str()).unwrap()["stats"].clone();
    assert_eq!(stats, json!({"positive": 3, "negative": 1}));

    // No attributable rule: a no-op answer, no commit.
    let none = ok(
        &s,
        "/v1/memory/tools/feedback",
        json!({"scope": "empty-scope", "context": {}, "candidates": ["a"], "selected_tool": "a", "outcome": "neutral", "input_text": "x"}),
    );
    assert_eq!((none["updated_rules"].as_i64(), none["commit_id"].is_null()), (Some(0), true));

    let commits = s.get(&format!("/v1/memory/commits?scope={scope}&limit=50"));
    let kinds: Vec<&str> =
        commits.body["commits"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    for k in ["rule_state_change", "tool_feedback", "rule_feedback"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    verify(&s, scope);
}

#[test]
fn lanes_follow_the_context_agent() {
    let s = Server::start();
    let scope = "lanes";
    let w = ok(
        &s,
        "/v1/memory/write",
        json!({"scope": scope, "input_text": "private rule", "memory_lane": "private", "owner_agent_id": "agent-1",
               "nodes": [{"client_id": "mine", "type": "rule", "slots": {"then": {"tool": {"deny": ["rm"]}}}},
                         {"client_id": "for-agent-2", "type": "rule", "memory_lane": "shared",
                          "slots": {"rule_scope": "agent", "target_agent_id": "agent-2", "then": {"tool": {"deny": ["curl"]}}}}]}),
    );
    for n in w["nodes"].as_array().unwrap() {
        set_state(&s, scope, None, n["id"].as_str().unwrap(), "active");
    }
    let eval = |ctx: Value| ok(&s, "/v1/memory/rules/evaluate", json!({"scope": scope, "context": ctx}));
    let one = eval(json!({"agent": {"id": "agent-1"}}));
    assert_eq!(one["applied"]["policy"]["tool"]["deny"], json!(["rm"]));
    assert_eq!(one["agent_visibility_summary"]["rule_scope"]["filtered_by_scope"], 1);
    assert_eq!(one["agent_visibility_summary"]["lane"]["reason"], "enforced_agent_only");
    let two = eval(json!({"agent_id": "agent-2"}));
    assert_eq!(two["applied"]["policy"]["tool"]["deny"], json!(["curl"]));
    assert_eq!(two["agent_visibility_summary"]["rule_scope"]["filtered_by_lane"], 1);
    let nobody = eval(json!({}));
    assert_eq!(nobody["agent_visibility_summary"]["lane"]["applied"], false);
    assert_eq!(nobody["agent_visibility_summary"]["lane"]["reason"], "missing_agent_context");
}

#[test]
fn recall_carries_rules_and_planning_context_combines_all() {
    let s = Server::start();
    let scope = "plan";
    let rule = write_rule(
        &s,
        scope,
        None,
        "json",
        json!({"if": {"intent": "json"}, "then": {"output": {"format": "json"}, "tool": {"prefer": ["psql"]}}}),
    );
    set_state(&s, scope, None, &rule, "active");
    let q: Vec<f32> = (0..384).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect();
    let r =
        ok(&s, "/v1/memory/recall", json!({"scope": scope, "query_embedding": q, "rules_context": {"intent": "json"}}));
    assert_eq!(r["rules"]["applied"]["policy"]["output"]["format"], "json");
    assert_eq!(r["rules"]["matched"], 1);
    assert_eq!(r["rules"]["scope"], scope);
    let plain = ok(&s, "/v1/memory/recall", json!({"scope": scope, "query_embedding": q}));
    assert!(plain.get("rules").is_none());

    // A rule node seeds recall only while shadow or active, and context
    // shows its definition.
    let w = ok(
        &s,
        "/v1/memory/write",
        json!({"scope": scope, "input_text": "embedded rule", "memory_lane": "shared",
               "nodes": [{"client_id": "embedded", "type": "rule", "text_summary": "always answer in json",
                          "embedding": q, "slots": {"if": {"intent": "json"}, "then": {"output": {"format": "json"}}}}]}),
    );
    let embedded = w["nodes"][0]["id"].as_str().unwrap().to_string();
    let seeds = |v: &Value| -> Vec<String> {
        v["seeds"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect()
    };
    let draft = ok(&s, "/v1/memory/recall", json!({"scope": scope, "query_embedding": q}));
    assert!(!seeds(&draft).contains(&embedded), "a draft rule never seeds: {draft}");
    set_state(&s, scope, None, &embedded, "active");
    let active = ok(&s, "/v1/memory/recall", json!({"scope": scope, "query_embedding": q}));
    assert_eq!(seeds(&active), vec![embedded.clone()]);
    let text = active["context"]["text"].as_str().unwrap();
    assert!(text.contains("# Applicable Rules (Shadow/Active)"), "{text}");
    assert!(
        text.contains(&format!(
            "- state=active scope=global pos=0 neg=0 summary=always answer in json (node:{embedded})"
        )),
        "{text}"
    );
    assert!(text.contains("  if={\"intent\":\"json\"}"), "{text}");

    let p = ok(
        &s,
        "/v1/memory/planning/context",
        json!({"scope": scope, "query_text": "which tool for json", "context": {"intent": "json"}, "tool_candidates": ["curl", "psql"]}),
    );
    assert_eq!(p["scope"], scope);
    assert_eq!(p["query"]["text"], "which tool for json");
    assert!(p["recall"]["context"].is_object());
    let planned: Vec<&str> =
        p["rules"]["active"].as_array().unwrap().iter().map(|m| m["rule_node_id"].as_str().unwrap()).collect();
    assert!(planned.contains(&rule.as_str()) && planned.contains(&embedded.as_str()), "{planned:?}");
    assert_eq!(p["tools"]["selection"]["selected"], "psql");
    err(&s, "/v1/memory/planning/context", json!({"scope": scope, "context": {}}), 400, "invalid_request");
}

"""The published Aionis Python client (aionis-sdk 0.2.x), unchanged, against
a running `cairn up`: write, find, sessions/events, packs, and the error
shape, recall and recall_text, and the policy routes (rules_state,
rules_evaluate, tools_select, tools_decision, tools_feedback, feedback,
planning_context) and the control plane's admin methods (control_*). Run by tests/tests/sdk_compat.rs, which starts the server and passes
--base-url and --admin-token; exits non-zero on the first failed check."""

import argparse
import json
import urllib.request
import uuid

from aionis_sdk import AionisApiError, AionisClient


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok   {what}")


def policy_checks(client, tenant, scope):
    ts = {"tenant_id": tenant, "scope": scope}
    ctx = {"intent": "json", "run": {"id": "sdk-run"}, "tool": {"name": "curl"}}
    w = client.write({**ts, "input_text": "sdk rule", "memory_lane": "shared", "nodes": [{
        "client_id": "sdk-rule", "type": "rule", "text_summary": "prefer curl, never bash",
        "slots": {"if": {"run.id": "sdk-run"}, "then": {"tool": {"prefer": ["curl"], "deny": ["bash"]}},
                  "rule_meta": {"priority": 50, "weight": 2}}}]})["data"]
    rule_id = w["nodes"][0]["id"]
    before = client.tools_select({**ts, "context": ctx, "candidates": ["bash", "curl"], "strict": True})["data"]
    check(before["selection"]["selected"] == "bash", "tools_select follows candidate order before the rule")
    st = client.rules_state({**ts, "rule_node_id": rule_id, "state": "active", "input_text": "activate"})["data"]
    check(len(st["commit_hash"]) == 64, "rules_state activates the rule with a commit")
    ev = client.rules_evaluate({**ts, "context": ctx, "include_shadow": True})["data"]
    check(ev["active"][0]["rule_node_id"] == rule_id and ev["applied"]["policy"]["tool"]["deny"] == ["bash"],
          "rules_evaluate applies the active rule")
    sel = client.tools_select({**ts, "context": ctx, "candidates": ["bash", "curl"], "run_id": "sdk-run"})["data"]
    check(sel["selection"]["selected"] == "curl" and sel["selection"]["denied"][0]["reason"] == "deny_list",
          "tools_select switches to curl and denies bash")
    dec = client.tools_decision({**ts, "decision_id": sel["decision"]["decision_id"]})["data"]
    check(dec["decision"]["selected_tool"] == "curl", "tools_decision reads the stored decision")
    fb = client.tools_feedback({**ts, "context": ctx, "candidates": ["bash", "curl"], "selected_tool": "curl",
                                "outcome": "positive", "run_id": "sdk-run", "input_text": "curl worked"})["data"]
    check(fb["decision_link_mode"] == "inferred" and fb["rule_node_ids"] == [rule_id], "tools_feedback links the decision")
    rf = client.feedback({**ts, "rule_node_id": rule_id, "outcome": "positive", "input_text": "good rule"})["data"]
    check(len(rf["commit_hash"]) == 64 and rf["feedback_id"], "feedback records rule feedback")
    pc = client.planning_context({**ts, "query_text": "which tool", "context": ctx,
                                  "tool_candidates": ["bash", "curl"]})["data"]
    check(pc["tools"]["selection"]["selected"] == "curl" and "context" in pc["recall"], "planning_context combines all")
    try:
        client.tools_select({**ts, "context": ctx, "candidates": ["bash"], "strict": True})
        check(False, "no tools allowed raises")
    except AionisApiError as err:
        check(err.status == 400 and err.code == "no_tools_allowed", "strict selection with nothing allowed -> 400")


def control_checks(client):
    t = client.control_upsert_tenant({"tenant_id": "sdk-co", "display_name": "SDK Co"})["data"]
    check(t["ok"] and t["tenant"]["status"] == "active", "control_upsert_tenant")
    check(any(x["tenant_id"] == "sdk-co" for x in client.control_list_tenants({"limit": 50})["data"]["tenants"]),
          "control_list_tenants")
    p = client.control_upsert_project({"project_id": "sdk-p", "tenant_id": "sdk-co"})["data"]
    check(p["project"]["tenant_id"] == "sdk-co", "control_upsert_project")
    k = client.control_create_api_key({"tenant_id": "sdk-co", "project_id": "sdk-p", "label": "sdk"})["data"]["key"]
    check(k["api_key"].startswith("ak_live_") and k["key_prefix"] == k["api_key"][:14], "control_create_api_key")
    keys = client.control_list_api_keys({"tenant_id": "sdk-co"})["data"]["keys"]
    check(len(keys) == 1 and "api_key" not in keys[0], "control_list_api_keys hides the plaintext")
    rot = client.control_rotate_api_key(k["id"], {"label": "sdk-2"})["data"]["key"]
    check(rot["rotated"]["label"] == "sdk-2" and rot["revoked"]["status"] == "revoked", "control_rotate_api_key")
    rev = client.control_revoke_api_key(rot["rotated"]["id"])["data"]
    check(rev["key"]["status"] == "revoked", "control_revoke_api_key")
    check(client.control_list_stale_api_keys({"max_age_days": 30})["data"]["ok"], "control_list_stale_api_keys")
    quota = {"recall_rps": 5, "recall_burst": 10, "write_rps": 2, "write_burst": 4, "write_max_wait_ms": 100,
             "debug_embed_rps": 1, "debug_embed_burst": 2, "recall_text_embed_rps": 3,
             "recall_text_embed_burst": 6, "recall_text_embed_max_wait_ms": 200}
    q = client.control_upsert_tenant_quota("sdk-co", quota)["data"]
    check(q["quota"]["recall_burst"] == 10, "control_upsert_tenant_quota")
    check(client.control_get_tenant_quota("sdk-co")["data"]["quota"]["write_rps"] == 2, "control_get_tenant_quota")
    check(client.control_delete_tenant_quota("sdk-co")["data"]["deleted"] is True, "control_delete_tenant_quota")
    dash = client.control_get_tenant_dashboard("sdk-co")["data"]["dashboard"]
    check(dash["tenant_id"] == "sdk-co" and dash["api_keys"]["revoked"] == 2, "control_get_tenant_dashboard")
    diag = client.control_get_tenant_diagnostics("sdk-co")["data"]["diagnostics"]
    check(diag["tenant_id"] == "sdk-co" and "recall_pipeline" in diag, "control_get_tenant_diagnostics")
    ev = client.control_list_audit_events({"tenant_id": "sdk-co", "limit": 50})["data"]["events"]
    check({"tenant.upsert", "api_key.create", "api_key.rotate", "api_key.revoke", "tenant_quota.delete"}
          <= {e["action"] for e in ev}, "control_list_audit_events")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--admin-token", required=True)
    args = ap.parse_args()

    client = AionisClient(base_url=args.base_url, admin_token=args.admin_token, retry={"max_retries": 0})
    tenant, scope = "sdk-tenant", f"sdk-{uuid.uuid4().hex[:8]}"

    w = client.write({
        "tenant_id": tenant, "scope": scope, "input_text": "sdk smoke write", "memory_lane": "shared",
        "auto_embed": False,
        "nodes": [
            {"client_id": "sdk-evt", "type": "event", "text_summary": "The SDK wrote this event", "slots": {"k": "v"}},
            {"client_id": "sdk-ent", "type": "entity", "title": "SDK"},
        ],
        "edges": [{"type": "related_to", "src": {"client_id": "sdk-evt"}, "dst": {"client_id": "sdk-ent"}}],
    })
    data = w["data"]
    check(w["status"] == 200 and len(data["commit_hash"]) == 64, "write returns a commit")
    check(data["tenant_id"] == tenant and data["scope"] == scope, "write echoes the public tenant and scope")
    check(w["request_id"], "response carries a request id")

    f = client.find({"tenant_id": tenant, "scope": scope, "client_id": "sdk-evt", "include_slots": True})["data"]
    check(len(f["nodes"]) == 1 and f["nodes"][0]["slots"] == {"k": "v"}, "find by client_id")
    uri = f["nodes"][0]["uri"]
    f2 = client.find({"uri": uri})["data"]
    check(f2["nodes"][0]["id"] == f["nodes"][0]["id"], "find by aionis:// uri")

    s = client.create_session({"tenant_id": tenant, "scope": scope, "session_id": "sdk-session",
                               "title": "SDK session", "memory_lane": "shared"})["data"]
    check(s["session_id"] == "sdk-session" and s["session_uri"].startswith("aionis://"), "create_session")
    for i in range(2):
        e = client.write_event({"tenant_id": tenant, "scope": scope, "session_id": "sdk-session",
                                "event_id": f"e{i}", "text_summary": f"event {i}"})["data"]
        check(e["event_id"] == f"e{i}" and e["session_node_id"] == s["session_node_id"], f"write_event {i}")
    ev = client.list_session_events("sdk-session", {"tenant_id": tenant, "scope": scope, "include_meta": True, "limit": 10})["data"]
    check(ev["session"]["node_id"] == s["session_node_id"], "list_session_events finds the session")
    check(len(ev["events"]) == 2 and ev["events"][0]["created_at"], "list_session_events lists both events with meta")

    ex = client.pack_export({"tenant_id": tenant, "scope": scope, "max_rows": 1000})["data"]
    check(ex["manifest"]["counts"]["nodes"] == 5, "pack_export exports every node")
    v = client.pack_import({"tenant_id": "sdk-copy", "scope": scope, "verify_only": True,
                            "manifest_sha256": ex["manifest"]["sha256"], "pack": ex["pack"]})["data"]
    check(v["verified"] is True and v["imported"] is False, "pack_import verify_only")
    imp = client.pack_import({"tenant_id": "sdk-copy", "scope": scope, "manifest_sha256": ex["manifest"]["sha256"],
                              "pack": ex["pack"]})["data"]
    check(imp["imported"] is True and imp["nodes"] == 5, "pack_import")
    f3 = client.find({"tenant_id": "sdk-copy", "scope": scope, "client_id": "sdk-evt"})["data"]
    check(len(f3["nodes"]) == 1, "imported node is findable")

    # recall: a client-supplied vector is found by the same vector.
    vec = [0.0] * 384
    vec[3] = 1.0
    r = client.write({"tenant_id": tenant, "scope": scope, "input_text": "sdk recall", "memory_lane": "shared",
                      "trigger_topic_cluster": False,
                      "nodes": [{"client_id": "sdk-vec", "type": "event", "text_summary": "vector memory", "embedding": vec}]})
    vec_id = r["data"]["nodes"][0]["id"]
    rc = client.recall({"tenant_id": tenant, "scope": scope, "query_embedding": vec, "limit": 5})["data"]
    check(rc["seeds"] and rc["seeds"][0]["id"] == vec_id, "recall finds the memory by its vector")
    check(rc["scope"] == scope and "(node:" in rc["context"]["text"], "recall returns context text with citations")
    # recall_text: once derivation has embedded a text memory.
    client.write({"tenant_id": tenant, "scope": scope, "input_text": "sdk recall_text", "memory_lane": "shared",
                  "trigger_topic_cluster": False,
                  "nodes": [{"client_id": "sdk-text", "type": "event",
                             "text_summary": "the nightly backup to cold storage failed with a timeout"}]})
    tick = urllib.request.Request(f"{args.base_url}/v1/admin/derive/tick", data=b"{}", method="POST",
                                  headers={"content-type": "application/json", "x-admin-token": args.admin_token})
    for _ in range(20):
        with urllib.request.urlopen(tick) as resp:
            if json.load(resp)["claimed"] == 0:
                break
    rt = client.recall_text({"tenant_id": tenant, "scope": scope, "query_text": "backup failed timeout",
                             "limit": 10, "max_nodes": 30, "max_edges": 60})["data"]
    check(rt["seeds"] and "backup" in rt["seeds"][0]["text_summary"], "recall_text finds the memory after derivation")
    check(rt["query"]["text"] == "backup failed timeout", "recall_text echoes the normalized query")
    try:
        client.recall({"tenant_id": tenant, "scope": scope, "query_embedding": vec, "max_edges": 101})
        check(False, "max_edges 101 raises")
    except AionisApiError as err:
        check(err.status == 400 and err.code == "invalid_request", "recall with max_edges 101 -> 400")

    policy_checks(client, tenant, scope)
    control_checks(client)

    try:
        client.write({"tenant_id": tenant, "scope": scope, "nodes": [{"type": "nope"}]})
        check(False, "bad write raises")
    except AionisApiError as err:
        check(err.status == 400 and err.code == "invalid_request" and err.issues, "bad write raises AionisApiError with issues")
    try:
        client.pack_export({"tenant_id": tenant, "scope": scope}, admin_token="wrong")
        check(False, "wrong admin token raises")
    except AionisApiError as err:
        check(err.status == 401 and err.code == "unauthorized_admin", "wrong admin token -> 401 unauthorized_admin")
    print("all SDK checks passed")


if __name__ == "__main__":
    main()

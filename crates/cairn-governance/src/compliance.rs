//! Compliance control mapping (issue 18, step 4): `config/controls.yaml`
//! maps each control to the evidence that proves it — an artifact of the
//! evidence registry or an event of the audit log, fresh within the
//! control's window, optionally with a value it must hold — and to the
//! command that produces that evidence. A tenant's tier names its control
//! set (`governance.controls`: e.g. baseline, extended, formal); the report
//! evaluates every control of that set: `pass`, `fail` (the evidence says
//! otherwise) or `no_evidence` (none in the window), linking the registry
//! entry or audit event it judged. Adding a control is YAML only.

use cairn_control_plane::evidence::{self, Covers};
use cairn_core::ApiError;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};

const DAY_MS: f64 = 86_400_000.0;

/// Where a control's evidence is found.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The newest registry artifact of this kind.
    Registry { kind: String },
    /// The newest audit event with this action.
    Audit { action: String },
}

/// A value the evidence must hold: `path` into the artifact's JSON (or the
/// event's details), dot-separated; a segment that meets a list picks the
/// element whose `name` is that segment (`summary.checks.audit_chain_verified.pass`).
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub path: String,
    pub equals: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    pub id: String,
    pub title: String,
    pub sets: Vec<String>,
    pub source: Source,
    pub covers: Covers,
    pub max_age_days: f64,
    pub expect: Option<Expect>,
    /// The command or query that produces the evidence.
    pub produced_by: String,
}

fn invalid(path: String, why: &str) -> ApiError {
    ApiError::bad_request("invalid_controls", format!("controls: {path} {why}")).with_details(json!({"path": path}))
}

/// Parses the controls document (`{version: 1, controls: [...]}`, the
/// YAML as JSON); `400 invalid_controls` names the first bad field.
pub fn parse_controls(doc: &Value) -> Result<Vec<Control>, ApiError> {
    let list =
        doc.get("controls").and_then(Value::as_array).ok_or_else(|| invalid("controls".into(), "must be a list"))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let at = |k: &str| format!("controls[{i}].{k}");
        let text = |k: &str| -> Result<String, ApiError> {
            c.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
                .ok_or_else(|| invalid(at(k), "must be a non-empty string"))
        };
        let id = text("id")?;
        if !seen.insert(id.clone()) {
            return Err(invalid(at("id"), "repeats another control's id"));
        }
        let sets: Vec<String> = c
            .get("sets")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .filter(|s: &Vec<String>| !s.is_empty())
            .ok_or_else(|| invalid(at("sets"), "must list the control sets it belongs to"))?;
        let ev =
            c.get("evidence").filter(|e| e.is_object()).ok_or_else(|| invalid(at("evidence"), "must be a mapping"))?;
        let ev_text = |k: &str| ev.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let source = match (ev_text("kind"), ev_text("audit_action")) {
            (Some(kind), None) => Source::Registry { kind },
            (None, Some(action)) => Source::Audit { action },
            _ => return Err(invalid(at("evidence"), "needs exactly one of kind (a registry kind) or audit_action")),
        };
        let covers_word = ev.get("covers").and_then(Value::as_str);
        let covers = Covers::parse(covers_word, Covers::Tenant)
            .ok_or_else(|| invalid(at("evidence.covers"), "must be tenant, deployment or either"))?;
        let max_age_days = ev
            .get("max_age_days")
            .and_then(Value::as_f64)
            .filter(|d| *d > 0.0)
            .ok_or_else(|| invalid(at("evidence.max_age_days"), "must be a positive number of days"))?;
        let expect = match ev.get("expect") {
            None | Some(Value::Null) => None,
            Some(e) => {
                let path = e.get("path").and_then(Value::as_str).filter(|p| !p.is_empty());
                let equals = e.get("equals");
                match (path, equals) {
                    (Some(p), Some(v)) => Some(Expect { path: p.to_string(), equals: v.clone() }),
                    _ => return Err(invalid(at("evidence.expect"), "needs path and equals")),
                }
            }
        };
        out.push(Control {
            id,
            title: text("title")?,
            sets,
            source,
            covers,
            max_age_days,
            expect,
            produced_by: text("produced_by")?,
        });
    }
    Ok(out)
}

/// The value at `path` (see [`Expect`]).
pub use cairn_core::json_path::lookup;

/// The newest audit event with `action` that `covers` counts for the tenant.
fn newest_event(db: &dyn Sql, action: &str, covers: Covers, tenant_id: &str) -> Result<Option<Value>, ApiError> {
    let (cond, mut params) = covers.sql("tenant_id", tenant_id);
    params.insert(0, action.into());
    Ok(db
        .query_one(
            &format!(
                "SELECT seq, event_id, event_hash, created_at, details FROM control_audit_events \
                 WHERE action = ? AND {cond} ORDER BY seq DESC LIMIT 1"
            ),
            &params,
        )?
        .map(|r| {
            json!({"seq": r.int(0), "event_id": r.string(1), "event_hash": r.string(2), "created_at": r.string(3),
                   "details": serde_json::from_str::<Value>(r.text(4).unwrap_or("null")).unwrap_or(Value::Null)})
        }))
}

/// One control judged at `now_ms`.
fn evaluate(db: &dyn Sql, c: &Control, tenant_id: &str, now_ms: i64) -> Result<Value, ApiError> {
    let (found, body, link) = match &c.source {
        Source::Registry { kind } => match evidence::newest(db, kind, c.covers, tenant_id, c.expect.is_some())? {
            None => (None, Value::Null, Value::Null),
            Some(mut f) => {
                let content = f.as_object_mut().and_then(|o| o.remove("content"));
                let body =
                    content.and_then(|t| t.as_str().and_then(|t| serde_json::from_str(t).ok())).unwrap_or(Value::Null);
                let link = json!({"evidence_id": f["evidence_id"], "kind": f["kind"], "tenant_id": f["tenant_id"],
                                  "sha256": f["sha256"], "created_at": f["created_at"],
                                  "fetch": format!("GET /v1/admin/control/evidence/{}", f["evidence_id"].as_str().unwrap_or(""))});
                (f["created_at"].as_str().map(str::to_string), body, link)
            }
        },
        Source::Audit { action } => match newest_event(db, action, c.covers, tenant_id)? {
            None => (None, Value::Null, Value::Null),
            Some(mut e) => {
                let details = e["details"].take();
                let link = json!({"audit_seq": e["seq"], "event_id": e["event_id"], "event_hash": e["event_hash"],
                                  "action": action, "created_at": e["created_at"]});
                (e["created_at"].as_str().map(str::to_string), details, link)
            }
        },
    };
    let since_ms = now_ms - (c.max_age_days * DAY_MS) as i64;
    let fresh = found.as_deref().is_some_and(|at| evidence::fresh(at, Some(c.max_age_days), now_ms));
    let (status, why) = if !fresh {
        let why = match &found {
            None => "no such evidence has ever been recorded".to_string(),
            Some(at) => format!("the newest ({at}) is older than {} days", c.max_age_days),
        };
        ("no_evidence", why)
    } else {
        match &c.expect {
            None => ("pass", "evidence in the window".to_string()),
            Some(x) => match lookup(&body, &x.path) {
                Some(v) if *v == x.equals => ("pass", format!("{} = {}", x.path, v)),
                Some(v) => ("fail", format!("{} = {}, expected {}", x.path, v, x.equals)),
                None => ("fail", format!("the evidence has no {}", x.path)),
            },
        }
    };
    let source = match &c.source {
        Source::Registry { kind } => json!({"registry_kind": kind}),
        Source::Audit { action } => json!({"audit_action": action}),
    };
    Ok(json!({
        "id": c.id, "title": c.title, "status": status, "why": why,
        "source": source, "covers": c.covers.as_str(), "max_age_days": c.max_age_days,
        "window_start": rfc3339_millis(since_ms),
        "expect": c.expect.as_ref().map(|x| json!({"path": x.path, "equals": x.equals})),
        "evidence": if fresh { link } else { Value::Null },
        "newest_at": found,
        "produced_by": c.produced_by,
    }))
}

/// What the report needs to know of the tenant.
pub struct Subject<'a> {
    pub tenant_id: &'a str,
    pub tier: &'a str,
    /// The tier's `governance.controls` (`None`: the tier names no set).
    pub control_set: Option<&'a str>,
}

/// The compliance report of a tenant at `now_ms` over the home store
/// (registry and audit log): every control of its tier's set judged.
/// `exit_code` is 2 under `strict` when any control is not `pass`.
pub fn report(db: &dyn Sql, controls: &[Control], who: &Subject, strict: bool, now_ms: i64) -> Result<Value, ApiError> {
    let applicable: Vec<&Control> = match who.control_set {
        Some(set) => controls.iter().filter(|c| c.sets.iter().any(|s| s == set)).collect(),
        None => Vec::new(),
    };
    let mut results = Vec::with_capacity(applicable.len());
    for c in &applicable {
        results.push(evaluate(db, c, who.tenant_id, now_ms)?);
    }
    let count = |st: &str| results.iter().filter(|r| r["status"] == st).count();
    let (pass, fail, none) = (count("pass"), count("fail"), count("no_evidence"));
    let ok = fail == 0 && none == 0;
    Ok(json!({
        "ok": ok,
        "kind": "compliance_report",
        "tenant_id": who.tenant_id,
        "tier": who.tier,
        "control_set": who.control_set,
        "generated_at": rfc3339_millis(now_ms),
        "summary": {"controls": results.len(), "pass": pass, "fail": fail, "no_evidence": none},
        "controls": results,
        "exit_code": if strict && !ok { 2 } else { 0 },
    }))
}

/// Who registers compliance reports (evidence producer, audit actor).
pub const PRODUCER: &str = "compliance_report";

/// `cairn job compliance-report`: reads `{tenant_id, controls (the
/// controls document as JSON), strict?, register?}`, judges the tenant's
/// controls over the home store, and with `register` records the report as
/// evidence of kind `compliance_report` for the tenant (`evidence_id` in
/// the answer).
pub fn run(db: &dyn Sql, ctx: &cairn_control_plane::admin::AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let mut r = cairn_core::request_reader::Reader::new();
    let root = cairn_core::request_reader::Reader::root(body)?;
    let tenant_id = r.str_req(root, "tenant_id");
    let strict = r.bool_opt(root, "strict").unwrap_or(false);
    let register = r.bool_opt(root, "register").unwrap_or(false);
    let doc = r.obj_opt(root, "controls");
    if doc.is_none() {
        r.issue("controls", "the controls document (config/controls.yaml as JSON) is required");
    }
    r.finish()?;
    let (tenant_id, doc) = (tenant_id.expect("checked"), Value::Object(doc.expect("checked").clone()));
    let controls = parse_controls(&doc)?;
    cairn_control_plane::schema::ensure(db, &ctx.now())?;
    cairn_control_plane::tenants::require_tenant(db, &tenant_id)?;
    let rule = cairn_control_plane::placement::TierRule {
        billing_disabled: ctx.billing_disabled,
        default_tier: ctx.default_tier,
    };
    let tier = cairn_control_plane::placement::tenant_tier(db, rule, &tenant_id)?;
    let profiles: Value = ctx.tier_profiles.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
    let set = profiles
        .get("tiers")
        .and_then(|t| t.get(&tier))
        .and_then(|p| p.get("governance"))
        .and_then(|g| g.get("controls"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let who = Subject { tenant_id: &tenant_id, tier: &tier, control_set: set.as_deref() };
    let mut rep = report(db, &controls, &who, strict, ctx.now_ms)?;
    if register {
        let content = rep.to_string();
        let evidence_id = ctx.uuid();
        let artifact = cairn_control_plane::evidence::Artifact {
            kind: PRODUCER,
            tenant_id: Some(&tenant_id),
            period_start: None,
            period_end: Some(ctx.now()),
            producer: PRODUCER,
            content_type: "application/json",
            content: &content,
        };
        cairn_spin::sql::write_txn(db, |db| {
            cairn_control_plane::evidence::insert(db, ctx, PRODUCER, &evidence_id, &artifact)
        })?;
        rep["evidence_id"] = json!(evidence_id);
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_control_is_named() {
        let bad = |c: Value| parse_controls(&json!({"controls": [c]})).unwrap_err().details.unwrap()["path"].clone();
        let ok = json!({"id": "x", "title": "t", "sets": ["baseline"], "produced_by": "p",
                        "evidence": {"kind": "weekly_report", "max_age_days": 7}});
        assert_eq!(parse_controls(&json!({"controls": [ok.clone()]})).unwrap().len(), 1);
        let mut c = ok.clone();
        c["evidence"]["audit_action"] = json!("api_key.rotate");
        assert_eq!(bad(c), "controls[0].evidence");
        let mut c = ok.clone();
        c["evidence"]["max_age_days"] = json!(0);
        assert_eq!(bad(c), "controls[0].evidence.max_age_days");
        let mut c = ok.clone();
        c["sets"] = json!([]);
        assert_eq!(bad(c), "controls[0].sets");
        let mut c = ok;
        c["evidence"]["covers"] = json!("all");
        assert_eq!(bad(c), "controls[0].evidence.covers");
        let dup = json!({"id": "x", "title": "t", "sets": ["s"], "produced_by": "p", "evidence": {"kind": "k", "max_age_days": 1}});
        let e = parse_controls(&json!({"controls": [dup.clone(), dup]})).unwrap_err();
        assert_eq!(e.details.unwrap()["path"], "controls[1].id");
    }
}

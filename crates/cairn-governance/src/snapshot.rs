//! What the weekly report reads: figures of the selected scopes in their
//! store (`db`), and of the control plane in the home store (`control`:
//! audit events, request telemetry, tiers). Read-only; each figure is one
//! aggregate query (or one chain walk per scope), so a week of a large
//! tenant costs a few scans, not a pass per memory.

use crate::options::Options;
use cairn_consistency::checks::has_schema;
use cairn_core::ApiError;
use cairn_core::tenant_scope::{ScopeDefaults, split_key};
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::{Sql, SqlValue};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Scopes whose chain verification is listed one by one (all are verified).
pub const CHAINS_LISTED: usize = 200;
/// Tenants listed in `cross_tenant.top_tenants` (the reference's 20).
pub const TOP_TENANTS: usize = 20;
/// Points of the backlog trend.
const BACKLOG_POINTS: i64 = 14;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feedback {
    pub total: i64,
    pub positive: i64,
    pub negative: i64,
    pub neutral: i64,
    pub with_run_id: i64,
    pub distinct_runs: i64,
    pub tools_feedback: i64,
    pub linked_to_decision: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub draft: i64,
    pub shadow: i64,
    pub active: i64,
    pub disabled: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recalls {
    pub total: i64,
    pub with_identity: i64,
    pub empty_seed: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lane {
    pub private_nodes: i64,
    pub private_owned: i64,
    pub shared_nodes: i64,
}

/// One tenant's figures for the cross-tenant drift.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantFigures {
    pub tenant_id: String,
    pub active_rules: i64,
    pub feedback_total: i64,
    pub feedback_negative: i64,
}

/// One scope's chain, verified at report time.
#[derive(Debug, Clone)]
pub struct Chain {
    pub tenant_id: String,
    pub scope: String,
    pub checked: i64,
    pub head: Option<Value>,
    pub first_broken: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct DeadLetters {
    /// Dead letters not replayed, now.
    pub open: i64,
    /// Jobs dead-lettered in the window.
    pub in_window: i64,
    pub newest_at: Option<String>,
    /// Replays and previews recorded in the window, and jobs replayed.
    pub replay_events: i64,
    pub replay_previews: i64,
    pub replayed_jobs: i64,
    pub last_decision_at: Option<String>,
}

/// Request telemetry of one day (UTC) of the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Day {
    pub day: String,
    pub requests: i64,
    pub throttled: i64,
    pub server_errors: i64,
}

/// The outbox at one instant of the window.
#[derive(Debug, Clone, PartialEq)]
pub struct BacklogPoint {
    pub at: String,
    pub open: i64,
    pub dead_letter: i64,
}

/// One tenant's SLO objectives over the window (`cairn_control_plane::slo`).
#[derive(Debug, Clone)]
pub struct TenantSlo {
    pub tenant_id: String,
    pub tier: String,
    pub objectives: Vec<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub scopes: i64,
    pub lane_available: bool,
    pub decision_available: bool,
    pub recall_available: bool,
    pub feedback: Feedback,
    pub rules: Rules,
    pub decisions: i64,
    pub recalls: Recalls,
    pub lane: Lane,
    pub tenants: Vec<TenantFigures>,
    pub chains: Vec<Chain>,
    /// `control_audit_events` verified (None: no control plane here).
    pub audit_chain: Option<Value>,
    /// Tombstones written in the window: (reason, nodes, edges).
    pub erasures: Vec<(String, i64, i64)>,
    /// `tenant.teardown` audit events in the window.
    pub teardowns: Vec<Value>,
    pub dead_letters: DeadLetters,
    pub days: Vec<Day>,
    /// Throttled (429) memory requests per endpoint in the window.
    pub quota_denials: BTreeMap<String, i64>,
    pub backlog: Vec<BacklogPoint>,
    pub slo: Vec<TenantSlo>,
    /// Tenants with telemetry but whose tier defines no SLO.
    pub slo_undefined: Vec<String>,
}

/// Where the report reads and what it needs to know of the deployment.
pub struct Sources<'a> {
    /// The selected scopes' store.
    pub db: &'a dyn Sql,
    /// The home store's control plane (audit, telemetry, tiers).
    pub control: &'a dyn Sql,
    pub defaults: &'a ScopeDefaults,
    pub tier_profiles: Option<&'a Value>,
    pub default_tier: &'a str,
    /// `billing=disabled`: every tenant is on the floor tier.
    pub billing_disabled: bool,
}

fn one(db: &dyn Sql, sql: &str, params: &[SqlValue]) -> Result<cairn_spin::sql::Row, ApiError> {
    Ok(db.query_one(sql, params)?.expect("an aggregate returns a row"))
}

/// Whether `table` can be read (a store behind this build may lack it).
fn readable(db: &dyn Sql, table: &str) -> bool {
    db.query_one(&format!("SELECT 1 FROM {table} WHERE 1 = 0"), &[]).is_ok()
}

/// Reads everything the report judges.
pub fn gather(src: &Sources, o: &Options) -> Result<Snapshot, ApiError> {
    let db = src.db;
    let f = |col: &str| o.filter.sql(col);
    let window: [SqlValue; 2] = [rfc3339_millis(o.start_ms).into(), rfc3339_millis(o.end_ms).into()];
    let mut s = Snapshot {
        lane_available: readable(db, "memory_nodes"),
        decision_available: readable(db, "memory_execution_decisions") && readable(db, "memory_rule_feedback"),
        recall_available: readable(db, "memory_recall_audit"),
        ..Snapshot::default()
    };
    let keys: Vec<String> = db
        .query(&format!("SELECT DISTINCT scope FROM memory_commits WHERE {} ORDER BY scope", f("scope")), &[])?
        .iter()
        .map(|r| r.string(0))
        .collect();
    s.scopes = keys.len() as i64;
    if s.lane_available {
        let r = one(
            db,
            &format!(
                "SELECT count(*) FILTER (WHERE memory_lane = 'private'), \
                 count(*) FILTER (WHERE memory_lane = 'private' AND (owner_agent_id IS NOT NULL OR owner_team_id IS NOT NULL)), \
                 count(*) FILTER (WHERE memory_lane = 'shared') FROM memory_nodes WHERE {}",
                f("scope")
            ),
            &[],
        )?;
        s.lane = Lane { private_nodes: r.int(0), private_owned: r.int(1), shared_nodes: r.int(2) };
    }
    if s.decision_available {
        let r = one(
            db,
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE outcome = 'positive'), count(*) FILTER (WHERE outcome = 'negative'), \
                 count(*) FILTER (WHERE outcome = 'neutral'), count(run_id), count(DISTINCT run_id), \
                 count(*) FILTER (WHERE source = 'tools_feedback'), \
                 count(*) FILTER (WHERE source = 'tools_feedback' AND decision_id IS NOT NULL) \
                 FROM memory_rule_feedback WHERE {} AND created_at >= ? AND created_at < ?",
                f("scope")
            ),
            &window,
        )?;
        s.feedback = Feedback {
            total: r.int(0),
            positive: r.int(1),
            negative: r.int(2),
            neutral: r.int(3),
            with_run_id: r.int(4),
            distinct_runs: r.int(5),
            tools_feedback: r.int(6),
            linked_to_decision: r.int(7),
        };
        let r = one(
            db,
            &format!(
                "SELECT count(*) FILTER (WHERE state = 'draft'), count(*) FILTER (WHERE state = 'shadow'), \
                 count(*) FILTER (WHERE state = 'active'), count(*) FILTER (WHERE state = 'disabled') \
                 FROM memory_rule_defs WHERE {}",
                f("scope")
            ),
            &[],
        )?;
        s.rules = Rules { draft: r.int(0), shadow: r.int(1), active: r.int(2), disabled: r.int(3) };
        s.decisions = one(
            db,
            &format!(
                "SELECT count(*) FROM memory_execution_decisions WHERE {} AND created_at >= ? AND created_at < ?",
                f("scope")
            ),
            &window,
        )?
        .int(0);
        s.tenants = tenant_figures(db, src.defaults, &window)?;
    }
    if s.recall_available {
        let r = one(
            db,
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE consumer_agent_id IS NOT NULL OR consumer_team_id IS NOT NULL), \
                 count(*) FILTER (WHERE seed_count = 0) FROM memory_recall_audit \
                 WHERE {} AND created_at >= ? AND created_at < ?",
                f("scope")
            ),
            &window,
        )?;
        s.recalls = Recalls { total: r.int(0), with_identity: r.int(1), empty_seed: r.int(2) };
    }
    for key in &keys {
        let report = cairn_memory::commit_log::verify_scope(db, key)?;
        let (tenant, scope) = split_key(key, &src.defaults.tenant_id);
        s.chains.push(Chain {
            tenant_id: tenant.to_string(),
            scope: scope.to_string(),
            checked: report.checked,
            head: report.head,
            first_broken: report.first_broken.map(|b| json!({"commit_id": b.commit_id, "reason": b.reason})),
        });
    }
    s.erasures = db
        .query(
            &format!(
                "SELECT reason, count(*) FILTER (WHERE row_kind = 'node'), count(*) FILTER (WHERE row_kind = 'edge') \
                 FROM memory_tombstones WHERE {} AND erased_at >= ? AND erased_at < ? GROUP BY reason ORDER BY reason",
                f("scope")
            ),
            &window,
        )?
        .iter()
        .map(|r| (r.string(0), r.int(1), r.int(2)))
        .collect();
    s.dead_letters = dead_letters(src, o, &window)?;
    s.backlog = backlog(db, o)?;
    let control = has_schema(src.control, cairn_control_plane::schema::COMPONENT);
    if control {
        s.audit_chain = Some(cairn_control_plane::audit::verify(src.control)?);
        let tenant = o.tenant(src.defaults);
        s.teardowns = src
            .control
            .query(
                "SELECT tenant_id, created_at, details FROM control_audit_events WHERE action = 'tenant.teardown' \
                 AND created_at >= ? AND created_at < ? AND (CAST(? AS TEXT) IS NULL OR tenant_id = ?) ORDER BY seq",
                &[window[0].clone(), window[1].clone(), tenant.clone().into(), tenant.into()],
            )?
            .iter()
            .map(|r| {
                let details: Value = serde_json::from_str(&r.string(2)).unwrap_or(Value::Null);
                json!({"tenant_id": r.opt_string(0), "at": r.string(1), "details": details})
            })
            .collect();
        telemetry(src, o, &window, &mut s)?;
    }
    Ok(s)
}

/// Active rules now and feedback in the window, per tenant of the store
/// (every tenant, whatever the selection: the drift is across tenants).
fn tenant_figures(db: &dyn Sql, defaults: &ScopeDefaults, window: &[SqlValue]) -> Result<Vec<TenantFigures>, ApiError> {
    let tenant = |key: &str| split_key(key, &defaults.tenant_id).0.to_string();
    let mut by_tenant: BTreeMap<String, TenantFigures> = BTreeMap::new();
    // Every tenant that wrote counts, with or without rules.
    for r in db.query("SELECT DISTINCT scope FROM memory_commits", &[])? {
        let t = tenant(&r.string(0));
        by_tenant.entry(t.clone()).or_insert_with(|| TenantFigures { tenant_id: t, ..Default::default() });
    }
    for r in db.query("SELECT scope, count(*) FROM memory_rule_defs WHERE state = 'active' GROUP BY scope", &[])? {
        if let Some(t) = by_tenant.get_mut(&tenant(&r.string(0))) {
            t.active_rules += r.int(1);
        }
    }
    let feedback = db.query(
        "SELECT scope, count(*), count(*) FILTER (WHERE outcome = 'negative') FROM memory_rule_feedback \
         WHERE created_at >= ? AND created_at < ? GROUP BY scope",
        window,
    )?;
    for r in &feedback {
        if let Some(t) = by_tenant.get_mut(&tenant(&r.string(0))) {
            t.feedback_total += r.int(1);
            t.feedback_negative += r.int(2);
        }
    }
    Ok(by_tenant.into_values().collect())
}

/// Dead letters now and in the window, with the newest dead letter and the
/// last replay decision as the health gate reads them, and the replays and
/// previews recorded in the window.
fn dead_letters(src: &Sources, o: &Options, window: &[SqlValue; 2]) -> Result<DeadLetters, ApiError> {
    let r = one(
        src.db,
        &format!(
            "SELECT count(*) FILTER (WHERE published_at IS NULL), count(*) FILTER (WHERE failed_at >= ? AND failed_at < ?) \
             FROM memory_outbox WHERE failed_at IS NOT NULL AND {}",
            o.filter.sql("scope")
        ),
        window,
    )?;
    let tenant = o.tenant(src.defaults);
    let (newest_at, last_decision_at) =
        cairn_consistency::health::dead_letter_times_of(src.db, src.control, &o.filter, tenant.as_deref())?;
    let mut d = DeadLetters { open: r.int(0), in_window: r.int(1), newest_at, last_decision_at, ..Default::default() };
    if has_schema(src.control, cairn_control_plane::schema::COMPONENT) {
        let rows = src.control.query(
            "SELECT action, details FROM control_audit_events WHERE action IN ('outbox.replay', 'outbox.replay.preview') \
             AND created_at >= ? AND created_at < ? AND (CAST(? AS TEXT) IS NULL OR tenant_id IS NULL OR tenant_id = ?)",
            &[window[0].clone(), window[1].clone(), tenant.clone().into(), tenant.into()],
        )?;
        for r in &rows {
            if r.string(0) == "outbox.replay" {
                d.replay_events += 1;
                let details: Value = serde_json::from_str(&r.string(1)).unwrap_or(Value::Null);
                d.replayed_jobs += details["replayed_count"].as_i64().unwrap_or(0);
            } else {
                d.replay_previews += 1;
            }
        }
    }
    Ok(d)
}

/// The open backlog and the dead letters at evenly spaced instants of the
/// window, reconstructed from each job's times (a job is open from its
/// enqueue until it is done or dead-lettered).
fn backlog(db: &dyn Sql, o: &Options) -> Result<Vec<BacklogPoint>, ApiError> {
    let step = ((o.end_ms - o.start_ms) / BACKLOG_POINTS).max(1);
    let mut points = Vec::new();
    for i in 1..=BACKLOG_POINTS {
        let at = rfc3339_millis(o.start_ms + i * step);
        let r = one(
            db,
            &format!(
                "SELECT count(*) FILTER (WHERE (published_at IS NULL OR published_at > ?1) AND (failed_at IS NULL OR failed_at > ?1)), \
                 count(*) FILTER (WHERE failed_at <= ?1 AND (published_at IS NULL OR published_at > ?1)) \
                 FROM memory_outbox WHERE created_at <= ?1 AND {}",
                o.filter.sql("scope")
            ),
            &[at.clone().into()],
        )?;
        points.push(BacklogPoint { at, open: r.int(0), dead_letter: r.int(1) });
    }
    Ok(points)
}

/// Per-day requests, throttles and server errors; throttles per endpoint;
/// SLO attainment per tenant whose tier defines objectives.
fn telemetry(src: &Sources, o: &Options, window: &[SqlValue], s: &mut Snapshot) -> Result<(), ApiError> {
    let tenant = o.tenant(src.defaults);
    let params = [window[0].clone(), window[1].clone(), tenant.clone().into(), tenant.clone().into()];
    let cond = "created_at >= ? AND created_at < ? AND (CAST(? AS TEXT) IS NULL OR tenant_id = ?)";
    let days = src.control.query(
        &format!(
            "SELECT substr(created_at, 1, 10) AS day, count(*), count(*) FILTER (WHERE status_code = 429), \
             count(*) FILTER (WHERE status_code >= 500) FROM memory_request_telemetry WHERE {cond} \
             GROUP BY substr(created_at, 1, 10) ORDER BY day"
        ),
        &params,
    )?;
    s.days = days
        .iter()
        .map(|r| Day { day: r.string(0), requests: r.int(1), throttled: r.int(2), server_errors: r.int(3) })
        .collect();
    for r in src.control.query(
        &format!(
            "SELECT endpoint, count(*) FROM memory_request_telemetry WHERE {cond} AND status_code = 429 \
             GROUP BY endpoint ORDER BY endpoint"
        ),
        &params,
    )? {
        s.quota_denials.insert(r.string(0), r.int(1));
    }
    let tenants: Vec<String> = match tenant {
        Some(t) => vec![t],
        None => src
            .control
            .query(
                "SELECT DISTINCT tenant_id FROM memory_request_telemetry WHERE created_at >= ? AND created_at < ? \
                 ORDER BY tenant_id",
                window,
            )?
            .iter()
            .map(|r| r.string(0))
            .collect(),
    };
    for t in tenants {
        let rule = cairn_control_plane::placement::TierRule {
            billing_disabled: src.billing_disabled,
            default_tier: src.default_tier,
        };
        let tier = cairn_control_plane::placement::tenant_tier(src.control, rule, &t)?;
        let profile = src
            .tier_profiles
            .map(|p| cairn_control_plane::slo::SloProfile::from_profiles(p, &tier))
            .transpose()
            .map_err(|m| ApiError::new(500, "slo_profile_invalid", m))?
            .flatten();
        let Some(profile) = profile else {
            s.slo_undefined.push(t);
            continue;
        };
        let mut objectives = Vec::new();
        for obj in &profile.objectives {
            let c = cairn_control_plane::slo::counts(src.control, &t, obj, o.start_ms, Some(o.end_ms))?;
            // A past window has no "now" to burn from: budget alone decides.
            objectives.push(cairn_control_plane::slo::evaluate(obj, c, &[]));
        }
        s.slo.push(TenantSlo { tenant_id: t, tier, objectives });
    }
    Ok(())
}

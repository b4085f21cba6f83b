//! The health gate (reference §8.4 `job:health-gate`): the consistency
//! check plus the operability checks that decide whether a data plane may
//! take a rollout — derivation keeping up (backlog and oldest pending job
//! under the tier's thresholds), no dead letters without a replay decision,
//! the schema current, the embedder answering, and the share of embedded
//! memories (the reference's quality eval, `embedding_ready_ratio`).
//!
//! Each check is `{name, pass, severity, detail}` (the preflight's shape);
//! a failed error check, or a failed warning check with `strict_warnings`,
//! adds its fail reason and fails the gate: exit code 2 (0 when it passes).

use crate::options::{OutboxLimits, ScopeFilter};
use crate::{Options, Report};
use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_derive::settings::DeriveSettings;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};

/// How far derivation may fall behind before the gate fails (tier
/// `ops.health`, read from the tenant's tier or the default tier).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub max_outbox_backlog: i64,
    pub max_oldest_pending_sec: i64,
    pub min_embedding_ready_ratio: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { max_outbox_backlog: 10_000, max_oldest_pending_sec: 3600, min_embedding_ready_ratio: 0.8 }
    }
}

impl Thresholds {
    /// `tiers.<tier>.ops.health` of the tier profiles document, over the defaults.
    pub fn from_profiles(profiles: Option<&Value>, tier: &str) -> Thresholds {
        let d = Thresholds::default();
        let Some(h) = profiles.and_then(|p| p.get("tiers")?.get(tier)?.get("ops")?.get("health")) else { return d };
        let int = |k: &str| h.get(k).and_then(Value::as_i64).filter(|v| *v >= 0);
        Thresholds {
            max_outbox_backlog: int("max_outbox_backlog").unwrap_or(d.max_outbox_backlog),
            max_oldest_pending_sec: int("max_oldest_pending_sec").unwrap_or(d.max_oldest_pending_sec),
            min_embedding_ready_ratio: h
                .get("min_embedding_ready_ratio")
                .and_then(Value::as_f64)
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(d.min_embedding_ready_ratio),
        }
    }

    fn to_json(self) -> Value {
        json!({"max_outbox_backlog": self.max_outbox_backlog, "max_oldest_pending_sec": self.max_oldest_pending_sec,
               "min_embedding_ready_ratio": self.min_embedding_ready_ratio})
    }
}

/// The outbox figures the gate reads (`GET /v1/admin/control/outbox`'s).
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    pub pending: i64,
    pub retrying: i64,
    pub dead_letter: i64,
    pub oldest_pending_age_sec: Option<i64>,
}

impl Backlog {
    pub fn from_status(outbox: &Value) -> Backlog {
        let n = |k: &str| outbox[k].as_i64().unwrap_or(0);
        Backlog {
            pending: n("pending"),
            retrying: n("retrying"),
            dead_letter: n("dead_letter"),
            oldest_pending_age_sec: outbox["oldest_pending_age_sec"].as_i64(),
        }
    }
}

/// One gate check.
struct Step {
    name: &'static str,
    pass: bool,
    /// Error checks always fail the gate; warning checks with strict_warnings.
    error: bool,
    fail_reason: &'static str,
    detail: Value,
}

/// What the gate decided.
#[derive(Debug, Clone)]
pub struct Gate {
    pub ok: bool,
    pub fail_reasons: Vec<String>,
    pub json: Value,
}

impl Gate {
    pub fn exit_code(&self) -> i32 {
        if self.ok { 0 } else { 2 }
    }
}

/// Inputs the caller gathers outside the consistency check's snapshot.
pub struct Inputs<'a> {
    pub consistency: &'a Report,
    pub backlog: Backlog,
    /// Newest dead letter's `failed_at`, newest replay decision's time.
    pub newest_dead_letter_at: Option<String>,
    pub last_replay_decision_at: Option<String>,
    /// Memories to embed and how many are embedded.
    pub embeddable: i64,
    pub embedded: i64,
    /// The embedder's answer to a one-text probe: dims, or why it failed.
    pub embedder_probe: Result<usize, String>,
    pub thresholds: Thresholds,
    pub tier: String,
}

/// Decides the gate from its inputs (pure: the tests drive it directly).
pub fn decide(inputs: &Inputs, strict_warnings: bool) -> Gate {
    let c = inputs.consistency;
    let t = inputs.thresholds;
    let b = &inputs.backlog;
    let schema = c.checks.iter().find(|k| k.name == "schema_version_mismatch");
    let backlog = b.pending + b.retrying;
    let ratio = if inputs.embeddable == 0 { 1.0 } else { inputs.embedded as f64 / inputs.embeddable as f64 };
    let undecided = match (&inputs.newest_dead_letter_at, &inputs.last_replay_decision_at) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(dead), Some(decided)) => dead > decided,
    };
    let steps = vec![
        Step {
            name: "schema_versions_current",
            pass: schema.is_none_or(|s| !s.fired()),
            error: true,
            fail_reason: "schema_version_mismatch",
            detail: json!(schema.map(|s| &s.sample)),
        },
        Step {
            name: "consistency_errors",
            pass: c.errors() == 0,
            error: true,
            fail_reason: "consistency_errors",
            detail: json!({"errors": c.errors(), "checks": fired_names(c, true)}),
        },
        Step {
            name: "consistency_warnings",
            pass: c.warnings() == 0,
            error: false,
            fail_reason: "consistency_warnings",
            detail: json!({"warnings": c.warnings(), "checks": fired_names(c, false)}),
        },
        Step {
            name: "outbox_backlog",
            pass: backlog <= t.max_outbox_backlog,
            error: true,
            fail_reason: "outbox_backlog_over_threshold",
            detail: json!({"pending": b.pending, "retrying": b.retrying, "max": t.max_outbox_backlog}),
        },
        Step {
            name: "outbox_oldest_pending",
            pass: b.oldest_pending_age_sec.is_none_or(|a| a <= t.max_oldest_pending_sec),
            error: true,
            fail_reason: "outbox_oldest_pending_over_threshold",
            detail: json!({"oldest_pending_age_sec": b.oldest_pending_age_sec, "max": t.max_oldest_pending_sec}),
        },
        Step {
            name: "dead_letters_decided",
            pass: !undecided,
            error: true,
            fail_reason: "dead_letters_without_replay_decision",
            detail: json!({"dead_letter": b.dead_letter, "newest_dead_letter_at": inputs.newest_dead_letter_at,
                           "last_replay_decision_at": inputs.last_replay_decision_at,
                           "decide": "cairn job outbox-replay --dry-run (preview) or without it (replay)"}),
        },
        Step {
            name: "embedder_reachable",
            pass: inputs.embedder_probe.is_ok(),
            error: true,
            fail_reason: "embedder_unreachable",
            detail: match &inputs.embedder_probe {
                Ok(dims) => json!({"dims": dims}),
                Err(e) => json!({"error": e}),
            },
        },
        Step {
            name: "embedding_ready_ratio",
            pass: ratio >= t.min_embedding_ready_ratio,
            error: false,
            fail_reason: "quality_eval_failed",
            detail: json!({"ratio": (ratio * 1000.0).round() / 1000.0, "embedded": inputs.embedded,
                           "embeddable": inputs.embeddable, "min": t.min_embedding_ready_ratio}),
        },
    ];
    let mut fail_reasons = Vec::new();
    for s in &steps {
        if !s.pass && (s.error || strict_warnings) && !fail_reasons.iter().any(|r| r == s.fail_reason) {
            fail_reasons.push(s.fail_reason.to_string());
        }
    }
    let ok = fail_reasons.is_empty();
    let o = &c.options;
    let json = json!({
        "ok": ok,
        "gate": "health_gate",
        "tenant_id": o.tenant_id,
        "scope": o.scope,
        "scope_key": o.scope_key,
        "tier": inputs.tier,
        "consistency_check_set": o.check_set.as_str(),
        "strict_warnings": strict_warnings,
        "exit_code": if ok { 0 } else { 2 },
        "fail_reasons": fail_reasons,
        "checks": steps.iter().map(|s| json!({
            "name": s.name, "pass": s.pass, "severity": if s.error { "error" } else { "warning" }, "detail": s.detail,
        })).collect::<Vec<_>>(),
        "thresholds": t.to_json(),
        "consistency": c.to_json(),
    });
    Gate { ok, fail_reasons, json }
}

fn fired_names(c: &Report, errors: bool) -> Vec<&'static str> {
    c.checks
        .iter()
        .filter(|k| k.fired() && (k.error.is_some() || k.severity == crate::Severity::Error) == errors)
        .map(|k| k.name)
        .collect()
}

/// The newest dead letter of the selected scopes in `db`, and the newest
/// replay decision (a replay or its preview, an audit event) of the tenant
/// in `audit`'s log (the home store's control plane).
pub fn dead_letter_times(
    db: &dyn Sql,
    audit: &dyn Sql,
    o: &Options,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let tenant = match &o.filter {
        ScopeFilter::Every => None,
        _ => o.tenant_id.as_deref(),
    };
    dead_letter_times_of(db, audit, &o.filter, tenant)
}

/// [`dead_letter_times`] of the scopes `filter` selects, with the replay
/// decisions of `tenant` (None: any tenant's).
pub fn dead_letter_times_of(
    db: &dyn Sql,
    audit: &dyn Sql,
    filter: &ScopeFilter,
    tenant: Option<&str>,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let dead = db
        .query_one(
            &format!(
                "SELECT max(failed_at) FROM memory_outbox WHERE failed_at IS NOT NULL AND published_at IS NULL AND {}",
                filter.sql("scope")
            ),
            &[],
        )?
        .and_then(|r| r.opt_string(0));
    if !crate::checks::has_schema(audit, cairn_control_plane::schema::COMPONENT) {
        // No control plane yet: no audit log, so no replay was ever decided.
        return Ok((dead, None));
    }
    // A replay drill's own replays (actor `replay_drill`, of its scope's
    // job alone) decide nothing about the tenant's real dead letters.
    let decided = audit
        .query_one(
            "SELECT max(created_at) FROM control_audit_events WHERE action IN ('outbox.replay', 'outbox.replay.preview') \
             AND actor <> 'replay_drill' AND (CAST(?1 AS TEXT) IS NULL OR tenant_id IS NULL OR tenant_id = ?1)",
            &[tenant.into()],
        )?
        .and_then(|r| r.opt_string(0));
    Ok((dead, decided))
}

/// Memories that get a vector (written and derived nodes, not rules) and
/// how many have one.
pub fn embedded_share(db: &dyn Sql, o: &Options) -> Result<(i64, i64), ApiError> {
    let r = db
        .query_one(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE embedding_status = 'ready') FROM memory_nodes \
                 WHERE {} AND embedding_status IN ('ready', 'pending', 'failed')",
                o.filter.sql("scope")
            ),
            &[],
        )?
        .expect("an aggregate returns a row");
    Ok((r.int(0), r.int(1)))
}

/// Runs the gate for a request `{tenant_id?, scope?, consistency_check_set?
/// (all), strict_warnings?}`: the consistency check in its snapshot, then
/// the outbox, dead letters, embedded share and the embedder `probe`.
pub fn run(
    db: &dyn Sql,
    home: Option<&dyn Sql>,
    s: &DeriveSettings,
    body: &Value,
    now_ms: i64,
    probe: &dyn Fn() -> Result<usize, String>,
) -> Result<Gate, ApiError> {
    let mut r = Reader::new();
    let root = Reader::root(body)?;
    let tenant = r.str_opt(root, "tenant_id");
    let scope = r.str_opt(root, "scope");
    let set = r.enum_opt(root, "consistency_check_set", &["all", "scope", "cross_tenant"]);
    let strict_warnings = r.bool_opt(root, "strict_warnings").unwrap_or(false);
    r.finish()?;
    let limits = OutboxLimits { max_attempts: s.max_attempts, claim_timeout_ms: s.claim_timeout_ms };
    let check_body = json!({"tenant_id": tenant, "scope": scope, "check_set": set.unwrap_or_else(|| "all".into())});
    let opts = Options::parse(&check_body, &s.kernel.defaults, limits, now_ms)?;
    let consistency = crate::run(db, &opts)?;
    let tenant_query: Vec<(String, String)> = tenant.iter().map(|t| ("tenant_id".to_string(), t.clone())).collect();
    let status = cairn_derive::outbox_admin::status(db, s, &tenant_query, now_ms)?;
    // The tenant's tier and the replay decisions are the home store's when
    // `db` is a store its tier places it in (`home`).
    let control_db = home.unwrap_or(db);
    let (newest_dead_letter_at, last_replay_decision_at) = dead_letter_times(db, control_db, &opts)?;
    let (embeddable, embedded) = embedded_share(db, &opts)?;
    // A tenant's provisioned tier, once the control plane exists.
    let control = crate::checks::has_schema(control_db, cairn_control_plane::schema::COMPONENT);
    let tier = match &tenant {
        Some(t) if control => {
            cairn_control_plane::tiers::stored_tier(control_db, t)?.unwrap_or_else(|| s.default_tier.clone())
        }
        _ => s.default_tier.clone(),
    };
    let inputs = Inputs {
        consistency: &consistency,
        backlog: Backlog::from_status(&status["outbox"]),
        newest_dead_letter_at,
        last_replay_decision_at,
        embeddable,
        embedded,
        embedder_probe: probe(),
        thresholds: Thresholds::from_profiles(s.tier_profiles.as_ref(), &tier),
        tier,
    };
    Ok(decide(&inputs, strict_warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::ScopeFilter;
    use crate::{CheckResult, CheckSet, Mode, Severity};

    fn report(findings: &[(&'static str, Severity)]) -> Report {
        let options = Options {
            tenant_id: None,
            scope: None,
            scope_key: None,
            filter: ScopeFilter::Every,
            check_set: CheckSet::All,
            mode: Mode::Full,
            sample: 20,
            strict: false,
            strict_warnings: false,
            now_ms: 0,
            max_attempts: 25,
            claim_timeout_ms: 300_000,
        };
        let checks = findings
            .iter()
            .map(|(name, severity)| CheckResult {
                name,
                severity: *severity,
                count: 1,
                sample: vec![json!({"x": 1})],
                note: String::new(),
                error: None,
            })
            .collect();
        Report { options, checks }
    }

    fn inputs(r: &Report) -> Inputs<'_> {
        Inputs {
            consistency: r,
            backlog: Backlog { pending: 10, retrying: 0, dead_letter: 0, oldest_pending_age_sec: Some(5) },
            newest_dead_letter_at: None,
            last_replay_decision_at: None,
            embeddable: 10,
            embedded: 9,
            embedder_probe: Ok(384),
            thresholds: Thresholds::default(),
            tier: "solo".into(),
        }
    }

    #[test]
    fn a_healthy_data_plane_passes() {
        let r = report(&[]);
        let g = decide(&inputs(&r), true);
        assert!(g.ok, "{}", g.json);
        assert_eq!(g.exit_code(), 0);
        assert!(g.json["checks"].as_array().unwrap().iter().all(|c| c["pass"] == true));
    }

    #[test]
    fn each_operability_failure_has_its_reason() {
        let r = report(&[]);
        let mut i = inputs(&r);
        i.backlog = Backlog { pending: 9_000, retrying: 1_001, dead_letter: 1, oldest_pending_age_sec: Some(3601) };
        i.newest_dead_letter_at = Some("2026-12-01T10:00:00.000Z".into());
        i.last_replay_decision_at = Some("2026-12-01T09:00:00.000Z".into());
        i.embedder_probe = Err("connection refused".into());
        let g = decide(&i, false);
        assert_eq!(
            g.fail_reasons,
            [
                "outbox_backlog_over_threshold",
                "outbox_oldest_pending_over_threshold",
                "dead_letters_without_replay_decision",
                "embedder_unreachable"
            ]
        );
        assert_eq!(g.exit_code(), 2);
        // A replay (or its preview) after the newest dead letter decides it.
        i.last_replay_decision_at = Some("2026-12-01T11:00:00.000Z".into());
        assert!(!decide(&i, false).fail_reasons.iter().any(|r| r == "dead_letters_without_replay_decision"));
    }

    #[test]
    fn warnings_fail_only_with_strict_warnings() {
        let r = report(&[("outbox_claimed_too_old", Severity::Warning)]);
        let mut i = inputs(&r);
        i.embedded = 1; // 10% embedded: the quality eval's warning
        let lenient = decide(&i, false);
        assert!(lenient.ok, "{}", lenient.json);
        let strict = decide(&i, true);
        assert_eq!(strict.fail_reasons, ["consistency_warnings", "quality_eval_failed"]);
        let errors = report(&[("commit_chain_broken", Severity::Error), ("schema_version_mismatch", Severity::Error)]);
        let g = decide(&inputs(&errors), false);
        assert_eq!(g.fail_reasons, ["schema_version_mismatch", "consistency_errors"]);
    }

    #[test]
    fn thresholds_come_from_the_tier() {
        let doc = json!({"tiers": {"growth": {"ops": {"health": {"max_outbox_backlog": 50000, "max_oldest_pending_sec": 900}}}}});
        let t = Thresholds::from_profiles(Some(&doc), "growth");
        assert_eq!((t.max_outbox_backlog, t.max_oldest_pending_sec, t.min_embedding_ready_ratio), (50000, 900, 0.8));
        assert_eq!(Thresholds::from_profiles(Some(&doc), "solo"), Thresholds::default());
    }
}

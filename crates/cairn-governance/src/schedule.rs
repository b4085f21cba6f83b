//! The weekly schedule (issue 18, step 2): once a week has closed, every
//! tenant gets the report its tier's `governance.report` profile names,
//! archived in the home store's evidence registry
//! (`cairn_control_plane::governance_reports`), and reports past their
//! tier's `governance.retention_days` are deleted.
//!
//! Profiles (tier data, `config/tiers.yaml`):
//! - `none`: no report;
//! - `shared_weekly`: the shared report — one per week over the home
//!   store's tenants (the reference's report), covering every tenant on
//!   such a tier;
//! - `tenant_weekly_export`, `compliance_evidence_package`, `per_contract`:
//!   the tenant's own report, a tenant-sliced export (other tenants only
//!   in aggregates).
//!
//! A tenant created after the week ended has no report for it. A run makes
//! only what the archive lacks for the last closed week, so it
//! is safe to run hourly (a host that was down when the week closed
//! catches up) and from several hosts at once (the archive's unique key
//! keeps one report per subject and week).

use crate::snapshot::Sources;
use cairn_control_plane::admin::AdminCtx;
use cairn_control_plane::governance_reports::{self as archive, NewReport, SHARED_SUBJECT};
use cairn_core::ApiError;
use cairn_core::tenant_scope::ScopeDefaults;
use cairn_core::time_fmt::IsoWeek;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// What the schedule reads.
pub struct ScheduleSources<'a> {
    /// The home store: tenants, tiers, the archive, telemetry.
    pub home: &'a dyn Sql,
    pub defaults: &'a ScopeDefaults,
    pub tier_profiles: Option<&'a Value>,
    pub default_tier: &'a str,
    /// `billing=disabled`: every tenant is on the floor tier.
    pub billing_disabled: bool,
}

/// What a tier's `governance` profile asks of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    None,
    Shared,
    Tenant,
    /// A `governance.report` value this build does not know.
    Unknown(String),
}

impl Profile {
    pub fn parse(report: &str) -> Profile {
        match report {
            "none" => Profile::None,
            "shared_weekly" => Profile::Shared,
            "tenant_weekly_export" | "compliance_evidence_package" | "per_contract" => Profile::Tenant,
            other => Profile::Unknown(other.to_string()),
        }
    }
}

/// A tenant's tier and what its `governance` block says.
#[derive(Debug, Clone)]
pub struct TenantPlan {
    pub tenant_id: String,
    pub tier: String,
    /// `governance.report` (`none` when the tier has no governance block).
    pub report: String,
    /// `governance.retention_days` (`None`: `contract`, kept).
    pub retention_days: Option<i64>,
}

/// `governance` of `tier`: (report, retention days).
fn governance_of(profiles: Option<&Value>, tier: &str) -> (String, Option<i64>) {
    let g = profiles.and_then(|p| p.get("tiers")?.get(tier)?.get("governance"));
    let report = g.and_then(|g| g.get("report")).and_then(Value::as_str).unwrap_or("none").to_string();
    // A number of days; `contract` (or any word) keeps reports until a
    // contract says otherwise.
    let days = g.and_then(|g| g.get("retention_days")).and_then(Value::as_i64).filter(|d| *d > 0);
    (report, days)
}

/// Every tenant that existed before `week` ended and is not torn down,
/// with its tier's governance.
pub fn tenants(src: &ScheduleSources, week: IsoWeek) -> Result<Vec<TenantPlan>, ApiError> {
    let rows = src.home.query(
        "SELECT tenant_id, tier FROM control_tenants WHERE torn_down_at IS NULL AND created_at < ? ORDER BY tenant_id",
        &[cairn_core::time_fmt::rfc3339_millis(week.end_ms()).into()],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let rule = cairn_control_plane::placement::TierRule {
                billing_disabled: src.billing_disabled,
                default_tier: src.default_tier,
            };
            let tier = rule.tier_of(r.opt_string(1));
            let (report, retention_days) = governance_of(src.tier_profiles, &tier);
            TenantPlan { tenant_id: r.string(0), tier, report, retention_days }
        })
        .collect())
}

/// One report the week needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub key: String,
    /// `None`: the shared report.
    pub tenant_id: Option<String>,
    pub profile: String,
    pub tiers: Vec<String>,
    pub covered_tenants: Vec<String>,
    pub retention_days: Option<i64>,
}

/// The reports a week needs, and the tenants skipped (with why).
pub fn plan(tenants: &[TenantPlan]) -> (Vec<Subject>, Vec<Value>) {
    let mut subjects = Vec::new();
    let mut skipped = Vec::new();
    let shared: Vec<&TenantPlan> = tenants.iter().filter(|t| Profile::parse(&t.report) == Profile::Shared).collect();
    if !shared.is_empty() {
        let tiers: BTreeSet<String> = shared.iter().map(|t| t.tier.clone()).collect();
        // Kept as long as the longest-kept tier it covers asks; by contract
        // when any of them is.
        let retention_days = shared.iter().map(|t| t.retention_days).try_fold(0, |m, d| d.map(|d| m.max(d)));
        subjects.push(Subject {
            key: SHARED_SUBJECT.to_string(),
            tenant_id: None,
            profile: "shared_weekly".into(),
            tiers: tiers.into_iter().collect(),
            covered_tenants: shared.iter().map(|t| t.tenant_id.clone()).collect(),
            retention_days,
        });
    }
    for t in tenants {
        match Profile::parse(&t.report) {
            Profile::Tenant => subjects.push(Subject {
                key: archive::tenant_subject(&t.tenant_id),
                tenant_id: Some(t.tenant_id.clone()),
                profile: t.report.clone(),
                tiers: vec![t.tier.clone()],
                covered_tenants: vec![t.tenant_id.clone()],
                retention_days: t.retention_days,
            }),
            Profile::Unknown(p) => skipped.push(json!({
                "tenant_id": t.tenant_id, "tier": t.tier,
                "reason": format!("governance.report {p:?} is not a profile this build knows"),
            })),
            Profile::None | Profile::Shared => {}
        }
    }
    (subjects, skipped)
}

/// What a run is asked for.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleRequest {
    pub week: IsoWeek,
    /// Return each made report's documents (`made[].files`), for a file
    /// export.
    pub include_files: bool,
}

impl ScheduleRequest {
    /// Reads `{report_week?, include_files?}` at `now_ms`: the named week,
    /// which must have closed, else the last closed week.
    pub fn parse(body: &Value, now_ms: i64) -> Result<ScheduleRequest, ApiError> {
        let mut r = cairn_core::request_reader::Reader::new();
        let root = cairn_core::request_reader::Reader::root(body)?;
        let label = r.str_opt(root, "report_week");
        let include_files = r.bool_opt(root, "include_files").unwrap_or(false);
        r.finish()?;
        let week = match label {
            None => IsoWeek::of_ms(now_ms).prev(),
            Some(label) => {
                let week = IsoWeek::parse(&label).ok_or_else(|| {
                    ApiError::bad_request("invalid_report_week", "report_week must be an ISO week such as 2026-W49")
                        .with_details(json!({"report_week": label}))
                })?;
                if week.end_ms() > now_ms {
                    return Err(ApiError::bad_request(
                        "invalid_report_week",
                        format!("report week {week} has not closed"),
                    )
                    .with_details(json!({"report_week": label})));
                }
                week
            }
        };
        Ok(ScheduleRequest { week, include_files })
    }
}

/// Runs the schedule at `ctx.now_ms`: `week`'s missing reports, then the
/// retention pass. Tenants placed apart are read from their own store
/// (`ctx.tenant_data`). One subject's failure is reported and the others
/// still run.
pub fn run(src: &ScheduleSources, ctx: &AdminCtx, req: ScheduleRequest) -> Result<Value, ApiError> {
    cairn_control_plane::schema::ensure(src.home, &ctx.now())?;
    let label = req.week.to_string();
    let (subjects, skipped) = plan(&tenants(src, req.week)?);
    let archived = archive::archived_subjects(src.home, &label)?;
    let (mut made, mut failed, mut already) = (Vec::new(), Vec::new(), 0);
    for s in &subjects {
        if archived.contains(&s.key) {
            already += 1;
            continue;
        }
        match make(src, ctx, s, &label) {
            Ok(Some((mut row, files))) => {
                if req.include_files {
                    row["files"] = files;
                }
                made.push(row)
            }
            Ok(None) => already += 1,
            Err(e) => failed.push(json!({"subject": s.key, "error": e.code, "message": e.message})),
        }
    }
    let deleted = archive::delete_expired(src.home, ctx)?;
    Ok(json!({
        "ok": failed.is_empty(),
        "report_week": label,
        "subjects": subjects.len(),
        "made": made,
        "already_archived": already,
        "skipped": skipped,
        "failed": failed,
        "deleted": deleted,
    }))
}

/// Makes and archives one subject's report: its archive row and documents
/// (`None`: archived meanwhile).
fn make(src: &ScheduleSources, ctx: &AdminCtx, s: &Subject, week: &str) -> Result<Option<(Value, Value)>, ApiError> {
    let data = match &s.tenant_id {
        Some(t) => ctx.tenant_data(src.home, t)?,
        None => cairn_control_plane::admin::TenantData::Home(src.home),
    };
    let sources = Sources {
        db: data.db(),
        control: src.home,
        defaults: src.defaults,
        tier_profiles: src.tier_profiles,
        default_tier: src.default_tier,
        billing_disabled: src.billing_disabled,
    };
    let mut body = json!({"report_week": week, "run_id": format!("{week}_{}", s.key.replace(':', "-"))});
    if let Some(t) = &s.tenant_id {
        body["tenant_id"] = json!(t);
        body["tenant_export"] = json!(true);
    }
    let report = crate::weekly_report(&sources, &body, ctx.now_ms)?;
    let o = &report.summary["window"];
    let at = |k: &str| o[k].as_str().and_then(cairn_core::time_fmt::parse_rfc3339_millis).unwrap_or(ctx.now_ms);
    let json = report.to_json();
    let content = json.to_string();
    let row = archive::archive(
        src.home,
        ctx,
        &NewReport {
            week,
            subject: &s.key,
            tenant_id: s.tenant_id.as_deref(),
            profile: &s.profile,
            tiers: &s.tiers,
            covered_tenants: &s.covered_tenants,
            retention_days: s.retention_days,
            period_start_ms: at("start"),
            period_end_ms: at("end"),
            ok: report.summary["ok"] == true,
            exit_code: report.exit_code,
            content: &content,
        },
    )?;
    Ok(row.map(|r| (r, json["files"].clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, tier: &str, report: &str, days: Option<i64>) -> TenantPlan {
        TenantPlan { tenant_id: id.into(), tier: tier.into(), report: report.into(), retention_days: days }
    }

    #[test]
    fn one_shared_report_covers_the_shared_tiers_and_each_export_tenant_gets_its_own() {
        let (subjects, skipped) = plan(&[
            t("a", "starter", "shared_weekly", Some(30)),
            t("b", "free", "none", Some(30)),
            t("c", "growth", "tenant_weekly_export", Some(90)),
            t("d", "starter", "shared_weekly", Some(30)),
            t("e", "lite", "shared_weekly", Some(14)),
            t("f", "odd", "monthly_pdf", Some(30)),
            t("g", "enterprise", "compliance_evidence_package", None),
        ]);
        let keys: Vec<&str> = subjects.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["shared", "tenant:c", "tenant:g"]);
        assert_eq!(subjects[0].covered_tenants, ["a", "d", "e"]);
        assert_eq!(subjects[0].tiers, ["lite", "starter"]);
        assert_eq!(subjects[0].retention_days, Some(30), "the longest of 30 and 14");
        assert_eq!(subjects[1].retention_days, Some(90));
        assert_eq!(subjects[2].retention_days, None, "by contract");
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0]["tenant_id"], "f");
    }

    #[test]
    fn a_request_names_a_closed_week_or_gets_the_last_one() {
        let now = cairn_core::time_fmt::parse_rfc3339_millis("2026-12-02T10:00:00.000Z").unwrap();
        let week = |body: Value| ScheduleRequest::parse(&body, now).map(|r| r.week.to_string());
        assert_eq!(week(json!({})).unwrap(), "2026-W48");
        assert_eq!(week(json!({"report_week": "2026-W40"})).unwrap(), "2026-W40");
        for bad in ["2026-W49", "2026-W50", "week 48"] {
            let e = week(json!({"report_week": bad})).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (400, "invalid_report_week"), "{bad}");
        }
    }

    #[test]
    fn a_shared_tier_kept_by_contract_keeps_the_shared_report() {
        let (subjects, _) = plan(&[t("a", "x", "shared_weekly", Some(30)), t("b", "y", "shared_weekly", None)]);
        assert_eq!(subjects[0].retention_days, None);
        assert!(plan(&[t("a", "solo", "none", Some(30))]).0.is_empty());
    }
}

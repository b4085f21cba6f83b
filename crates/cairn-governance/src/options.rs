//! What the weekly report covers and judges against: the request body of
//! the `governance-weekly-report` verb (`cairn job governance-weekly-report`
//! turns its flags into these fields).
//!
//! The window ends at the report week's end, or now while that week is
//! still running, and reaches `window_hours` back (168 by default: a past
//! week's report covers exactly that week).

use cairn_consistency::options::ScopeFilter;
use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_core::tenant_scope::ScopeDefaults;
use cairn_core::time_fmt::IsoWeek;
use serde_json::{Value, json};

/// Longest window, hours (the reference's 2160: 90 days).
pub const MAX_WINDOW_HOURS: i64 = 2160;

/// The reference's thresholds, with its defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Feedback a tenant needs in the window to count in the negative-ratio drift.
    pub tenant_drift_min_feedback: i64,
    pub min_decision_link_coverage: f64,
    pub min_recall_identity_coverage: f64,
    pub min_private_owner_coverage: f64,
    pub max_tenant_active_rule_count_drift: i64,
    pub max_tenant_negative_ratio_drift: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            tenant_drift_min_feedback: 5,
            min_decision_link_coverage: 0.95,
            min_recall_identity_coverage: 0.8,
            min_private_owner_coverage: 1.0,
            max_tenant_active_rule_count_drift: 20,
            max_tenant_negative_ratio_drift: 0.3,
        }
    }
}

impl Thresholds {
    pub fn to_json(self) -> Value {
        json!({
            "tenant_drift_min_feedback": self.tenant_drift_min_feedback,
            "min_decision_link_coverage": self.min_decision_link_coverage,
            "min_recall_identity_coverage": self.min_recall_identity_coverage,
            "min_private_owner_coverage": self.min_private_owner_coverage,
            "max_tenant_active_rule_count_drift": self.max_tenant_active_rule_count_drift,
            "max_tenant_negative_ratio_drift": self.max_tenant_negative_ratio_drift,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The public tenant and scope as asked (None: every tenant / scope).
    pub tenant_id: Option<String>,
    pub scope: Option<String>,
    pub filter: ScopeFilter,
    pub week: IsoWeek,
    pub window_hours: i64,
    /// `[start_ms, end_ms)`.
    pub start_ms: i64,
    pub end_ms: i64,
    pub run_id: String,
    pub thresholds: Thresholds,
    pub strict: bool,
    pub strict_warnings: bool,
    /// A tenant-sliced export (a tier's `tenant_weekly_export`): other
    /// tenants appear in aggregates (drift) only, never by id.
    pub tenant_export: bool,
    /// When the report is made (Unix ms).
    pub now_ms: i64,
}

impl Options {
    /// Reads `{tenant_id?, scope?, report_week?, window_hours?, run_id?,
    /// <thresholds>?, strict?, strict_warnings?, tenant_export? (needs
    /// tenant_id)}`.
    pub fn parse(body: &Value, defaults: &ScopeDefaults, now_ms: i64) -> Result<Options, ApiError> {
        let mut r = Reader::new();
        let root = Reader::root(body)?;
        let tenant_id = r.str_opt(root, "tenant_id");
        let scope = r.str_opt(root, "scope");
        let week_label = r.str_opt(root, "report_week");
        let window_hours = r.int_opt(root, "window_hours", 1, MAX_WINDOW_HOURS).unwrap_or(168);
        let run_id = r.str_opt_len(root, "run_id", 1, 128);
        let d = Thresholds::default();
        let thresholds = Thresholds {
            tenant_drift_min_feedback: r
                .int_opt(root, "tenant_drift_min_feedback", 1, 1_000_000)
                .unwrap_or(d.tenant_drift_min_feedback),
            min_decision_link_coverage: r
                .num_opt(root, "min_decision_link_coverage", 0.0, 1.0)
                .unwrap_or(d.min_decision_link_coverage),
            min_recall_identity_coverage: r
                .num_opt(root, "min_recall_identity_coverage", 0.0, 1.0)
                .unwrap_or(d.min_recall_identity_coverage),
            min_private_owner_coverage: r
                .num_opt(root, "min_private_owner_coverage", 0.0, 1.0)
                .unwrap_or(d.min_private_owner_coverage),
            max_tenant_active_rule_count_drift: r
                .int_opt(root, "max_tenant_active_rule_count_drift", 0, 1_000_000)
                .unwrap_or(d.max_tenant_active_rule_count_drift),
            max_tenant_negative_ratio_drift: r
                .num_opt(root, "max_tenant_negative_ratio_drift", 0.0, 1.0)
                .unwrap_or(d.max_tenant_negative_ratio_drift),
        };
        let strict = r.bool_opt(root, "strict").unwrap_or(false);
        let strict_warnings = r.bool_opt(root, "strict_warnings").unwrap_or(false);
        let tenant_export = r.bool_opt(root, "tenant_export").unwrap_or(false);
        if tenant_export && tenant_id.is_none() {
            r.issue("tenant_export", "a tenant export needs tenant_id");
        }
        r.finish()?;
        let week = match &week_label {
            None => IsoWeek::of_ms(now_ms),
            Some(l) => IsoWeek::parse(l).ok_or_else(|| {
                ApiError::bad_request("invalid_report_week", "report_week must be an ISO week such as 2026-W49")
                    .with_details(json!({"report_week": l}))
            })?,
        };
        if week.start_ms() > now_ms {
            return Err(ApiError::bad_request("invalid_report_week", format!("report week {week} has not begun"))
                .with_details(json!({"report_week": week.to_string()})));
        }
        let (filter, _) = ScopeFilter::select(tenant_id.as_deref(), scope.as_deref(), defaults)?;
        let end_ms = week.end_ms().min(now_ms);
        let start_ms = end_ms - window_hours * 3_600_000;
        let run_id = run_id.unwrap_or_else(|| format!("{week}_{now_ms}"));
        Ok(Options {
            tenant_id,
            scope,
            filter,
            week,
            window_hours,
            start_ms,
            end_ms,
            run_id,
            thresholds,
            strict,
            strict_warnings,
            tenant_export,
            now_ms,
        })
    }

    /// The tenant the selected scopes belong to, when they are one tenant's.
    pub fn tenant(&self, defaults: &ScopeDefaults) -> Option<String> {
        match (&self.tenant_id, &self.scope) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(_)) => Some(defaults.tenant_id.clone()),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::time_fmt::{parse_rfc3339_millis, rfc3339_millis};

    fn at(s: &str) -> i64 {
        parse_rfc3339_millis(s).unwrap()
    }

    #[test]
    fn a_past_week_is_covered_whole_and_the_current_one_up_to_now() {
        let now = at("2026-12-02T18:00:00.000Z");
        let d = ScopeDefaults::default();
        let past = Options::parse(&json!({"report_week": "2026-W48"}), &d, now).unwrap();
        assert_eq!(rfc3339_millis(past.start_ms), "2026-11-23T00:00:00.000Z");
        assert_eq!(rfc3339_millis(past.end_ms), "2026-11-30T00:00:00.000Z");
        let current = Options::parse(&json!({"window_hours": 24}), &d, now).unwrap();
        assert_eq!(current.week.to_string(), "2026-W49");
        assert_eq!((current.end_ms, current.start_ms), (now, now - 86_400_000));
        assert_eq!(current.run_id, format!("2026-W49_{now}"));
        assert_eq!(current.thresholds, Thresholds::default());
    }

    #[test]
    fn mistakes_are_named() {
        let now = at("2026-12-02T18:00:00.000Z");
        let d = ScopeDefaults::default();
        let code = |b: Value| Options::parse(&b, &d, now).unwrap_err().code;
        assert_eq!(code(json!({"report_week": "2026-49"})), "invalid_report_week");
        assert_eq!(code(json!({"report_week": "2026-W50"})), "invalid_report_week");
        assert_eq!(code(json!({"window_hours": 0})), "invalid_request");
        assert_eq!(code(json!({"min_decision_link_coverage": 2})), "invalid_request");
        assert_eq!(code(json!({"scope": "tenant:x"})), "invalid_scope");
    }
}

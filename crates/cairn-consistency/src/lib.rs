//! The consistency check (reference §8.3 `job:consistency-check`): read-only
//! integrity checks of a Cairn database, all in one read transaction, so a
//! running server can keep writing meanwhile and the report describes one
//! snapshot.
//!
//! Each check has a name, a severity and a check set (`scope`: rows of the
//! selected scopes; `cross_tenant`: global checks across tenants and the
//! control plane). A check reports how many rows it found (`count`), up to
//! `sample` of them, and a note saying what it means. A check whose query
//! fails counts as an error. `ok` is false when any error-severity check
//! found something; `--strict` turns errors into exit code 1 and
//! `--strict-warnings` errors or warnings ([`Report::exit_code`]).
//!
//! The checks themselves are in [`checks`]; `docs/operations.md` lists them
//! with what a finding means and what to do.

pub mod checks;
pub mod health;
pub mod options;

use cairn_spin::sql::{Sql, read_txn};
use serde_json::{Value, json};

pub use options::{CheckSet, Mode, Options};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: &'static str,
    pub severity: Severity,
    pub count: i64,
    pub sample: Vec<Value>,
    pub note: String,
    /// The check could not run (its query failed): counts as an error.
    pub error: Option<String>,
}

impl CheckResult {
    /// Whether it counts towards the summary (something found, or failed).
    pub fn fired(&self) -> bool {
        self.count > 0 || self.error.is_some()
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name, "severity": self.severity.as_str(), "count": self.count,
            "sample": self.sample, "note": self.note,
        });
        if let Some(e) = &self.error {
            v["error"] = json!(e);
        }
        v
    }
}

/// The whole report.
#[derive(Debug, Clone)]
pub struct Report {
    pub options: Options,
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// Error-severity checks that fired, plus checks that failed to run.
    pub fn errors(&self) -> i64 {
        self.checks.iter().filter(|c| c.fired() && (c.severity == Severity::Error || c.error.is_some())).count() as i64
    }

    /// Warning-severity checks that fired (and ran).
    pub fn warnings(&self) -> i64 {
        self.checks.iter().filter(|c| c.fired() && c.severity == Severity::Warning && c.error.is_none()).count() as i64
    }

    pub fn ok(&self) -> bool {
        self.errors() == 0
    }

    /// The reference's exit codes: 0, or 1 when `strict` and errors, or
    /// `strict_warnings` and errors or warnings.
    pub fn exit_code(&self) -> i32 {
        let o = &self.options;
        let failed = (o.strict || o.strict_warnings) && self.errors() > 0 || o.strict_warnings && self.warnings() > 0;
        i32::from(failed)
    }

    pub fn to_json(&self) -> Value {
        let o = &self.options;
        json!({
            "ok": self.ok(),
            "tenant_id": o.tenant_id,
            "scope": o.scope,
            "scope_key": o.scope_key,
            "check_set": o.check_set.as_str(),
            "mode": o.mode.as_str(),
            "strict": o.strict,
            "strict_warnings": o.strict_warnings,
            "exit_code": self.exit_code(),
            "summary": {"errors": self.errors(), "warnings": self.warnings(), "sample_limit": o.sample,
                         "checks_run": self.checks.len()},
            "checks": self.checks.iter().map(CheckResult::to_json).collect::<Vec<_>>(),
        })
    }
}

/// Runs every check of `opts.check_set` in one read transaction.
pub fn run(db: &dyn Sql, opts: &Options) -> Result<Report, cairn_core::ApiError> {
    let checks = read_txn(db, |db| Ok(checks::run_all(db, opts)))?;
    Ok(Report { options: opts.clone(), checks })
}

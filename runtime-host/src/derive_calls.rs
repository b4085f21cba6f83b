//! Calling the derivation component's exports in-process: one fresh
//! instance per call, like an HTTP request. Used by the cron scheduler,
//! `cairn job ...` and `cairn bench derive`.

use crate::app::App;
use crate::spin_bindings::derive::cairn::common::types::{CallContext, Error as WitError};
use crate::spin_bindings::derive::fermyon::spin_cron::cron_types::{Error as CronError, Metadata};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::sync::Arc;

/// A derivation verb.
#[derive(Debug, Clone)]
pub enum Verb {
    Tick(Value),
    OutboxStatus(Vec<(String, String)>),
    OutboxReplay(Value),
    RebuildDerived(Value),
    ConsistencyCheck(Value),
    HealthGate(Value),
    GovernanceWeeklyReport(Value),
    GovernanceSchedule(Value),
    ComplianceReport(Value),
    EvidenceVerify,
    EvidenceExport(Value),
    EvidencePublish(Value),
    ReplayDrill(Value),
    TelemetryRetention,
    KeyUsageAnomaly(Value),
    AlertPlan(Value),
    AlertRecord(Value),
    TenantCopy(Value),
}

/// A call's outcome: the component's JSON answer, or its error envelope.
pub type Answer = std::result::Result<Value, WitError>;

/// Runs `verb` on a fresh instance of the derive component.
pub async fn call(app: &Arc<App>, verb: Verb, request_id: &str) -> Result<Answer> {
    let handler = app.derive_handler()?;
    let pre = handler.derive.clone().expect("derive_handler returns components with the derive exports");
    let mut store = app.new_store(handler, &Default::default());
    let exports = pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| anyhow::Error::from(e).context("instantiating the derive component"))?;
    let d = exports.cairn_derive_derive();
    let ctx = CallContext { request_id: request_id.to_string(), admin: true };
    let out = match verb {
        Verb::Tick(body) => d.call_tick(&mut store, &ctx, &body.to_string()).await,
        Verb::OutboxStatus(q) => d.call_outbox_status(&mut store, &ctx, &q).await,
        Verb::OutboxReplay(body) => d.call_outbox_replay(&mut store, &ctx, &body.to_string()).await,
        Verb::RebuildDerived(body) => d.call_rebuild_derived(&mut store, &ctx, &body.to_string()).await,
        Verb::ConsistencyCheck(body) => d.call_consistency_check(&mut store, &ctx, &body.to_string()).await,
        Verb::HealthGate(body) => d.call_health_gate(&mut store, &ctx, &body.to_string()).await,
        Verb::GovernanceWeeklyReport(body) => {
            d.call_governance_weekly_report(&mut store, &ctx, &body.to_string()).await
        }
        Verb::GovernanceSchedule(body) => d.call_governance_schedule(&mut store, &ctx, &body.to_string()).await,
        Verb::ComplianceReport(body) => d.call_compliance_report(&mut store, &ctx, &body.to_string()).await,
        Verb::EvidenceVerify => d.call_evidence_verify(&mut store, &ctx, "{}").await,
        Verb::EvidenceExport(body) => d.call_evidence_export(&mut store, &ctx, &body.to_string()).await,
        Verb::EvidencePublish(body) => d.call_evidence_publish(&mut store, &ctx, &body.to_string()).await,
        Verb::ReplayDrill(body) => d.call_replay_drill(&mut store, &ctx, &body.to_string()).await,
        Verb::TelemetryRetention => d.call_telemetry_retention(&mut store, &ctx, "{}").await,
        Verb::KeyUsageAnomaly(body) => d.call_key_usage_anomaly(&mut store, &ctx, &body.to_string()).await,
        Verb::AlertPlan(body) => d.call_alert_plan(&mut store, &ctx, &body.to_string()).await,
        Verb::AlertRecord(body) => d.call_alert_record(&mut store, &ctx, &body.to_string()).await,
        Verb::TenantCopy(body) => d.call_tenant_copy(&mut store, &ctx, &body.to_string()).await,
    }
    .map_err(|e| anyhow::Error::from(e).context("the derive component trapped"))?;
    Ok(match out {
        Ok(text) => Ok(serde_json::from_str::<Value>(&text).context("the derive component returned invalid JSON")?),
        Err(e) => Err(e),
    })
}

/// Like [`call`], but a component error becomes an `Err` naming its code.
pub async fn call_ok(app: &Arc<App>, verb: Verb, request_id: &str) -> Result<Value> {
    match call(app, verb, request_id).await? {
        Ok(v) => Ok(v),
        Err(e) => {
            bail!("{} ({}): {}{}", e.code, e.status, e.message, e.details.map(|d| format!(" {d}")).unwrap_or_default())
        }
    }
}

/// Runs the cron export of `component` once for the tick at `timestamp` (Unix s).
pub async fn cron_tick(app: &Arc<App>, component: &str, timestamp: u64) -> Result<std::result::Result<(), String>> {
    let handler = app.handlers.get(component).with_context(|| format!("no component '{component}'"))?;
    let pre = handler.derive.clone().with_context(|| format!("component '{component}' has no cron export"))?;
    let mut store = app.new_store(handler, &Default::default());
    let exports = pre.instantiate_async(&mut store).await.map_err(anyhow::Error::from)?;
    let out = exports
        .call_handle_cron_event(&mut store, Metadata { timestamp })
        .await
        .map_err(|e| anyhow::Error::from(e).context("the cron handler trapped"))?;
    Ok(out.map_err(|CronError::Other(m)| m))
}

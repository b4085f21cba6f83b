//! The cron capability: runs the `[[trigger.cron]]` schedules of the
//! manifest, like Spin's `trigger-cron` plugin (0.3–0.4, synchronous
//! `fermyon:spin-cron@2.0.0`): six or seven fields, seconds first
//! (`sec min hour day-of-month month day-of-week [year]`), in UTC. Each tick
//! calls `handle-cron-event` on a fresh instance. A tick that is still
//! running when the next one is due makes that one be skipped, so ticks of
//! one schedule never pile up.

use crate::app::App;
use anyhow::{Context, Result};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Parses a cron expression the way the trigger does.
pub fn parse(expr: &str) -> Result<cron::Schedule> {
    cron::Schedule::from_str(expr)
        .with_context(|| format!("cron_expression '{expr}' (expected 6-7 fields, seconds first: \"*/5 * * * * *\")"))
}

/// Seconds added to the time each tick reports to its component: a drill
/// or test makes the weekly schedule see next week (or next month) without
/// waiting for it. Unset (0) in production.
pub const CLOCK_OFFSET_ENV: &str = "CAIRN_CRON_CLOCK_OFFSET_SEC";

fn clock_offset_sec() -> Result<i64> {
    match std::env::var(CLOCK_OFFSET_ENV) {
        Err(_) => Ok(0),
        Ok(v) => v.trim().parse().with_context(|| format!("{CLOCK_OFFSET_ENV}={v:?} is not a whole number of seconds")),
    }
}

/// Starts one task per schedule; they run until the process exits.
pub fn start(app: &Arc<App>) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let offset = clock_offset_sec()?;
    if offset != 0 {
        tracing::warn!(offset_sec = offset, "{CLOCK_OFFSET_ENV} is set: cron ticks report a shifted time");
    }
    let mut tasks = Vec::new();
    for c in &app.manifest.cron {
        let schedule = parse(&c.cron_expression)?;
        let (app, component, expr) = (app.clone(), c.component.clone(), c.cron_expression.clone());
        tracing::info!(component = %component, cron_expression = %expr, "cron schedule started");
        tasks.push(tokio::spawn(async move { run(app, component, schedule, offset).await }));
    }
    Ok(tasks)
}

async fn run(app: Arc<App>, component: String, schedule: cron::Schedule, offset_sec: i64) {
    let busy = Arc::new(AtomicBool::new(false));
    for next in schedule.upcoming(chrono::Utc) {
        let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        if busy.swap(true, Ordering::AcqRel) {
            tracing::debug!(component = %component, "cron tick skipped: the previous one is still running");
            continue;
        }
        let (app, component, busy) = (app.clone(), component.clone(), busy.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let ts = next.timestamp().saturating_add(offset_sec).max(0) as u64;
            match crate::derive_calls::cron_tick(&app, &component, ts).await {
                Ok(Ok(())) => {
                    tracing::debug!(component = %component, ms = started.elapsed().as_millis() as u64, "cron tick done")
                }
                Ok(Err(msg)) => tracing::warn!(component = %component, error = %msg, "cron tick failed"),
                Err(e) => tracing::error!(component = %component, error = format!("{e:#}"), "cron tick trapped"),
            }
            busy.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trigger_expressions() {
        assert!(parse("*/2 * * * * *").is_ok());
        assert!(parse("0 */5 * * * *").is_ok());
        assert!(parse("* * * *").is_err());
        let s = parse("*/2 * * * * *").unwrap();
        let mut it = s.upcoming(chrono::Utc);
        let (a, b) = (it.next().unwrap(), it.next().unwrap());
        assert_eq!((b - a).num_seconds(), 2);
    }
}

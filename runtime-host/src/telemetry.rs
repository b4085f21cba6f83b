//! Request telemetry (reference `memory_request_telemetry`): one row per
//! memory request — tenant, endpoint class, status, latency, request id —
//! queued by the request and written in batches by a background thread,
//! never on the request path. The control plane's diagnostics read it.
//! Rows are dropped (with a warning) if the queue is full or the table is
//! not there yet (the control component creates it on first use).

use crate::sqlite::SqliteCapability;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

/// One request's row.
pub struct Row {
    pub tenant_id: String,
    pub endpoint: &'static str,
    pub status: u16,
    pub latency_ms: f64,
    pub request_id: String,
    pub created_at: String,
}

/// The endpoint class a path is recorded under (`None`: not recorded).
pub fn endpoint_of(path: &str) -> Option<&'static str> {
    Some(match path.trim_end_matches('/') {
        "/v1/memory/write" | "/v1/memory/sessions" | "/v1/memory/events" | "/v1/memory/packs/import" => "write",
        "/v1/memory/recall_text" => "recall_text",
        "/v1/memory/recall"
        | "/v1/memory/find"
        | "/v1/memory/packs/export"
        | "/v1/memory/planning/context"
        | "/v1/memory/tools/decision" => "recall",
        _ => return None,
    })
}

const QUEUE: usize = 50_000;
const BATCH: usize = 500;
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// The sending side, cloned into every request (`None`: recording is off,
/// `CAIRN_TELEMETRY=0`).
#[derive(Clone)]
pub struct Telemetry {
    tx: Option<SyncSender<Row>>,
}

impl Telemetry {
    /// Starts the writer thread on the `default` database.
    pub fn start(sqlite: SqliteCapability) -> Telemetry {
        if std::env::var("CAIRN_TELEMETRY").is_ok_and(|v| v == "0") {
            return Telemetry { tx: None };
        }
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("cairn-telemetry".into())
            .spawn(move || writer(sqlite, rx))
            .expect("spawning telemetry writer");
        Telemetry { tx: Some(tx) }
    }

    pub fn record(&self, row: Row) {
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_)) = tx.try_send(row)
        {
            tracing::warn!("telemetry queue full; dropping a row");
        }
    }
}

fn writer(sqlite: SqliteCapability, rx: Receiver<Row>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else { return };
    let mut batch: Vec<Row> = Vec::with_capacity(BATCH);
    loop {
        match rx.recv_timeout(FLUSH_EVERY) {
            Ok(row) => {
                batch.push(row);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if batch.is_empty() {
            continue;
        }
        if let Err(e) = rt.block_on(flush(&sqlite, &batch)) {
            tracing::debug!(error = %e, rows = batch.len(), "telemetry rows not written");
        }
        batch.clear();
    }
}

async fn flush(sqlite: &SqliteCapability, rows: &[Row]) -> anyhow::Result<()> {
    let db = sqlite.get("default").ok_or_else(|| anyhow::anyhow!("no default database"))?;
    let conn = db.acquire().await?;
    // Writers queue on the database's writer lock (as requests' write
    // transactions do) instead of meeting in SQLite's busy handler, whose
    // millisecond sleeps would show in the requests' latency.
    let writer = db.writer.clone();
    let _turn = writer.lock().await;
    let result = async {
        let tx = conn.conn.transaction().await?;
        let stmt = tx
            .prepare(
                "INSERT INTO memory_request_telemetry (tenant_id, endpoint, status_code, latency_ms, request_id, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .await?;
        for r in rows {
            stmt.execute(libsql::params![
                r.tenant_id.clone(),
                r.endpoint,
                r.status as i64,
                r.latency_ms,
                r.request_id.clone(),
                r.created_at.clone()
            ])
            .await?;
            stmt.reset();
        }
        drop(stmt);
        tx.commit().await?;
        anyhow::Ok(())
    }
    .await;
    db.release(conn);
    result
}

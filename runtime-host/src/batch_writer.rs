//! Rows written in batches by one background thread, never on the request
//! path: request telemetry and recall audit rows ([`Bookkeeping`]). A
//! request queues its rows (dropped, with a warning, when the queue is
//! full); the thread writes them in batches of up to 500 rows, each batch
//! gathered for 0.5 s after its first row. A crash loses at most what was
//! queued and not yet written (≤ 0.5 s of rows) —
//! bookkeeping, never a memory write. One thread for every kind of row, so
//! one commit per flush: each commit makes every reading connection reload
//! what it had cached, and two writers flushing on their own clocks doubled
//! the recalls that paid for it (measured: recall p95 +2–3 ms at c=1), and
//! gathering for 0.5 s instead of writing whatever was queued (which, under
//! load, committed after nearly every request) keeps it to two commits a
//! second.

use crate::host_db::HostDb;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

const QUEUE: usize = 50_000;
const BATCH: usize = 500;
/// How long a batch gathers rows after its first one.
const GATHER: Duration = Duration::from_millis(500);

/// A row some table takes.
pub trait BatchRow: Send + 'static {
    /// One row's INSERT, with `?` for [`BatchRow::params`].
    const INSERT: &'static str;
    fn params(&self) -> Vec<libsql::Value>;
}

/// Every row the host writes off the request path.
pub enum Bookkeeping {
    Telemetry(crate::telemetry::Row),
    RecallAudit(crate::recall_audit::Row),
}

impl Bookkeeping {
    fn insert(&self) -> &'static str {
        match self {
            Bookkeeping::Telemetry(_) => crate::telemetry::Row::INSERT,
            Bookkeeping::RecallAudit(_) => crate::recall_audit::Row::INSERT,
        }
    }
    fn params(&self) -> Vec<libsql::Value> {
        match self {
            Bookkeeping::Telemetry(r) => r.params(),
            Bookkeeping::RecallAudit(r) => r.params(),
        }
    }
}

/// The sending side, cloned into every request.
#[derive(Clone)]
pub struct BatchWriter {
    tx: SyncSender<Bookkeeping>,
    /// `CAIRN_TELEMETRY=0` turns request telemetry off.
    telemetry: bool,
}

impl BatchWriter {
    /// Starts the writer thread on the host's database.
    pub fn start(db: HostDb) -> BatchWriter {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("cairn-bookkeeping".into())
            .spawn({
                // Only a multi-thread runtime drives its I/O for a thread
                // outside it.
                let runtime = tokio::runtime::Handle::try_current()
                    .ok()
                    .filter(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
                move || writer(db, rx, runtime)
            })
            .expect("spawning the bookkeeping writer");
        BatchWriter { tx, telemetry: !std::env::var("CAIRN_TELEMETRY").is_ok_and(|v| v == "0") }
    }

    pub fn telemetry(&self, row: crate::telemetry::Row) {
        if self.telemetry {
            self.record(Bookkeeping::Telemetry(row));
        }
    }

    pub fn recall_audit(&self, row: crate::recall_audit::Row) {
        self.record(Bookkeeping::RecallAudit(row));
    }

    fn record(&self, row: Bookkeeping) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(row) {
            tracing::warn!("bookkeeping queue full; dropping a row");
        }
    }
}

fn writer(db: HostDb, rx: Receiver<Bookkeeping>, runtime: Option<tokio::runtime::Handle>) {
    // Flushes run on the server's runtime when there is one: a pooled
    // PostgreSQL connection's I/O task lives on the runtime that opened it,
    // and requests reuse the connection (a private runtime would leave it
    // stalled between flushes).
    let own;
    let rt = match runtime {
        Some(h) => h,
        None => {
            let Ok(r) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            own = r;
            own.handle().clone()
        }
    };
    let mut batch: Vec<Bookkeeping> = Vec::with_capacity(BATCH);
    loop {
        // A batch starts with a row and gathers for GATHER (or until full):
        // at most two commits a second however busy the server is, where
        // flushing whatever was queued committed after nearly every request.
        let Ok(first) = rx.recv() else { return };
        batch.push(first);
        let deadline = Instant::now() + GATHER;
        let mut open = true;
        while batch.len() < BATCH {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left) {
                Ok(r) => batch.push(r),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if let Err(e) = rt.block_on(flush(&db, &batch)) {
            tracing::debug!(error = %e, rows = batch.len(), "bookkeeping rows not written");
        }
        batch.clear();
        if !open {
            return;
        }
    }
}

/// One transaction; rows of one kind share a prepared statement.
async fn flush(db: &HostDb, rows: &[Bookkeeping]) -> anyhow::Result<()> {
    let groups: Vec<(&str, Vec<Vec<libsql::Value>>)> =
        [crate::telemetry::Row::INSERT, crate::recall_audit::Row::INSERT]
            .into_iter()
            .map(|kind| (kind, rows.iter().filter(|r| r.insert() == kind).map(Bookkeeping::params).collect::<Vec<_>>()))
            .filter(|(_, of_kind)| !of_kind.is_empty())
            .collect();
    db.insert_rows(&groups).await
}

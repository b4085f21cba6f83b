//! Where guests run: reads on a lane of their own; writes and derivation
//! on the threads that serve HTTP.
//!
//! A guest keeps its thread until it awaits something that is not ready,
//! and a recall computes for ~10 ms without that (SQLite calls complete in
//! place). When every guest ran on the runtime that also serves the
//! connections, a write's request was not even read until the worker
//! threads had run every recall queued ahead of it: with 16 clients
//! recalling at 10k memories a write took 62–77 ms at p50. (With writes
//! alone moved to threads of their own it still took 98 ms, of which the
//! server counted 9.5 ms: the rest was waiting to be read.) So:
//!
//! - every request's guest but a write's (reads, admin and control calls)
//!   runs on the *guest lane*, a runtime of its own;
//! - the main runtime serves connections and runs writes (the telemetry's
//!   class `write`: memory writes, sessions, events, pack imports), which
//!   are short. It is never busy with a recall, so a write is read and
//!   run at once, on a thread the OS schedules beside the guest lane's:
//!   it waits for its share of a core, not for the recalls ahead of it.
//!   The write lock still orders writers (`sqlite/host.rs`). Writes stay
//!   on the serving threads because a hop to another runtime costs a
//!   thread wake-up each way (measured: write p95 at c=1 1.2 → 3.1 ms).
//! - Cron ticks (derivation) stay on the main runtime too, a task among
//!   the writes: on a lane's thread of their own the OS gave them a full
//!   thread's share of the cores, and writes at c=8 fell from ~930 to
//!   680/s. Their CPU-heavy part, the embedder, already runs on a niced
//!   thread of its own (docs/derivation.md).
//!
//! `--guest-threads 0` runs every guest on the main runtime, as before.

use anyhow::{Context, Result};
use std::future::Future;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// The guest lane, or none (its guests run on the caller's runtime).
pub struct Lanes {
    guests: Option<Runtime>,
}

impl Lanes {
    /// A guest lane of `threads` worker threads (0: none).
    pub fn new(threads: usize) -> Result<Lanes> {
        if threads == 0 {
            return Ok(Lanes { guests: None });
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("cairn-guest")
            .enable_all()
            .build()
            .context("starting the guest lane's runtime")?;
        Ok(Lanes { guests: Some(rt) })
    }

    /// The default size: one thread per core.
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }

    /// Whether a request to `path` is a write (runs where it was read).
    pub fn is_write(path: &str) -> bool {
        crate::telemetry::endpoint_of(path) == Some("write")
    }

    /// Spawns the guest serving a request to `path`: a write on the
    /// current (serving) runtime, anything else on the guest lane.
    pub fn spawn_request<F>(&self, path: &str, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if Lanes::is_write(path) { tokio::spawn(task) } else { self.spawn_guest(task) }
    }

    /// Spawns a guest on the guest lane.
    pub fn spawn_guest<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.guests {
            Some(rt) => rt.spawn(task),
            None => tokio::spawn(task),
        }
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        // The app may be dropped inside the main runtime (benches, tests),
        // where a runtime cannot block to shut down; in-flight requests
        // have finished by then (graceful shutdown waits for them).
        if let Some(rt) = self.guests.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_name() -> Option<String> {
        std::thread::current().name().map(str::to_string)
    }

    #[test]
    fn writes_are_the_telemetry_write_class() {
        assert!(Lanes::is_write("/v1/memory/write"));
        assert!(Lanes::is_write("/v1/memory/events"));
        assert!(!Lanes::is_write("/v1/memory/recall_text"));
        assert!(!Lanes::is_write("/v1/admin/control/tenants"));
    }

    #[tokio::test]
    async fn reads_run_on_the_guest_lane_and_writes_where_they_were_read() {
        let lanes = Lanes::new(1).unwrap();
        let here = thread_name();
        let on = |path: &'static str| lanes.spawn_request(path, async { thread_name() });
        assert_eq!(on("/v1/memory/recall").await.unwrap().as_deref(), Some("cairn-guest"));
        assert_eq!(on("/v1/memory/write").await.unwrap(), here);
        assert_eq!(lanes.spawn_guest(async { thread_name() }).await.unwrap().as_deref(), Some("cairn-guest"));
        let none = Lanes::new(0).unwrap();
        assert_eq!(none.spawn_request("/v1/memory/recall", async { thread_name() }).await.unwrap(), here);
        drop(lanes); // inside a runtime: must not panic
    }
}

//! Derivation yields the CPU to requests, as it yields the write lock.
//!
//! While any request is in flight, a background instance (derivation's
//! cron ticks, verbs and admin routes: [`Priority::Background`]) may use
//! about `share` of the time it runs: at each host call it makes outside a
//! write transaction it owes a pause of `ran · (1 − share) / share`, where
//! `ran` is how long it ran since its last call, and sleeps once the debt
//! reaches [`MIN_PAUSE`] (tokio's timer has a 1 ms grain), at most
//! [`MAX_PAUSE`] at a time. With no request in flight it owes nothing and
//! runs flat out. It never pauses while it holds the write lock (inside
//! `BEGIN IMMEDIATE … COMMIT`), so a paused tick cannot hold up a write.
//! An instance's pauses add up to at most a quarter of its time limit
//! (`--request-timeout-secs`; its epoch deadline counts them), so pacing
//! cannot make a tick time out.
//!
//! Why: on a 2-core machine a derivation tick (clustering, index upkeep,
//! its SQLite work) ran at full speed beside recalls and took about a
//! third of their throughput (docs/derivation.md, "Who goes first"). The
//! MiniLM batches themselves run on a niced thread (`llm`), which the
//! kernel already puts last; their time is not counted here.
//!
//! Under a request stream that never stops, derivation still advances at
//! about `share` of one core, and its backlog shows in `/metrics`
//! (`cairn_outbox_backlog_jobs`) and the outbox alerts.
//!
//! [`Priority::Background`]: crate::state::Priority::Background

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The smallest pause taken (smaller debts wait to add up).
pub const MIN_PAUSE: Duration = Duration::from_millis(2);
/// The longest single pause (a debt larger than this is forgiven: it came
/// from one long stretch, and the next calls start a fresh count).
pub const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Requests in flight, and the share of time background work may take
/// while there are any.
#[derive(Debug)]
pub struct Pacing {
    requests: AtomicUsize,
    share: f64,
}

impl Pacing {
    /// `share` in (0, 1]; 1 turns pacing off.
    pub fn new(share: f64) -> Arc<Pacing> {
        Arc::new(Pacing { requests: AtomicUsize::new(0), share: share.clamp(0.01, 1.0) })
    }

    /// Counts a request as in flight until the guard drops.
    pub fn request(self: &Arc<Pacing>) -> RequestGuard {
        self.requests.fetch_add(1, Ordering::AcqRel);
        RequestGuard(self.clone())
    }

    fn busy(&self) -> bool {
        self.requests.load(Ordering::Acquire) > 0
    }

    /// A clock for one background instance that may run for `time_limit`.
    pub fn clock(self: &Arc<Pacing>, time_limit: Duration) -> PaceClock {
        PaceClock {
            pacing: self.clone(),
            since: Instant::now(),
            owed: Duration::ZERO,
            pauses_left: time_limit / 4,
        }
    }
}

/// A request in flight (see [`Pacing::request`]).
pub struct RequestGuard(Arc<Pacing>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One background instance's running time and the pause it owes.
pub struct PaceClock {
    pacing: Arc<Pacing>,
    since: Instant,
    owed: Duration,
    /// What this instance may still spend paused.
    pauses_left: Duration,
}

/// The debt after running `ran` with `owed` already due, at `share`:
/// the pause to take now (zero while below [`MIN_PAUSE`]) and what stays
/// owed. Pure, for the tests.
pub fn settle(owed: Duration, ran: Duration, share: f64) -> (Duration, Duration) {
    let owed = owed + ran.mul_f64((1.0 - share) / share);
    if owed < MIN_PAUSE {
        (Duration::ZERO, owed)
    } else {
        (owed.min(MAX_PAUSE), Duration::ZERO)
    }
}

impl PaceClock {
    /// Called at a host call outside a write transaction: sleeps off the
    /// debt when a request is in flight.
    pub async fn pace(&mut self) {
        let ran = self.since.elapsed();
        if self.pacing.share >= 1.0 || !self.pacing.busy() || self.pauses_left.is_zero() {
            self.owed = Duration::ZERO;
        } else {
            let (pause, owed) = settle(self.owed, ran, self.pacing.share);
            let pause = pause.min(self.pauses_left);
            self.owed = owed;
            if !pause.is_zero() {
                self.pauses_left -= pause;
                tokio::time::sleep(pause).await;
            }
        }
        self.since = Instant::now();
    }

    /// Starts a fresh count: after work that is not paced here (an
    /// embedding batch on the niced thread).
    pub fn restart(&mut self) {
        self.since = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_quarter_share_owes_three_times_what_it_ran() {
        assert_eq!(settle(Duration::ZERO, 4 * MS, 0.25), (12 * MS, Duration::ZERO));
    }

    #[test]
    fn small_debts_add_up_before_a_pause() {
        let (pause, owed) = settle(Duration::ZERO, Duration::from_micros(300), 0.25);
        assert_eq!((pause, owed), (Duration::ZERO, Duration::from_micros(900)));
        let (pause, owed) = settle(owed, Duration::from_micros(400), 0.25);
        assert_eq!((pause, owed), (Duration::from_micros(2100), Duration::ZERO));
    }

    #[test]
    fn one_pause_is_bounded() {
        assert_eq!(settle(Duration::ZERO, 100 * MS, 0.25), (MAX_PAUSE, Duration::ZERO));
    }

    #[test]
    fn a_full_share_owes_nothing() {
        assert_eq!(settle(Duration::ZERO, 100 * MS, 1.0), (Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn requests_in_flight_are_counted_until_they_finish() {
        let p = Pacing::new(0.25);
        assert!(!p.busy());
        let a = p.request();
        let b = p.request();
        drop(a);
        assert!(p.busy());
        drop(b);
        assert!(!p.busy());
    }

    /// With no request in flight a background instance never sleeps, and
    /// its debt is forgiven (no paused clock: tokio's would auto-advance).
    #[tokio::test(flavor = "current_thread")]
    async fn an_idle_server_lets_background_work_run_flat_out() {
        let p = Pacing::new(0.25);
        let mut c = p.clock(Duration::from_secs(60));
        c.owed = 40 * MS;
        c.pace().await;
        assert_eq!(c.owed, Duration::ZERO);
        assert_eq!(c.pauses_left, Duration::from_secs(15));
    }

    /// Once its pauses reach a quarter of its time limit, an instance
    /// runs unpaced (so pacing cannot make it time out).
    #[tokio::test(flavor = "current_thread")]
    async fn pauses_stop_at_a_quarter_of_the_time_limit() {
        let p = Pacing::new(0.25);
        let _busy = p.request();
        let mut c = p.clock(Duration::from_millis(8));
        c.owed = 40 * MS;
        c.pace().await;
        assert_eq!(c.pauses_left, Duration::ZERO, "the 2 ms allowed were spent");
        c.owed = 40 * MS;
        c.pace().await;
        assert_eq!(c.owed, Duration::ZERO, "no more debt once the allowance is spent");
    }
}

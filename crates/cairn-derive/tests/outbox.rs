//! The outbox queue's SQL against a real (in-memory) SQLite: fenced claims
//! and their takeover after the claim timeout, fair turns across scopes,
//! backoff, dead-lettering.

use cairn_derive::outbox::{self, ClaimFilter, FailOutcome};
use cairn_derive::settings::DeriveSettings;
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::{Sql, write_txn};
use serde_json::json;

type Mem = NativeSqlite;

const T0: i64 = 1_800_000_000_000;

fn db_with_jobs(jobs: &[(&str, usize)]) -> Mem {
    let db = NativeSqlite::in_memory();
    cairn_memory::schema::ensure(&db, "2026-11-22T00:00:00.000Z").unwrap();
    for (scope, n) in jobs {
        for i in 0..*n {
            let payload = json!({"nodes": [{"id": format!("{scope}-{i}"), "text": "t"}]});
            cairn_memory::write_path::enqueue(
                &db,
                scope,
                &format!("c-{scope}-{i}"),
                "embed_nodes",
                &payload,
                "2026-11-22T00:00:00.000Z",
            )
            .unwrap();
        }
    }
    db
}

fn settings() -> DeriveSettings {
    DeriveSettings {
        max_attempts: 3,
        retry_base_ms: 1000,
        retry_max_ms: 4000,
        claim_timeout_ms: 60_000,
        ..Default::default()
    }
}

fn claim(db: &Mem, s: &DeriveSettings, batch: i64, now: i64, token: &str) -> Vec<outbox::Job> {
    write_txn(db, |db| outbox::claim(db, s, &ClaimFilter::default(), batch, now, token)).unwrap()
}

#[test]
fn a_claim_is_exclusive_until_it_expires_and_then_the_old_holder_is_fenced_out() {
    let db = db_with_jobs(&[("a", 3)]);
    let s = settings();
    let first = claim(&db, &s, 10, T0, "w1");
    assert_eq!(first.len(), 3);
    assert!(claim(&db, &s, 10, T0 + 1000, "w2").is_empty(), "claimed jobs are not handed out twice");
    // After the claim timeout another worker takes them over...
    let taken = claim(&db, &s, 10, T0 + 61_000, "w3");
    assert_eq!(taken.len(), 3);
    assert!(taken.iter().all(|j| j.attempts == 2));
    // ...and the first worker's late results change nothing.
    let now = "2026-11-22T00:01:01.000Z";
    assert!(!outbox::finish(&db, &first[0], &json!({}), now).unwrap());
    assert_eq!(outbox::fail(&db, &s, &first[1], true, "late", T0 + 62_000).unwrap(), FailOutcome::ClaimLost);
    assert!(outbox::finish(&db, &taken[0], &json!({"ok": true}), now).unwrap());
    assert!(!outbox::finish(&db, &taken[0], &json!({"ok": true}), now).unwrap(), "finishing twice is refused");
}

#[test]
fn failures_back_off_exponentially_then_dead_letter() {
    let db = db_with_jobs(&[("a", 1)]);
    let s = settings();
    let j = claim(&db, &s, 1, T0, "w")[0].clone();
    assert_eq!(outbox::fail(&db, &s, &j, true, "down", T0).unwrap(), FailOutcome::Retrying);
    assert!(claim(&db, &s, 1, T0 + 999, "w").is_empty(), "backing off for retry_base_ms");
    let j = claim(&db, &s, 1, T0 + 1000, "w")[0].clone();
    assert_eq!(j.attempts, 2);
    assert_eq!(outbox::fail(&db, &s, &j, true, "down", T0 + 1000).unwrap(), FailOutcome::Retrying);
    assert!(claim(&db, &s, 1, T0 + 2999, "w").is_empty(), "then twice as long");
    let j = claim(&db, &s, 1, T0 + 3000, "w")[0].clone();
    assert_eq!(outbox::fail(&db, &s, &j, true, "down", T0 + 3000).unwrap(), FailOutcome::DeadLettered);
    assert!(claim(&db, &s, 1, T0 + 100_000, "w").is_empty());
    let r = db.query_one("SELECT failed_reason, attempts FROM memory_outbox", &[]).unwrap().unwrap();
    assert_eq!((r.string(0).as_str(), r.int(1)), ("max_attempts_exceeded: down", 3));
}

#[test]
fn a_fatal_failure_dead_letters_at_once_and_the_sweep_catches_abandoned_jobs() {
    let db = db_with_jobs(&[("a", 2)]);
    let s = settings();
    let jobs = claim(&db, &s, 2, T0, "w");
    assert_eq!(outbox::fail(&db, &s, &jobs[0], false, "bad input", T0).unwrap(), FailOutcome::DeadLettered);
    // The second job's worker dies; after three abandoned claims the sweep dead-letters it.
    claim(&db, &s, 2, T0 + 61_000, "w2");
    claim(&db, &s, 2, T0 + 122_000, "w3");
    assert_eq!(outbox::sweep(&db, &s, T0 + 150_000).unwrap(), 0, "still claimed");
    assert_eq!(outbox::sweep(&db, &s, T0 + 183_000).unwrap(), 1);
    let reasons: Vec<String> = db
        .query("SELECT failed_reason FROM memory_outbox ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.string(0))
        .collect();
    assert_eq!(reasons, ["fatal: bad input", "max_attempts_exceeded"]);
}

#[test]
fn claims_take_fair_turns_across_scopes() {
    let db = db_with_jobs(&[("big", 50), ("small-1", 2), ("small-2", 1)]);
    let s = settings();
    let jobs = claim(&db, &s, 6, T0, "w");
    let count = |sc: &str| jobs.iter().filter(|j| j.scope == sc).count();
    // Shares of ceil(6/3) = 2 first (small-2 has only 1), the one slot left
    // to a scope that filled its share.
    assert_eq!((count("big"), count("small-1"), count("small-2")), (3, 2, 1));
    // Leftover capacity goes to the scope with more waiting.
    let jobs = claim(&db, &s, 10, T0, "w2");
    assert_eq!(jobs.len(), 10);
    assert!(jobs.iter().all(|j| j.scope == "big"));
}

/// A claim limited to a tenant takes every scope of that tenant and no
/// other's: the default tenant's keys are the raw scope names, another
/// tenant's `tenant:<id>::scope:<scope>` — exactly (a tenant whose id
/// differs only in case, or extends it, is another tenant).
#[test]
fn a_tenant_claim_takes_every_scope_of_that_tenant_only() {
    let scopes = [
        "a",
        "tenant;x",
        "zz",
        "tenant:acme::scope:p",
        "tenant:acme::scope:q",
        "tenant:ACME::scope:p",
        "tenant:acme.2::scope:p",
        "tenant:beta::scope:p",
    ];
    let jobs: Vec<(&str, usize)> = scopes.iter().map(|s| (*s, 2)).collect();
    let s = settings();
    let d = &s.kernel.defaults;
    let scopes_claimed = |db: &Mem, filter: &ClaimFilter, token: &str| {
        let jobs = write_txn(db, |db| outbox::claim(db, &s, filter, 100, T0, token)).unwrap();
        let mut got: Vec<String> = jobs.iter().map(|j| j.scope.clone()).collect();
        got.dedup();
        got.sort();
        (jobs.len(), got)
    };

    // The round-robin cursor (the scope served last) inside the tenant's
    // keys: the walk wraps around to the ones before it.
    let cursor = |db: &Mem, at: &str| {
        db.exec("INSERT INTO memory_derive_state (name, value) VALUES ('claim_cursor', ?)", &[at.into()]).unwrap()
    };
    let db = db_with_jobs(&jobs);
    cursor(&db, "tenant:acme::scope:p");
    let (n, got) = scopes_claimed(&db, &ClaimFilter::tenant("acme", d), "w1");
    assert_eq!((n, got), (4, vec!["tenant:acme::scope:p".to_string(), "tenant:acme::scope:q".to_string()]));
    assert_eq!(scopes_claimed(&db, &ClaimFilter::tenant("acme", d), "w2").0, 0, "nothing left of acme");

    let db = db_with_jobs(&jobs);
    cursor(&db, "tenant;x");
    let (n, got) = scopes_claimed(&db, &ClaimFilter::tenant("default", d), "w3");
    assert_eq!((n, got), (6, vec!["a".to_string(), "tenant;x".into(), "zz".into()]));
    // The other tenants' jobs are all still there.
    let (n, got) = scopes_claimed(&db, &ClaimFilter::default(), "w4");
    assert_eq!(n, 10);
    assert!(got.iter().all(|sc| sc.starts_with("tenant:")), "{got:?}");
}

#[test]
fn a_tick_takes_tenant_id_alone_or_with_its_scope() {
    use cairn_derive::tick::TickOptions;
    let s = settings();
    let o = TickOptions::parse(&json!({"tenant_id": "acme"}), &s).unwrap();
    assert_eq!(o.filter.scope, None);
    assert_eq!(o.filter.key_ranges, cairn_core::tenant_scope::tenant_key_ranges("acme", &s.kernel.defaults));
    let o = TickOptions::parse(&json!({"tenant_id": "acme", "scope": "p"}), &s).unwrap();
    assert_eq!(o.filter.scope.as_deref(), Some("tenant:acme::scope:p"));
    let o = TickOptions::parse(&json!({"scope": "p"}), &s).unwrap();
    assert_eq!(o.filter.scope.as_deref(), Some("p"));
    let o = TickOptions::parse(&json!({}), &s).unwrap();
    assert!(o.filter.scope.is_none() && o.filter.key_ranges.is_empty());
    let e = TickOptions::parse(&json!({"tenant_id": "no spaces"}), &s).unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (400, "invalid_tenant_id"));
}

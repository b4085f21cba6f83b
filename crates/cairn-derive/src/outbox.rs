//! The outbox as a job queue: claiming with fair turns across scopes,
//! fencing, completion, backoff and dead-lettering.
//!
//! A job is *pending* (`published_at` and `failed_at` null) until it is done
//! (`published_at`) or dead-lettered (`failed_at`, `failed_reason`). A claim
//! sets `claimed_at`, a fresh `claim_token` and `attempts + 1`; every later
//! update of the job names that token (`WHERE id = ? AND claim_token = ?`),
//! so a worker whose claim expired and was taken over changes nothing. A
//! retryable failure releases the claim and sets `next_attempt_at` (backoff);
//! a job whose attempts reach the limit, or that fails for good, is
//! dead-lettered with its reason.

use crate::settings::DeriveSettings;
use cairn_core::ApiError;
use cairn_core::tenant_scope::{KeyRange, ScopeDefaults};
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::{Sql, SqlValue, placeholders};
use serde_json::Value;

/// Name under which the worker remembers the scope it served last.
const CURSOR: &str = "claim_cursor";
/// Most scopes served in one claim.
const MAX_SCOPES_PER_CLAIM: i64 = 64;

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub scope: String,
    pub commit_id: String,
    pub event_type: String,
    pub payload: Value,
    pub payload_sha256: String,
    pub job_key: String,
    /// Attempts including this one.
    pub attempts: i64,
    pub claim_token: String,
}

impl Job {
    /// The payload's list of strings under `key` (node, event or topic ids);
    /// empty when absent, non-strings skipped.
    pub fn payload_strings(&self, key: &str) -> Vec<String> {
        self.payload
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }
}

/// Which jobs a claim may take.
#[derive(Debug, Clone, Default)]
pub struct ClaimFilter {
    /// Only this scope key.
    pub scope: Option<String>,
    /// Only scope keys in these ranges (a tenant's: `tenant_key_ranges`);
    /// empty: every key.
    pub key_ranges: Vec<KeyRange>,
}

impl ClaimFilter {
    /// Every scope of `tenant_id`.
    pub fn tenant(tenant_id: &str, defaults: &ScopeDefaults) -> ClaimFilter {
        ClaimFilter { scope: None, key_ranges: cairn_core::tenant_scope::tenant_key_ranges(tenant_id, defaults) }
    }
}

const PENDING: &str = "published_at IS NULL AND failed_at IS NULL";

/// Dead-letters jobs that used up their attempts without finishing (their
/// last worker died mid-job). Returns how many.
pub fn sweep(db: &dyn Sql, s: &DeriveSettings, now_ms: i64) -> Result<i64, ApiError> {
    let now = rfc3339_millis(now_ms);
    let rows = db.query(
        &format!(
            "UPDATE memory_outbox SET failed_at = ?1, failed_reason = 'max_attempts_exceeded', claimed_at = NULL, \
             claim_token = NULL WHERE {PENDING} AND attempts >= ?2 AND (claimed_at IS NULL OR claimed_at <= ?3) RETURNING id"
        ),
        &[now.into(), s.max_attempts.into(), rfc3339_millis(now_ms - s.claim_timeout_ms).into()],
    )?;
    Ok(rows.len() as i64)
}

/// Scopes with pending jobs in `ranges` (empty: all), starting after
/// `cursor` and wrapping around.
fn pending_scopes(db: &dyn Sql, cursor: &str, ranges: &[KeyRange]) -> Result<Vec<String>, ApiError> {
    // The pending scopes of one range, from after `after` (else from the
    // range's start); each step is one seek in the (scope, id) partial index.
    let walk = |r: &KeyRange, after: Option<&str>, limit: i64| -> Result<Vec<String>, ApiError> {
        let (op, from) = match after {
            Some(c) if c >= r.lo.as_str() => (">", c),
            _ => (">=", r.lo.as_str()),
        };
        if r.hi.as_deref().is_some_and(|hi| from >= hi) {
            return Ok(Vec::new());
        }
        let below = if r.hi.is_some() { " AND scope < ?3" } else { "" };
        let mut params: Vec<SqlValue> = vec![from.into(), limit.into()];
        params.extend(r.hi.as_deref().map(SqlValue::from));
        let rows = db.query(
            &format!(
                "WITH RECURSIVE s(scope, n) AS ( \
                   SELECT (SELECT scope FROM memory_outbox WHERE {PENDING} AND scope {op} ?1{below} ORDER BY scope LIMIT 1), 1 \
                   UNION ALL \
                   SELECT (SELECT scope FROM memory_outbox WHERE {PENDING} AND scope > s.scope{below} ORDER BY scope LIMIT 1), n + 1 \
                   FROM s WHERE s.scope IS NOT NULL AND n < ?2) \
                 SELECT scope FROM s WHERE scope IS NOT NULL"
            ),
            &params,
        )?;
        Ok(rows.iter().map(|r| r.string(0)).collect())
    };
    let all = [KeyRange::all()];
    let ranges = if ranges.is_empty() { &all[..] } else { ranges };
    let room = |scopes: &Vec<String>| MAX_SCOPES_PER_CLAIM - scopes.len() as i64;
    let mut scopes = Vec::new();
    for r in ranges {
        if room(&scopes) <= 0 {
            break;
        }
        scopes.extend(walk(r, Some(cursor), room(&scopes))?);
    }
    if room(&scopes) > 0 && !cursor.is_empty() {
        'wrap: for r in ranges {
            if room(&scopes) <= 0 {
                break;
            }
            for s in walk(r, None, room(&scopes))? {
                if s.as_str() > cursor || scopes.contains(&s) {
                    break 'wrap;
                }
                scopes.push(s);
            }
        }
    }
    Ok(scopes)
}

/// Claims up to `batch` eligible jobs in one write transaction, taking
/// turns across scopes (each scope gets an equal share first; what is left
/// goes to scopes with more waiting). `token` fences the claim.
///
/// Run it in a [`cairn_spin::sql::rows_write_txn`]: on PostgreSQL the
/// eligible jobs are locked as they are read and jobs another worker is
/// claiming are passed over (`FOR UPDATE SKIP LOCKED`), so instances claim
/// side by side, never the same job, without the whole-database lock.
pub fn claim(
    db: &dyn Sql,
    s: &DeriveSettings,
    filter: &ClaimFilter,
    batch: i64,
    now_ms: i64,
    token: &str,
) -> Result<Vec<Job>, ApiError> {
    let now = rfc3339_millis(now_ms);
    let now = now.as_str();
    let cursor = db
        .query_one("SELECT value FROM memory_derive_state WHERE name = ?", &[CURSOR.into()])?
        .map(|r| r.string(0))
        .unwrap_or_default();
    let scopes = match &filter.scope {
        Some(sc) => vec![sc.clone()],
        None => pending_scopes(db, &cursor, &filter.key_ranges)?,
    };
    if scopes.is_empty() {
        return Ok(Vec::new());
    }
    let expiry = rfc3339_millis(now_ms - s.claim_timeout_ms);
    let eligible = |scope: &str, skip: &[i64], limit: i64| -> Result<Vec<i64>, ApiError> {
        let mut params: Vec<SqlValue> = vec![scope.into(), now.into(), expiry.clone().into(), s.max_attempts.into()];
        let not_in = if skip.is_empty() {
            String::new()
        } else {
            params.extend(skip.iter().map(|i| SqlValue::Integer(*i)));
            format!(" AND id NOT IN ({})", placeholders(skip.len()))
        };
        params.push(limit.into());
        let rows = db.query(
            &format!(
                "SELECT id FROM memory_outbox WHERE scope = ? AND {PENDING} \
                 AND (next_attempt_at IS NULL OR next_attempt_at <= ?) AND (claimed_at IS NULL OR claimed_at <= ?) \
                 AND attempts < ?{not_in} ORDER BY id LIMIT ?{}",
                db.dialect().lock_skipping_locked()
            ),
            &params,
        )?;
        Ok(rows.iter().map(|r| r.int(0)).collect())
    };
    let share = (batch + scopes.len() as i64 - 1) / scopes.len() as i64;
    let mut picked: Vec<(usize, Vec<i64>)> = Vec::new();
    let mut total = 0i64;
    for (i, scope) in scopes.iter().enumerate() {
        if total >= batch {
            break;
        }
        let ids = eligible(scope, &[], share.min(batch - total))?;
        total += ids.len() as i64;
        picked.push((i, ids));
    }
    // Leftover capacity to scopes that filled their share.
    for (i, ids) in picked.iter_mut() {
        if total >= batch {
            break;
        }
        if (ids.len() as i64) < share {
            continue;
        }
        let more = eligible(&scopes[*i], ids, batch - total)?;
        total += more.len() as i64;
        ids.extend(more);
    }
    let ids: Vec<i64> = picked.iter().flat_map(|(_, ids)| ids.iter().copied()).collect();
    if let Some((last, _)) = picked.iter().rev().find(|(_, ids)| !ids.is_empty())
        && filter.scope.is_none()
    {
        remember_cursor(db, &scopes[*last])?;
    }
    let mut jobs = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(400) {
        let mut params: Vec<SqlValue> = vec![now.into(), token.into()];
        params.extend(chunk.iter().map(|i| SqlValue::Integer(*i)));
        let rows = db.query(
            &format!(
                "UPDATE memory_outbox SET claimed_at = ?, claim_token = ?, attempts = attempts + 1 \
                 WHERE id IN ({}) RETURNING id, scope, commit_id, event_type, payload, payload_sha256, job_key, attempts",
                placeholders(chunk.len())
            ),
            &params,
        )?;
        for r in rows {
            jobs.push(Job {
                id: r.int(0),
                scope: r.string(1),
                commit_id: r.string(2),
                event_type: r.string(3),
                payload: serde_json::from_str(r.text(4).unwrap_or("null")).unwrap_or(Value::Null),
                payload_sha256: r.string(5),
                job_key: r.string(6),
                attempts: r.int(7),
                claim_token: token.to_string(),
            });
        }
    }
    // Oldest first within the batch; embeds before the clustering they feed.
    jobs.sort_by_key(|j| (j.event_type != "embed_nodes", j.id));
    Ok(jobs)
}

/// Remembers the scope a claim served last, where the next claim starts.
/// The cursor only spreads turns fairly, so on PostgreSQL a claim does not
/// wait for another claim's update of it: it passes over the locked row
/// (that claim's cursor wins) rather than queue every instance's claims
/// behind one row.
fn remember_cursor(db: &dyn Sql, scope: &str) -> Result<(), ApiError> {
    let upsert = "INSERT INTO memory_derive_state (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value";
    if db.dialect() == cairn_spin::sql::Dialect::Sqlite {
        return db.exec(upsert, &[CURSOR.into(), scope.into()]);
    }
    let updated = db.query(
        "UPDATE memory_derive_state SET value = ?2 WHERE name IN \
         (SELECT name FROM memory_derive_state WHERE name = ?1 FOR UPDATE SKIP LOCKED) RETURNING 1",
        &[CURSOR.into(), scope.into()],
    )?;
    // Not updated: locked by another claim (which wins), or absent (the
    // first claim ever). A plain read tells them apart without waiting; an
    // insert would wait for the other claim's update to commit.
    let exists = || db.query_one("SELECT 1 FROM memory_derive_state WHERE name = ?1", &[CURSOR.into()]);
    if updated.is_empty() && exists()?.is_none() {
        db.exec(
            "INSERT INTO memory_derive_state (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            &[CURSOR.into(), scope.into()],
        )?;
    }
    Ok(())
}

/// Marks a job done with its outcome, if this worker still holds the claim.
/// Returns `false` (and changes nothing) when the claim was lost.
pub fn finish(db: &dyn Sql, job: &Job, result: &Value, now: &str) -> Result<bool, ApiError> {
    let rows = db.query(
        "UPDATE memory_outbox SET published_at = ?, result = ?, claimed_at = NULL, claim_token = NULL, last_error = NULL, \
         next_attempt_at = NULL WHERE id = ? AND claim_token = ? RETURNING id",
        &[now.into(), result.to_string().into(), job.id.into(), (&job.claim_token).into()],
    )?;
    Ok(!rows.is_empty())
}

/// What became of a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Released with a backoff; it will be claimed again.
    Retrying,
    /// Dead-lettered.
    DeadLettered,
    /// The claim was lost; nothing changed.
    ClaimLost,
}

/// Records a failure: retryable ones back off until the attempt limit,
/// then (like fatal ones) dead-letter.
pub fn fail(
    db: &dyn Sql,
    s: &DeriveSettings,
    job: &Job,
    retryable: bool,
    message: &str,
    now_ms: i64,
) -> Result<FailOutcome, ApiError> {
    let now = rfc3339_millis(now_ms);
    let message: String = message.chars().take(1000).collect();
    let rows = if retryable && job.attempts < s.max_attempts {
        let next = rfc3339_millis(now_ms + s.backoff_ms(job.attempts));
        db.query(
            "UPDATE memory_outbox SET claimed_at = NULL, claim_token = NULL, last_error = ?, next_attempt_at = ? \
             WHERE id = ? AND claim_token = ? RETURNING id",
            &[message.clone().into(), next.into(), job.id.into(), (&job.claim_token).into()],
        )?
    } else {
        let reason = if retryable { format!("max_attempts_exceeded: {message}") } else { format!("fatal: {message}") };
        let rows = db.query(
            "UPDATE memory_outbox SET claimed_at = NULL, claim_token = NULL, last_error = ?, failed_at = ?, failed_reason = ? \
             WHERE id = ? AND claim_token = ? RETURNING id",
            &[message.clone().into(), now.into(), reason.into(), job.id.into(), (&job.claim_token).into()],
        )?;
        if rows.is_empty() {
            return Ok(FailOutcome::ClaimLost);
        }
        return Ok(FailOutcome::DeadLettered);
    };
    Ok(if rows.is_empty() { FailOutcome::ClaimLost } else { FailOutcome::Retrying })
}

/// Holds the claim check inside the caller's transaction: `true` if this
/// worker still owns the job. On PostgreSQL the job's row stays locked to
/// the end of that transaction, so no claim can take it over between the
/// check and the commit (a claimer passes it over).
pub fn still_claimed(db: &dyn Sql, job: &Job) -> Result<bool, ApiError> {
    Ok(db
        .query_one(
            &format!("SELECT 1 FROM memory_outbox WHERE id = ? AND claim_token = ?{}", db.dialect().lock_rows()),
            &[job.id.into(), (&job.claim_token).into()],
        )?
        .is_some())
}

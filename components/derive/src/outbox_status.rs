//! The outbox backlog: how many derivation jobs wait, retry, failed or are
//! done, and how old the oldest waiting one is.

use cairn_core::ApiError;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};

/// Counts outbox rows by state. `now` is RFC 3339 (ages are computed in SQL).
pub fn status(db: &dyn Sql, now: &str) -> Result<Value, ApiError> {
    cairn_kernel::schema::ensure(db, now)?;
    let row = db
        .query_one(
            "SELECT \
               count(*) FILTER (WHERE published_at IS NULL AND failed_at IS NULL AND attempts = 0), \
               count(*) FILTER (WHERE published_at IS NULL AND failed_at IS NULL AND attempts > 0), \
               count(*) FILTER (WHERE failed_at IS NOT NULL), \
               count(*) FILTER (WHERE published_at IS NOT NULL), \
               min(created_at) FILTER (WHERE published_at IS NULL AND failed_at IS NULL) \
             FROM memory_outbox",
            &[],
        )?
        .expect("aggregate returns one row");
    let oldest = row.opt_string(4);
    let age = match &oldest {
        Some(t) => db
            .query_one("SELECT CAST((julianday(?) - julianday(?)) * 86400 AS INTEGER)", &[now.into(), t.into()])?
            .map(|r| r.int(0)),
        None => None,
    };
    Ok(json!({
        "ok": true,
        "outbox": {
            "pending": row.int(0),
            "retrying": row.int(1),
            "dead_letter": row.int(2),
            "done": row.int(3),
            "oldest_pending_at": oldest,
            "oldest_pending_age_sec": age,
        },
    }))
}

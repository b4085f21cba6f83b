//! The recall audit (reference `memory_recall_audit`), written off the
//! request path. `cairn` runs the kernel with `memory_recall_audit = host`:
//! a recall hands its audit row back instead of writing it, so a read is
//! never a write transaction (under Spin the kernel writes it itself). The
//! gateway passes the row to the host in a private response header, which
//! the host strips and queues for [`crate::batch_writer`]. A crash loses at
//! most the rows not yet written (≤ 0.5 s of them), never a memory write.

use crate::batch_writer::BatchRow;
use serde_json::Value;

/// The response header carrying a row (hex of its JSON), as the gateway
/// names it (`components/gateway/src/dispatch.rs`, `AUDIT_HEADER`).
pub const HEADER: &str = "x-cairn-recall-audit";

/// One recall's row, as the kernel describes it.
pub struct Row(Value);

impl Row {
    /// Decodes a header value; `None` when it is not a row.
    pub fn from_header(value: &[u8]) -> Option<Row> {
        let json = hex::decode(value).ok()?;
        let v: Value = serde_json::from_slice(&json).ok()?;
        v.get("scope").is_some_and(Value::is_string).then_some(Row(v))
    }
}

impl BatchRow for Row {
    // The kernel's own statement, so both sinks write the same rows.
    const INSERT: &'static str = cairn_core::recall_audit::INSERT_SQL;
    fn params(&self) -> Vec<libsql::Value> {
        use cairn_core::recall_audit::Param;
        cairn_core::recall_audit::params(&self.0)
            .into_iter()
            .map(|p| match p {
                Param::Text(Some(t)) => t.into(),
                Param::Text(None) => libsql::Value::Null,
                Param::Int(i) => libsql::Value::Integer(i),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_from_hex_json_headers() {
        let row = serde_json::json!({"scope": "s", "endpoint": "recall_text", "consumer_agent_id": null,
            "consumer_team_id": "t", "query_sha256": "ab", "seed_count": 3, "node_count": 5, "edge_count": 1,
            "created_at": "2026-12-01T00:00:00.000Z"});
        let r = Row::from_header(hex::encode(row.to_string()).as_bytes()).unwrap();
        let p = r.params();
        assert_eq!(p.len(), 9);
        assert_eq!(p[2], libsql::Value::Null);
        assert_eq!(p[5], libsql::Value::Integer(3));
        assert!(Row::from_header(b"zz").is_none());
        assert!(Row::from_header(hex::encode("{}").as_bytes()).is_none());
    }
}

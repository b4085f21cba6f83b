//! The dashboards' paging cursor (reference §7.6): base64url JSON `{v:1,
//! kind, tenant_id, endpoint, window_hours, baseline_hours?, limit,
//! offset, anchor_utc}`. The anchor pins the snapshot (`created_at <=
//! anchor_utc`), so rows written after the first page never shift a later
//! one. A cursor is bound to its route (`kind`) and its tenant.

use cairn_core::ApiError;
use cairn_core::time_fmt::{parse_rfc3339_millis, rfc3339_millis};
use serde_json::{Value, json};

/// One page's position in a pinned snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct PageCursor {
    pub endpoint: Option<String>,
    pub window_hours: i64,
    /// Key usage only.
    pub baseline_hours: Option<i64>,
    pub limit: i64,
    pub offset: i64,
    pub anchor_ms: i64,
}

/// What a decoded cursor's fields must satisfy.
pub struct Bounds {
    pub max_window_hours: i64,
    pub max_limit: i64,
}

impl PageCursor {
    /// The cursor of the page after this one, `shown` rows later.
    pub fn next(&self, shown: usize) -> PageCursor {
        PageCursor { offset: self.offset + shown as i64, ..self.clone() }
    }

    pub fn encode(&self, kind: &str, tenant: &str) -> String {
        let mut v = json!({"v": 1, "kind": kind, "tenant_id": tenant, "endpoint": self.endpoint,
                           "window_hours": self.window_hours, "limit": self.limit, "offset": self.offset,
                           "anchor_utc": rfc3339_millis(self.anchor_ms)});
        if let Some(b) = self.baseline_hours {
            v["baseline_hours"] = json!(b);
        }
        cairn_core::encoding::base64url_encode(v.to_string().as_bytes())
    }

    /// Reads a cursor this route issued for this tenant; anything else is a
    /// 400 `invalid_request` with the reference's messages.
    pub fn decode(kind: &str, tenant: &str, raw: &str, bounds: &Bounds) -> Result<PageCursor, ApiError> {
        let bad = |m: String| ApiError::bad_request("invalid_request", m);
        let invalid = || bad("invalid cursor".into());
        let bytes = cairn_core::encoding::base64url_decode(raw).ok_or_else(invalid)?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if v["v"] != 1 {
            return Err(invalid());
        }
        if v["kind"] != kind {
            return Err(bad(format!("cursor kind mismatch: expected {kind}")));
        }
        if v["tenant_id"] != tenant {
            return Err(bad("cursor tenant mismatch".into()));
        }
        let window = |k: &str| v[k].as_i64().filter(|w| (1..=bounds.max_window_hours).contains(w));
        Ok(PageCursor {
            endpoint: match &v["endpoint"] {
                Value::Null => None,
                Value::String(e) => Some(e.clone()),
                _ => return Err(invalid()),
            },
            window_hours: window("window_hours").ok_or_else(invalid)?,
            baseline_hours: match v.get("baseline_hours") {
                None | Some(Value::Null) => None,
                Some(_) => Some(window("baseline_hours").ok_or_else(invalid)?),
            },
            limit: v["limit"].as_i64().filter(|l| (1..=bounds.max_limit).contains(l)).ok_or_else(invalid)?,
            offset: v["offset"].as_i64().filter(|o| *o >= 0).ok_or_else(invalid)?,
            anchor_ms: v["anchor_utc"].as_str().and_then(parse_rfc3339_millis).ok_or_else(invalid)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds { max_window_hours: 720, max_limit: 1000 };

    #[test]
    fn a_cursor_round_trips_and_is_bound_to_its_route_and_tenant() {
        let c = PageCursor {
            endpoint: Some("write".into()),
            window_hours: 24,
            baseline_hours: Some(168),
            limit: 2,
            offset: 4,
            anchor_ms: 1_800_000_000_000,
        };
        let raw = c.encode("key_usage", "acme");
        assert_eq!(PageCursor::decode("key_usage", "acme", &raw, &B).unwrap(), c);
        let msg = |r: Result<PageCursor, ApiError>| r.unwrap_err().message;
        assert_eq!(
            msg(PageCursor::decode("timeseries", "acme", &raw, &B)),
            "cursor kind mismatch: expected timeseries"
        );
        assert_eq!(msg(PageCursor::decode("key_usage", "other", &raw, &B)), "cursor tenant mismatch");
        assert_eq!(msg(PageCursor::decode("key_usage", "acme", "garbage!", &B)), "invalid cursor");
        let tight = Bounds { max_window_hours: 720, max_limit: 1 };
        assert_eq!(msg(PageCursor::decode("key_usage", "acme", &raw, &tight)), "invalid cursor");
        assert_eq!(c.next(2).offset, 6);
    }
}

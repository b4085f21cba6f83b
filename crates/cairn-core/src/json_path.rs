//! Dot paths into JSON evidence (compliance controls, upgrade
//! requirements): `summary.checks.audit_chain_verified.pass`. A segment
//! that meets a list picks the element at that index, or else the element
//! whose `name` is that segment.

use serde_json::Value;

/// The value at `path` in `v`.
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, seg| match cur {
        Value::Array(items) => match seg.parse::<usize>() {
            Ok(i) => items.get(i),
            Err(_) => items.iter().find(|e| e.get("name").and_then(Value::as_str) == Some(seg)),
        },
        other => other.get(seg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_walk_objects_and_pick_named_list_items() {
        let v =
            json!({"summary": {"checks": [{"name": "a", "pass": false}, {"name": "b", "pass": true}], "n": [7, 8]}});
        assert_eq!(lookup(&v, "summary.checks.b.pass"), Some(&json!(true)));
        assert_eq!(lookup(&v, "summary.n.1"), Some(&json!(8)));
        assert_eq!(lookup(&v, "summary.checks.c.pass"), None);
        assert_eq!(lookup(&json!({"ok": true}), "ok"), Some(&json!(true)));
    }
}

//! A rule's `then` (a PolicyPatch, reference §5.1) and how matched patches
//! merge into the applied policy (§5.3 step 6).
//!
//! The schema is strict at every level — unknown keys are invalid:
//! `{output?: {format?: "json"|"text"|"markdown", strict?: bool},
//!   tool?: {allow?, deny?, prefer?: [non-empty string; ≤100]},
//!   extensions?: object}`.

use cairn_core::canonical_json::js_stringify;
use cairn_core::request_reader::type_name;
use serde_json::{Map, Value};

const FORMATS: &[&str] = &["json", "text", "markdown"];
const TOOL_LISTS: &[&str] = &["allow", "deny", "prefer"];
const MAX_TOOL_LIST: usize = 100;

fn path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

fn strict_object<'a>(v: &'a Value, at: &str, allowed: &[&str]) -> Result<&'a Map<String, Value>, String> {
    let m = v.as_object().ok_or_else(|| {
        let at = if at.is_empty() { String::new() } else { format!("{at}: ") };
        format!("{at}Expected object, received {}", type_name(v))
    })?;
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("{}: Unrecognized key(s) in object: '{k}'", if at.is_empty() { "(root)" } else { at }));
    }
    Ok(m)
}

/// Validates a PolicyPatch; returns it with its keys in schema order (what
/// the reference's parser returns), or the first problem found.
pub fn parse(then: &Value) -> Result<Value, String> {
    let m = strict_object(then, "", &["output", "tool", "extensions"])?;
    let mut out = Map::new();
    if let Some(o) = m.get("output") {
        let om = strict_object(o, "output", &["format", "strict"])?;
        let mut po = Map::new();
        if let Some(f) = om.get("format") {
            match f.as_str() {
                Some(s) if FORMATS.contains(&s) => {
                    po.insert("format".into(), f.clone());
                }
                _ => {
                    return Err(format!(
                        "output.format: Invalid enum value. Expected 'json' | 'text' | 'markdown', received {f}"
                    ));
                }
            }
        }
        if let Some(s) = om.get("strict") {
            if !s.is_boolean() {
                return Err(format!("output.strict: Expected boolean, received {}", type_name(s)));
            }
            po.insert("strict".into(), s.clone());
        }
        out.insert("output".into(), Value::Object(po));
    }
    if let Some(t) = m.get("tool") {
        let tm = strict_object(t, "tool", TOOL_LISTS)?;
        let mut pt = Map::new();
        for key in TOOL_LISTS {
            let Some(list) = tm.get(*key) else { continue };
            let at = path("tool", key);
            let items = list.as_array().ok_or_else(|| format!("{at}: Expected array, received {}", type_name(list)))?;
            if items.len() > MAX_TOOL_LIST {
                return Err(format!("{at}: Array must contain at most {MAX_TOOL_LIST} element(s)"));
            }
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some("") => return Err(format!("{at}.{i}: String must contain at least 1 character(s)")),
                    Some(_) => {}
                    None => return Err(format!("{at}.{i}: Expected string, received {}", type_name(item))),
                }
            }
            pt.insert((*key).into(), list.clone());
        }
        out.insert("tool".into(), Value::Object(pt));
    }
    if let Some(e) = m.get("extensions") {
        if !e.is_object() {
            return Err(format!("extensions: Expected object, received {}", type_name(e)));
        }
        out.insert("extensions".into(), e.clone());
    }
    Ok(Value::Object(out))
}

/// A conflict: two matched patches disagree on a scalar (or shape) at
/// `path`; the later (higher-ranked) one won.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub path: String,
    pub winner: String,
}

/// Arrays union (deduplicated by their JSON text), objects merge key by
/// key, anything else: the patch wins and a disagreement is recorded.
fn merge_deep(base: Option<Value>, patch: &Value, at: &str, conflicts: &mut Vec<Conflict>, winner: &str) -> Value {
    let Some(base) = base else { return patch.clone() };
    match (base, patch) {
        (Value::Array(a), Value::Array(b)) => {
            let mut seen = std::collections::HashSet::new();
            Value::Array(a.into_iter().chain(b.iter().cloned()).filter(|x| seen.insert(js_stringify(x))).collect())
        }
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, v) in b {
                let merged = merge_deep(a.get(k).cloned(), v, &path(at, k), conflicts, winner);
                a.insert(k.clone(), merged);
            }
            Value::Object(a)
        }
        (base, patch) => {
            if js_stringify(&base) != js_stringify(patch) {
                conflicts
                    .push(Conflict { path: if at.is_empty() { "$".into() } else { at.into() }, winner: winner.into() });
            }
            patch.clone()
        }
    }
}

/// Merges `patches` (rule id, patch) in the order given — ascending rank, so
/// the highest-ranked merges last and wins.
pub fn merge<'a>(patches: impl IntoIterator<Item = (&'a str, &'a Value)>) -> (Value, Vec<Conflict>) {
    let mut policy = Value::Object(Map::new());
    let mut conflicts = Vec::new();
    for (rule, patch) in patches {
        policy = merge_deep(Some(policy), patch, "", &mut conflicts, rule);
    }
    (policy, conflicts)
}

/// The sorted leaf paths a patch sets (arrays and empty objects are leaves).
pub fn touched_paths(patch: &Value) -> Vec<String> {
    let mut out = Vec::new();
    leaf_paths(patch, "", &mut out);
    out.sort();
    out
}

fn leaf_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    let here = || if prefix.is_empty() { "$".to_string() } else { prefix.to_string() };
    match v {
        Value::Null => {}
        Value::Object(m) if !m.is_empty() => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                leaf_paths(&m[k], &path(prefix, k), out);
            }
        }
        _ => out.push(here()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_is_strict() {
        assert!(parse(&json!({"tool": {"allow": ["psql"]}, "output": {"format": "json", "strict": true}})).is_ok());
        assert!(parse(&json!({"extensions": {"x.y": {"any": 1}}})).is_ok());
        for bad in [
            json!([]),
            json!({"tools": {}}),
            json!({"tool": {"allow": "psql"}}),
            json!({"tool": {"allow": [""]}}),
            json!({"tool": {"allow": [1]}}),
            json!({"tool": {"block": []}}),
            json!({"output": {"format": "yaml"}}),
            json!({"output": {"strict": "yes"}}),
            json!({"output": null}),
            json!({"tool": {"deny": vec!["x"; 101]}}),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
        assert_eq!(parse(&json!({"tools": 1})).unwrap_err(), "(root): Unrecognized key(s) in object: 'tools'");
    }

    /// Reference §10.1 #10.
    #[test]
    fn merge_unions_lists_and_records_scalar_conflicts() {
        let p1 = json!({"output": {"format": "json", "strict": true}, "tool": {"allow": ["psql"]}});
        let p2 = json!({"tool": {"deny": ["rm"], "allow": ["psql"]}});
        let (policy, conflicts) = merge([("r1", &p1), ("r2", &p2)]);
        assert_eq!(policy["tool"]["allow"], json!(["psql"]));
        assert_eq!(policy["tool"]["deny"], json!(["rm"]));
        assert!(conflicts.is_empty());

        let p3 = json!({"output": {"format": "text"}});
        let (policy, conflicts) = merge([("r1", &p1), ("r3", &p3)]);
        assert_eq!(policy["output"], json!({"format": "text", "strict": true}));
        assert_eq!(conflicts, vec![Conflict { path: "output.format".into(), winner: "r3".into() }]);
    }

    #[test]
    fn touched_paths_are_sorted_leaves() {
        let p = json!({"tool": {"prefer": ["a"], "deny": []}, "output": {"format": "json"}, "extensions": {}});
        assert_eq!(touched_paths(&p), vec!["extensions", "output.format", "tool.deny", "tool.prefer"]);
        assert_eq!(touched_paths(&json!({})), vec!["$"]);
    }
}

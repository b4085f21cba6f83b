//! The rule condition language (reference §5.1 `ruleMatchesContext`):
//! `if` patterns and `exceptions` matched against the caller's context.
//!
//! - `{"$and": [..]}`, `{"$or": [..]}`, `{"$not": p}` combine patterns (the
//!   first of the three present decides);
//! - a single-key object whose key starts with `$` is an operator on the
//!   current value: `$eq $ne $exists $in $nin $gt $gte $lt $lte $contains
//!   $regex` (unknown operators never match);
//! - an array pattern is a subset match, an object pattern matches key by
//!   key (keys with a `.` are paths into the context), anything else is
//!   deep equality.
//!
//! "Missing" (JavaScript `undefined`) is `None` here; JSON `null` is a value.
//! Numbers compare as doubles, so `1` equals `1.0`.

use crate::safe_regex::RegexCache;
use serde_json::Value;

/// Deep equality with JavaScript semantics over JSON values.
pub fn deep_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => json_equal(a, b),
        _ => false,
    }
}

fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// `obj[key]` for an object or an array (numeric keys index arrays).
fn child<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    match v? {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    }
}

/// Follows a dot path (`"tool.name"`) into `v`.
pub fn get_by_path<'a>(v: Option<&'a Value>, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return None;
    }
    path.split('.').try_fold(v?, |cur, part| child(Some(cur), part))
}

/// JavaScript truthiness.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0 && !x.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// JavaScript `Number(v)` (NaN when it is not a number).
fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => *b as u8 as f64,
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => string_to_number(s),
        Value::Array(a) => match a.as_slice() {
            [] => 0.0,
            [one] => match one {
                Value::Array(_) | Value::Object(_) => to_number(one),
                Value::Null => 0.0,
                Value::String(s) => string_to_number(s),
                other => to_number(other),
            },
            _ => f64::NAN,
        },
        Value::Object(_) => f64::NAN,
    }
}

fn string_to_number(s: &str) -> f64 {
    let t = s.trim();
    if t.is_empty() {
        return 0.0;
    }
    let radix = |p: &str, r: u32| t.strip_prefix(p).map(|d| i64::from_str_radix(d, r).map(|x| x as f64));
    for (p, r) in [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)] {
        if let Some(x) = radix(p, r) {
            return x.unwrap_or(f64::NAN);
        }
    }
    match t {
        "Infinity" | "+Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        // Rust accepts "inf"/"nan", JavaScript does not.
        _ if t.chars().any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') => f64::NAN,
        _ => t.parse().unwrap_or(f64::NAN),
    }
}

fn op_eval(op: &str, arg: &Value, value: Option<&Value>, regexes: &mut RegexCache) -> bool {
    let num = || value.and_then(Value::as_f64);
    match op {
        "$eq" => deep_equal(value, Some(arg)),
        "$ne" => !deep_equal(value, Some(arg)),
        "$exists" => value.is_some() == truthy(arg),
        "$in" => arg.as_array().is_some_and(|xs| xs.iter().any(|x| deep_equal(value, Some(x)))),
        "$nin" => arg.as_array().is_some_and(|xs| !xs.iter().any(|x| deep_equal(value, Some(x)))),
        "$gt" => num().is_some_and(|x| x > to_number(arg)),
        "$gte" => num().is_some_and(|x| x >= to_number(arg)),
        "$lt" => num().is_some_and(|x| x < to_number(arg)),
        "$lte" => num().is_some_and(|x| x <= to_number(arg)),
        "$contains" => match (value, arg) {
            (Some(Value::String(s)), Value::String(needle)) => s.contains(needle.as_str()),
            (Some(Value::Array(xs)), needle) => xs.iter().any(|x| json_equal(x, needle)),
            _ => false,
        },
        "$regex" => {
            let Some(Value::String(s)) = value else { return false };
            let pattern = match arg {
                Value::String(p) => p.clone(),
                Value::Null => String::new(),
                other => cairn_core::canonical_json::js_stringify(other),
            };
            regexes.is_match(&pattern, s)
        }
        _ => false,
    }
}

/// Whether `pattern` matches the context value `ctx`.
pub fn match_pattern(pattern: &Value, ctx: Option<&Value>, regexes: &mut RegexCache) -> bool {
    match pattern {
        Value::Object(m) => {
            if let Some(arr) = m.get("$and") {
                return arr.as_array().is_some_and(|ps| ps.iter().all(|p| match_pattern(p, ctx, regexes)));
            }
            if let Some(arr) = m.get("$or") {
                return arr.as_array().is_some_and(|ps| ps.iter().any(|p| match_pattern(p, ctx, regexes)));
            }
            if let Some(p) = m.get("$not") {
                return !match_pattern(p, ctx, regexes);
            }
            if m.len() == 1 {
                let (k, v) = m.iter().next().expect("one key");
                if k.starts_with('$') {
                    return op_eval(k, v, ctx, regexes);
                }
            }
            m.iter().all(|(k, v)| {
                let actual = if k.contains('.') { get_by_path(ctx, k) } else { child(ctx, k) };
                match_pattern(v, actual, regexes)
            })
        }
        Value::Array(ps) => match ctx {
            Some(Value::Array(xs)) => ps.iter().all(|p| xs.iter().any(|x| json_equal(x, p))),
            _ => false,
        },
        primitive => deep_equal(ctx, Some(primitive)),
    }
}

/// A rule applies when its `if` matches (an absent, falsy or empty-object
/// `if` matches everything) and none of its `exceptions` does.
pub fn rule_matches(if_json: &Value, exceptions: &Value, ctx: &Value, regexes: &mut RegexCache) -> bool {
    if_matches(if_json, ctx, regexes) && !excepted(exceptions, ctx, regexes)
}

/// Whether the `if` part matches.
pub fn if_matches(if_json: &Value, ctx: &Value, regexes: &mut RegexCache) -> bool {
    let unconditional = !truthy(if_json) || if_json.as_object().is_some_and(|m| m.is_empty());
    unconditional || match_pattern(if_json, Some(ctx), regexes)
}

/// Whether one of the `exceptions` (an array; anything else has none) matches.
pub fn excepted(exceptions: &Value, ctx: &Value, regexes: &mut RegexCache) -> bool {
    exceptions.as_array().is_some_and(|xs| xs.iter().any(|x| match_pattern(x, Some(ctx), regexes)))
}

/// The sorted set of context paths a condition reads (its specificity):
/// through `$and`/`$or`/`$not`; an operator contributes its parent path; an
/// array or empty object its own path.
pub fn condition_paths(pattern: &Value) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    collect_paths(pattern, "", &mut out);
    out.into_iter().collect()
}

fn collect_paths(pattern: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    let add = |out: &mut std::collections::BTreeSet<String>| {
        if !prefix.is_empty() {
            out.insert(prefix.to_string());
        }
    };
    match pattern {
        Value::Null => {}
        Value::Array(_) => add(out),
        Value::Object(m) if m.is_empty() => add(out),
        Value::Object(m) => {
            for (k, v) in m {
                match k.as_str() {
                    "$and" | "$or" => {
                        for p in v.as_array().into_iter().flatten() {
                            collect_paths(p, prefix, out);
                        }
                    }
                    "$not" => collect_paths(v, prefix, out),
                    op if op.starts_with('$') => add(out),
                    key => {
                        let next = if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") };
                        collect_paths(v, &next, out);
                    }
                }
            }
        }
        _ => add(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(if_json: Value, exceptions: Value, ctx: Value) -> bool {
        rule_matches(&if_json, &exceptions, &ctx, &mut RegexCache::default())
    }

    /// Reference §10.1 #9.
    #[test]
    fn contract_smoke_conditions() {
        assert!(matches(json!({"intent": "json"}), json!([]), json!({"intent": "json"})));
        assert!(!matches(json!({"intent": "json"}), json!([]), json!({"intent": "text"})));
        assert!(matches(json!({"tool.name": "psql"}), json!([]), json!({"tool": {"name": "psql"}})));
        assert!(matches(json!({"intent": {"$in": ["json", "text"]}}), json!([]), json!({"intent": "json"})));
        assert!(!matches(json!({"intent": {"$in": ["text"]}}), json!([]), json!({"intent": "json"})));
        assert!(!matches(
            json!({"intent": "json"}),
            json!([{"user": "lucio"}]),
            json!({"intent": "json", "user": "lucio"})
        ));
        assert!(matches(
            json!({"intent": "json"}),
            json!([{"user": "lucio"}]),
            json!({"intent": "json", "user": "ana"})
        ));
    }

    #[test]
    fn operators_follow_javascript() {
        let ctx = json!({"n": 5, "s": "deploy prod", "tags": ["a", "b"], "nested": {"k": [1, {"x": 2}]}, "z": null});
        for (pattern, want) in [
            (json!({"n": {"$gt": "4"}}), true),
            (json!({"n": {"$gte": 5.0}}), true),
            (json!({"n": {"$lt": "abc"}}), false),
            (json!({"s": {"$gt": 1}}), false),
            (json!({"n": {"$eq": 5.0}}), true),
            (json!({"n": {"$ne": 5}}), false),
            (json!({"missing": {"$exists": false}}), true),
            (json!({"z": {"$exists": true}}), true),
            (json!({"missing": {"$ne": 1}}), true),
            (json!({"s": {"$contains": "prod"}}), true),
            (json!({"tags": {"$contains": "b"}}), true),
            (json!({"tags": ["b"]}), true),
            (json!({"tags": ["b", "c"]}), false),
            (json!({"nested.k.1.x": 2}), true),
            (json!({"n": {"$nin": [1, 2]}}), true),
            (json!({"n": {"$unknown": 5}}), false),
            (json!({"$or": [{"n": 1}, {"s": {"$regex": "^dep"}}]}), true),
            (json!({"$not": {"n": 5}}), false),
            (json!({"$and": [{"n": 5}, {"tags": {"$contains": "a"}}]}), true),
            (json!({"z": null}), true),
            (json!({"missing": null}), false),
        ] {
            assert_eq!(matches(pattern.clone(), json!(null), ctx.clone()), want, "{pattern}");
        }
        assert!(matches(json!(null), json!(null), json!({})));
        assert!(matches(json!({}), json!("not an array"), json!({})));
    }

    #[test]
    fn condition_paths_are_the_reference_specificity() {
        let p = json!({"intent": "json", "tool.name": {"$in": ["a"]}, "$or": [{"user": {"id": 1}}, {"tags": []}], "$not": {"x": {}}});
        assert_eq!(condition_paths(&p), vec!["intent", "tags", "tool.name", "user.id", "x"]);
        assert!(condition_paths(&json!({})).is_empty());
    }
}

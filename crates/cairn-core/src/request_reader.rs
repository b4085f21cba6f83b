//! Reading JSON request bodies into typed values while collecting every
//! problem (path + message), so a bad request is answered with one
//! `400 invalid_request` listing all of its issues rather than the first.
//!
//! Conventions (the reference's zod schemas, made lenient where that costs
//! nothing): unknown keys are ignored; an optional field that is `null` is
//! treated as absent; strings marked required-non-empty reject `""`.

use crate::api_error::{ApiError, Issue};
use serde_json::{Map, Value};

/// Collects issues while fields are read.
#[derive(Default, Debug)]
pub struct Reader {
    issues: Vec<Issue>,
}

/// A JSON object being read, with its path for messages.
#[derive(Clone, Copy)]
pub struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub path: &'a str,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// The name zod uses for a JSON value's type in "Expected X, received Y".
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Reader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an issue at `path`.
    pub fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue { path: path.into(), message: message.into() });
    }

    pub fn issue_count(&self) -> usize {
        self.issues.len()
    }

    pub fn has_issues(&self) -> bool {
        !self.issues.is_empty()
    }

    /// `Ok(())` when nothing was wrong, else `400 invalid_request`.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.issues.is_empty() { Ok(()) } else { Err(ApiError::invalid_request(self.issues)) }
    }

    /// The request body as an object (`400` if it is not one).
    pub fn root(body: &Value) -> Result<Obj<'_>, ApiError> {
        match body {
            Value::Object(map) => Ok(Obj { map, path: "" }),
            other => Err(ApiError::invalid("", format!("Expected object, received {}", type_name(other)))),
        }
    }

    fn present<'a>(o: Obj<'a>, key: &str) -> Option<&'a Value> {
        o.map.get(key).filter(|v| !v.is_null())
    }

    fn wrong_type(&mut self, o: Obj, key: &str, expected: &str, got: &Value) {
        self.issue(join(o.path, key), format!("Expected {expected}, received {}", type_name(got)));
    }

    /// An optional string (any length, including empty). U+0000 is refused:
    /// PostgreSQL's text cannot hold it, and one kernel answers alike on
    /// both backends (the reference, on PostgreSQL, fails with a 500).
    pub fn str_any(&mut self, o: Obj, key: &str) -> Option<String> {
        match Self::present(o, key)? {
            Value::String(s) if s.contains('\0') => {
                self.issue(join(o.path, key), "String must not contain U+0000 (NUL)");
                None
            }
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_type(o, key, "string", other);
                None
            }
        }
    }

    /// An optional string of `min..=max` characters.
    pub fn str_opt_len(&mut self, o: Obj, key: &str, min: usize, max: usize) -> Option<String> {
        let s = self.str_any(o, key)?;
        let n = s.chars().count();
        if n < min {
            self.issue(join(o.path, key), format!("String must contain at least {min} character(s)"));
            return None;
        }
        if n > max {
            self.issue(join(o.path, key), format!("String must contain at most {max} character(s)"));
            return None;
        }
        Some(s)
    }

    /// An optional non-empty string.
    pub fn str_opt(&mut self, o: Obj, key: &str) -> Option<String> {
        self.str_opt_len(o, key, 1, usize::MAX)
    }

    /// A required non-empty string.
    pub fn str_req(&mut self, o: Obj, key: &str) -> Option<String> {
        if Self::present(o, key).is_none() {
            self.issue(join(o.path, key), "Required");
            return None;
        }
        self.str_opt(o, key)
    }

    /// An optional string that must be one of `allowed`.
    pub fn enum_opt(&mut self, o: Obj, key: &str, allowed: &[&str]) -> Option<String> {
        let s = self.str_any(o, key)?;
        if allowed.contains(&s.as_str()) {
            Some(s)
        } else {
            let list = allowed.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" | ");
            self.issue(join(o.path, key), format!("Invalid enum value. Expected {list}, received '{s}'"));
            None
        }
    }

    /// A required enum string.
    pub fn enum_req(&mut self, o: Obj, key: &str, allowed: &[&str]) -> Option<String> {
        if Self::present(o, key).is_none() {
            self.issue(join(o.path, key), "Required");
            return None;
        }
        self.enum_opt(o, key, allowed)
    }

    /// An optional UUID string.
    pub fn uuid_opt(&mut self, o: Obj, key: &str) -> Option<String> {
        let s = self.str_any(o, key)?;
        if crate::stable_id::is_uuid(&s) {
            Some(s.to_ascii_lowercase())
        } else {
            self.issue(join(o.path, key), "Invalid uuid");
            None
        }
    }

    /// An optional boolean.
    pub fn bool_opt(&mut self, o: Obj, key: &str) -> Option<bool> {
        match Self::present(o, key)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.wrong_type(o, key, "boolean", other);
                None
            }
        }
    }

    /// An optional number in `[min, max]`.
    pub fn num_opt(&mut self, o: Obj, key: &str, min: f64, max: f64) -> Option<f64> {
        match Self::present(o, key)? {
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                self.check_range(o, key, x, min, max).then_some(x)
            }
            other => {
                self.wrong_type(o, key, "number", other);
                None
            }
        }
    }

    /// An optional integer in `[min, max]`.
    pub fn int_opt(&mut self, o: Obj, key: &str, min: i64, max: i64) -> Option<i64> {
        match Self::present(o, key)? {
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if x.fract() != 0.0 || !x.is_finite() {
                    self.issue(join(o.path, key), "Expected integer, received float");
                    return None;
                }
                self.check_range(o, key, x, min as f64, max as f64).then_some(x as i64)
            }
            other => {
                self.wrong_type(o, key, "number", other);
                None
            }
        }
    }

    fn check_range(&mut self, o: Obj, key: &str, x: f64, min: f64, max: f64) -> bool {
        if x < min {
            self.issue(
                join(o.path, key),
                format!("Number must be greater than or equal to {}", crate::canonical_json::js_number(min)),
            );
            false
        } else if x > max {
            self.issue(
                join(o.path, key),
                format!("Number must be less than or equal to {}", crate::canonical_json::js_number(max)),
            );
            false
        } else {
            true
        }
    }

    /// An optional JSON object.
    pub fn obj_opt<'a>(&mut self, o: Obj<'a>, key: &str) -> Option<&'a Map<String, Value>> {
        match Self::present(o, key)? {
            Value::Object(m) => Some(m),
            other => {
                self.wrong_type(o, key, "object", other);
                None
            }
        }
    }

    /// An optional array.
    pub fn arr_opt<'a>(&mut self, o: Obj<'a>, key: &str) -> Option<&'a Vec<Value>> {
        match Self::present(o, key)? {
            Value::Array(a) => Some(a),
            other => {
                self.wrong_type(o, key, "array", other);
                None
            }
        }
    }

    /// Path of element `i` of array `key` under `o`.
    pub fn elem_path(o: Obj, key: &str, i: usize) -> String {
        join(&join(o.path, key), &i.to_string())
    }

    /// Path of `key` under `o`.
    pub fn path(o: Obj, key: &str) -> String {
        join(o.path, key)
    }
}

/// Parses query-string booleans the way the reference does: `1/true/yes/on`
/// and `0/false/no/off/""`; anything else is an issue.
pub fn query_bool(r: &mut Reader, name: &str, value: Option<&str>) -> Option<bool> {
    let v = value?;
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => {
            r.issue(name, format!("Expected boolean, received '{v}'"));
            None
        }
    }
}

/// Parses a query-string integer in `[min, max]`.
pub fn query_int(r: &mut Reader, name: &str, value: Option<&str>, min: i64, max: i64) -> Option<i64> {
    let v = value?.trim();
    match v.parse::<i64>() {
        Ok(n) if n < min => {
            r.issue(name, format!("Number must be greater than or equal to {min}"));
            None
        }
        Ok(n) if n > max => {
            r.issue(name, format!("Number must be less than or equal to {max}"));
            None
        }
        Ok(n) => Some(n),
        Err(_) => {
            r.issue(name, format!("Expected integer, received '{v}'"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collects_every_issue_with_paths() {
        let body = json!({"scope": 3, "limit": 0, "lane": "public", "id": "nope", "ok": true, "n": null});
        let o = Reader::root(&body).unwrap();
        let mut r = Reader::new();
        assert_eq!(r.str_opt(o, "scope"), None);
        assert_eq!(r.int_opt(o, "limit", 1, 200), None);
        assert_eq!(r.enum_opt(o, "lane", &["private", "shared"]), None);
        assert_eq!(r.uuid_opt(o, "id"), None);
        assert_eq!(r.bool_opt(o, "ok"), Some(true));
        assert_eq!(r.str_opt(o, "n"), None);
        assert_eq!(r.str_req(o, "missing"), None);
        let err = r.finish().unwrap_err();
        let issues = err.details.unwrap()["issues"].clone();
        let paths: Vec<&str> = issues.as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap()).collect();
        assert_eq!(paths, ["scope", "limit", "lane", "id", "missing"]);
        assert_eq!(issues[1]["message"], "Number must be greater than or equal to 1");
        assert_eq!(issues[2]["message"], "Invalid enum value. Expected 'private' | 'shared', received 'public'");
    }

    #[test]
    fn a_nul_in_a_string_is_refused_with_its_path() {
        let body = json!({"title": "a\u{0}b", "ok": "fine"});
        let o = Reader::root(&body).unwrap();
        let mut r = Reader::new();
        assert_eq!(r.str_any(o, "title"), None);
        assert_eq!(r.str_any(o, "ok").as_deref(), Some("fine"));
        let issues = r.finish().unwrap_err().details.unwrap()["issues"].clone();
        assert_eq!(issues[0]["path"], "title");
        assert!(issues[0]["message"].as_str().unwrap().contains("U+0000"));
    }

    #[test]
    fn query_values() {
        let mut r = Reader::new();
        assert_eq!(query_bool(&mut r, "a", Some("yes")), Some(true));
        assert_eq!(query_bool(&mut r, "a", Some("")), Some(false));
        assert_eq!(query_int(&mut r, "limit", Some("201"), 1, 200), None);
        assert!(r.has_issues());
    }
}

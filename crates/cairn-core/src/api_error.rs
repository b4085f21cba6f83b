//! The error envelope every failed request answers with:
//! `{"error": code, "message": text, "details"?: {...}}`, plus `issues[]` for
//! `invalid_request` (the reference's zod shape).

use serde_json::{Map, Value, json};

/// One problem found in a request: where (dot path) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

/// A refused request, with the HTTP status it maps to.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), message: message.into(), details: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 400 with a specific code.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// 400 `invalid_request` listing every issue found.
    pub fn invalid_request(issues: Vec<Issue>) -> Self {
        let message = match issues.as_slice() {
            [] => "invalid request".to_string(),
            [one] if one.path.is_empty() => one.message.clone(),
            [one] => format!("{}: {}", one.path, one.message),
            many if many[0].path.is_empty() => {
                format!("{} problems in request; first: {}", many.len(), many[0].message)
            }
            many => format!("{} problems in request; first: {}: {}", many.len(), many[0].path, many[0].message),
        };
        let list: Vec<Value> = issues.iter().map(|i| json!({"path": i.path, "message": i.message})).collect();
        ApiError::new(400, "invalid_request", message).with_details(json!({ "issues": list }))
    }

    /// 400 `invalid_request` for one problem.
    pub fn invalid(path: &str, message: impl Into<String>) -> Self {
        Self::invalid_request(vec![Issue { path: path.into(), message: message.into() }])
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    /// 500 `internal_error`; the message is logged, not shown to clients in full.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal_error", message)
    }

    /// The response body. `invalid_request` also carries `issues` at the top
    /// level, where the reference's clients read them.
    pub fn to_body(&self) -> Value {
        let mut m = Map::new();
        m.insert("error".into(), Value::String(self.code.clone()));
        m.insert("message".into(), Value::String(self.message.clone()));
        if let Some(d) = &self.details {
            if let Some(issues) = d.get("issues") {
                m.insert("issues".into(), issues.clone());
            }
            m.insert("details".into(), d.clone());
        }
        Value::Object(m)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_request_envelope_has_issues() {
        let e = ApiError::invalid_request(vec![
            Issue { path: "nodes.0.type".into(), message: "Required".into() },
            Issue { path: "scope".into(), message: "Expected string, received number".into() },
        ]);
        let b = e.to_body();
        assert_eq!(b["error"], "invalid_request");
        assert_eq!(b["issues"][0]["path"], "nodes.0.type");
        assert_eq!(b["details"]["issues"][1]["path"], "scope");
        assert!(b["message"].as_str().unwrap().starts_with("2 problems"));
    }
}

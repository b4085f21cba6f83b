//! recall_text's query embedding: which provider failures become which
//! HTTP errors (reference §1.2.2 — never a generic 500), and the checks on
//! what the provider returned.
//!
//! | provider outcome                                            | answer |
//! |-------------------------------------------------------------|--------|
//! | HTTP 429, or "rate limit" / "too many requests" / `1002`     | `429 upstream_embedding_rate_limited` (retry after 2 s) |
//! | timeout, unreachable, HTTP ≥ 500, model missing, unknown     | `503 upstream_embedding_unavailable` (retry after 1 s) |
//! | any other HTTP status, malformed answer, wrong dimension     | `502 upstream_embedding_bad_response` |
//!
//! `details.provider_status` carries the provider's HTTP status when the
//! failure message names one (the host writes "answered <status>").

use crate::settings::Settings;
use cairn_core::ApiError;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};

/// The scope's derived vectors were made by another embedder than the one
/// that embeds queries now (the server's embedder was switched): their
/// cosines to this query mean nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMismatch {
    pub scope_model: String,
    pub query_model: String,
}

impl ModelMismatch {
    /// What a dense-only recall_text answers: `409 embedding_model_mismatch`.
    pub fn error(&self) -> ApiError {
        ApiError::new(409, "embedding_model_mismatch", self.message()).with_details(self.json())
    }

    fn message(&self) -> String {
        format!(
            "this scope's memories were embedded with {} but queries are now embedded with {}; re-derive the scope \
             (POST /v1/admin/derive/rebuild or `cairn job rebuild-derived --scope S`) to search it by meaning again",
            self.scope_model, self.query_model
        )
    }

    /// `observability.stage1.dense_refused` of a hybrid answer that ran on
    /// words alone.
    pub fn json(&self) -> Value {
        json!({"reason": "embedding_model_mismatch", "scope_model": self.scope_model,
               "query_model": self.query_model, "message": self.message()})
    }
}

/// Compares the model of one of the scope's derived vectors (derivation
/// re-derives a scope whole, so one row speaks for it) with the query's.
pub fn scope_model_mismatch(
    db: &dyn Sql,
    scope_key: &str,
    settings: &Settings,
) -> Result<Option<ModelMismatch>, ApiError> {
    let Some(query_model) = &settings.embedding_model_label else { return Ok(None) };
    let row = db.query_one(
        "SELECT model FROM memory_derived_vectors WHERE scope = ? AND model <> 'topic_centroid' LIMIT 1",
        &[scope_key.into()],
    )?;
    Ok(row
        .and_then(|r| r.opt_string(0))
        .filter(|m| m != query_model)
        .map(|scope_model| ModelMismatch { scope_model, query_model: query_model.clone() }))
}

/// The HTTP status named in a provider failure message, if any.
pub fn provider_status(message: &str) -> Option<u16> {
    let at = message.find("answered ")? + "answered ".len();
    let digits: String = message[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|s| (100..600).contains(s))
}

/// Maps a failed `generate-embeddings` call to the error recall_text answers.
pub fn map_failure(message: &str) -> ApiError {
    let status = provider_status(message);
    let lower = message.to_ascii_lowercase();
    let rate_limited = status == Some(429)
        || lower.contains("rate limit")
        || lower.contains("too many requests")
        || lower.contains("status_code\":1002");
    let malformed = lower.contains("malformed");
    let (http, code, retry_after) = if rate_limited {
        (429, "upstream_embedding_rate_limited", Some(2))
    } else if malformed {
        (502, "upstream_embedding_bad_response", None)
    } else {
        match status {
            Some(s) if s >= 500 || s == 408 => (503, "upstream_embedding_unavailable", Some(1)),
            Some(_) => (502, "upstream_embedding_bad_response", None),
            None => (503, "upstream_embedding_unavailable", Some(1)),
        }
    };
    let mut details = json!({"provider_status": status});
    if let Some(s) = retry_after {
        details["retry_after_ms"] = json!(s * 1000);
    }
    ApiError::new(http, code, format!("embedding the query failed: {message}")).with_details(details)
}

/// Checks the provider's vector: `dims` finite numbers.
pub fn check_vector(v: &[f32], dims: usize) -> Result<(), ApiError> {
    if v.len() != dims {
        return Err(ApiError::new(
            502,
            "upstream_embedding_bad_response",
            format!("the embedding provider returned {} dimensions, the tier expects {dims}", v.len()),
        )
        .with_details(json!({"provider_status": null, "dims": v.len(), "expected_dims": dims})));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(ApiError::new(
            502,
            "upstream_embedding_bad_response",
            "the embedding provider returned a non-finite number",
        )
        .with_details(json!({"provider_status": null})));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_provider_failures() {
        let cases = [
            (
                "provider_error: the embedder answered 429 Too Many Requests: slow down",
                429,
                "upstream_embedding_rate_limited",
            ),
            ("provider_error: quota: Rate limit reached", 429, "upstream_embedding_rate_limited"),
            ("provider_error: the embedder answered 503 Service Unavailable: ", 503, "upstream_embedding_unavailable"),
            ("provider_error: http://x did not answer within 5s", 503, "upstream_embedding_unavailable"),
            ("provider_error: POST http://x: connection refused", 503, "upstream_embedding_unavailable"),
            ("invalid_input: the embedder answered 400 Bad Request: no", 502, "upstream_embedding_bad_response"),
            ("provider_error: malformed embedder answer: eof", 502, "upstream_embedding_bad_response"),
            ("model_not_supported: the host has no embedding model", 503, "upstream_embedding_unavailable"),
        ];
        for (msg, status, code) in cases {
            let e = map_failure(msg);
            assert_eq!((e.status, e.code.as_str()), (status, code), "{msg}");
        }
        let e = map_failure("the embedder answered 429 x");
        assert_eq!(e.details.as_ref().unwrap()["provider_status"], 429);
        assert_eq!(e.details.unwrap()["retry_after_ms"], 2000);
        assert_eq!(provider_status("answered 99"), None);
    }

    #[test]
    fn checks_the_returned_vector() {
        assert!(check_vector(&[0.1, 0.2], 2).is_ok());
        assert_eq!(check_vector(&[0.1], 2).unwrap_err().status, 502);
        assert_eq!(check_vector(&[f32::NAN, 0.0], 2).unwrap_err().code, "upstream_embedding_bad_response");
    }
}

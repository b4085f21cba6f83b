//! The admin token guard: `503 admin_not_configured` when no token is set,
//! `401 unauthorized_admin` when the `X-Admin-Token` header is missing or
//! wrong. The comparison takes the same time wherever the tokens differ.

use crate::ApiError;

pub fn check(configured: Option<&str>, presented: Option<&str>) -> Result<(), ApiError> {
    let Some(expected) = configured.filter(|t| !t.is_empty()) else {
        return Err(ApiError::new(503, "admin_not_configured", "admin token is not configured on this server"));
    };
    match presented {
        Some(p) if constant_time_eq(p.trim().as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::new(401, "unauthorized_admin", "valid X-Admin-Token is required")),
    }
}

/// Compares the tokens' SHA-256 digests with `subtle`: digests have one
/// length, so neither where the tokens differ nor their lengths show in the
/// time taken.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    Sha256::digest(a).as_slice().ct_eq(Sha256::digest(b).as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_semantics() {
        assert_eq!(check(None, Some("x")).unwrap_err().status, 503);
        assert_eq!(check(Some(""), Some("x")).unwrap_err().code, "admin_not_configured");
        assert_eq!(check(Some("secret"), None).unwrap_err().status, 401);
        assert_eq!(check(Some("secret"), Some("secreT")).unwrap_err().code, "unauthorized_admin");
        assert_eq!(check(Some("secret"), Some("secret-longer")).unwrap_err().status, 401);
        assert!(check(Some("secret"), Some("secret")).is_ok());
    }
}

//! Auth for memory routes (reference §1.0): modes, HS256 JWTs, and binding
//! a request to its principal — the principal's tenant wins (a differing
//! explicit one is `403 identity_mismatch`) and its agent/team ids are
//! checked and filled in per route kind.

use crate::ApiError;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

/// `memory_auth_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    ApiKey,
    Jwt,
    ApiKeyOrJwt,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s.trim() {
            "" | "off" => Mode::Off,
            "api_key" => Mode::ApiKey,
            "jwt" => Mode::Jwt,
            "api_key_or_jwt" => Mode::ApiKeyOrJwt,
            _ => return None,
        })
    }

    pub fn keys(self) -> bool {
        matches!(self, Mode::ApiKey | Mode::ApiKeyOrJwt)
    }

    pub fn jwt(self) -> bool {
        matches!(self, Mode::Jwt | Mode::ApiKeyOrJwt)
    }

    /// The 401 when no credential resolved.
    pub fn unauthorized(self) -> ApiError {
        let message = match self {
            Mode::ApiKey => "valid X-Api-Key is required",
            Mode::Jwt => "valid Authorization: Bearer <jwt> is required",
            _ => "valid X-Api-Key or Authorization: Bearer <jwt> is required",
        };
        ApiError::new(401, "unauthorized", message)
    }
}

/// Who a request speaks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Principal {
    pub tenant_id: String,
    pub agent_id: Option<String>,
    pub team_id: Option<String>,
    pub role: Option<String>,
}

type HmacSha256 = Hmac<Sha256>;

/// The HMAC-SHA256 state over `msg` (RustCrypto `hmac`).
fn hmac(key: &[u8], msg: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length (longer ones are hashed first).
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac
}

/// `hex(HMAC-SHA256(key, msg))`: webhook signatures (alert deliveries).
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    hex::encode(hmac(key, msg).finalize().into_bytes())
}

fn claim_str(c: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| c.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Verifies an HS256 JWT (signature, `exp` / `nbf` with `skew_s` seconds of
/// tolerance; `exp` required when `require_exp`) and reads its principal:
/// `tenant_id` (or `tenant`, required), `agent_id` (or `sub`), `team_id`,
/// `role`. `None` for anything invalid.
pub fn verify_jwt(token: &str, secret: &[u8], now_s: i64, skew_s: i64, require_exp: bool) -> Option<Principal> {
    let mut parts = token.split('.');
    let (h, p, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || secret.is_empty() {
        return None;
    }
    let decode = crate::encoding::base64url_decode_unpadded;
    let header: Value = serde_json::from_slice(&decode(h)?).ok()?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return None;
    }
    // Constant-time, and the whole 32-byte tag: never a truncated one.
    hmac(secret, format!("{h}.{p}").as_bytes()).verify_slice(&decode(sig)?).ok()?;
    let claims: Value = serde_json::from_slice(&decode(p)?).ok()?;
    let c = claims.as_object()?;
    let num = |k: &str| c.get(k).and_then(Value::as_f64);
    match num("exp") {
        Some(exp) if (now_s - skew_s) as f64 >= exp => return None,
        None if require_exp || c.contains_key("exp") => return None,
        _ => {}
    }
    if c.contains_key("nbf") && num("nbf").is_none_or(|nbf| ((now_s + skew_s) as f64) < nbf) {
        return None;
    }
    Some(Principal {
        tenant_id: claim_str(c, &["tenant_id", "tenant"])?,
        agent_id: claim_str(c, &["agent_id", "sub"]),
        team_id: claim_str(c, &["team_id"]),
        role: claim_str(c, &["role"]),
    })
}

/// Signs claims as an HS256 JWT (tests and operators' tooling).
pub fn sign_jwt(claims: &Value, secret: &[u8]) -> String {
    let enc = |v: &Value| crate::encoding::base64url_encode(v.to_string().as_bytes());
    let head = format!("{}.{}", enc(&json!({"alg": "HS256", "typ": "JWT"})), enc(claims));
    let sig = hmac(secret, head.as_bytes()).finalize().into_bytes();
    format!("{head}.{}", crate::encoding::base64url_encode(&sig))
}

/// Which identity fields a route carries (reference §1.0 per route kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// recall, recall_text, find, planning/context: `consumer_*`.
    Read,
    /// write, sessions, events: `producer_agent_id`, `owner_*`.
    Write,
    /// rules/evaluate, tools/select, tools/feedback: `context.agent`.
    Policy,
    /// Everything else: the tenant only.
    TenantOnly,
}

fn mismatch(field: &str, provided: &str, expected: &str) -> ApiError {
    ApiError::new(403, "identity_mismatch", format!("{field} does not match the authenticated principal"))
        .with_details(json!({"field": field, "provided": provided, "expected": expected}))
}

/// Checks `body[field]` against `want` (403 when both are set and differ)
/// and fills it in when absent.
fn bind(m: &mut Map<String, Value>, field: &str, want: Option<&str>) -> Result<(), ApiError> {
    let Some(want) = want else { return Ok(()) };
    match m.get(field).and_then(Value::as_str) {
        Some(given) if given != want => Err(mismatch(field, given, want)),
        Some(_) => Ok(()),
        None => {
            m.insert(field.into(), json!(want));
            Ok(())
        }
    }
}

/// Binds a JSON request body to `p` for a route of `kind` (`header_tenant`:
/// the `X-Tenant-Id` header, an explicit tenant like the body's).
pub fn bind_body(
    body: &mut Value,
    p: &Principal,
    kind: RouteKind,
    header_tenant: Option<&str>,
) -> Result<(), ApiError> {
    let Some(m) = body.as_object_mut() else { return Ok(()) };
    let explicit = m.get("tenant_id").and_then(Value::as_str).map(str::to_string).or(header_tenant.map(str::to_string));
    if let Some(t) = explicit.filter(|t| t != &p.tenant_id) {
        return Err(mismatch("tenant_id", &t, &p.tenant_id));
    }
    m.insert("tenant_id".into(), json!(p.tenant_id));
    let (agent, team) = (p.agent_id.as_deref(), p.team_id.as_deref());
    match kind {
        RouteKind::Read => {
            bind(m, "consumer_agent_id", agent)?;
            bind(m, "consumer_team_id", team)?;
        }
        RouteKind::Write => {
            bind(m, "producer_agent_id", agent)?;
            for (field, want) in [("owner_agent_id", agent), ("owner_team_id", team)] {
                if let (Some(given), Some(want)) = (m.get(field).and_then(Value::as_str), want)
                    && given != want
                {
                    return Err(mismatch(field, given, want));
                }
            }
            let has_owner = |m: &Map<String, Value>, f: &str| m.get(f).is_some_and(|v| !v.is_null());
            if !has_owner(m, "owner_agent_id") && !has_owner(m, "owner_team_id") {
                match (agent, team) {
                    (Some(a), _) => m.insert("owner_agent_id".into(), json!(a)),
                    (None, Some(t)) => m.insert("owner_team_id".into(), json!(t)),
                    _ => None,
                };
            }
        }
        RouteKind::Policy => {
            let ctx = m.entry("context").or_insert_with(|| json!({}));
            if let Some(c) = ctx.as_object_mut() {
                let nested_agent = c.get("agent").and_then(|a| a.get("id")).and_then(Value::as_str).map(str::to_string);
                let nested_team =
                    c.get("agent").and_then(|a| a.get("team_id")).and_then(Value::as_str).map(str::to_string);
                for (given, want, field) in [
                    (nested_agent, agent, "context.agent.id"),
                    (c.get("agent_id").and_then(Value::as_str).map(str::to_string), agent, "context.agent_id"),
                    (nested_team, team, "context.agent.team_id"),
                    (c.get("team_id").and_then(Value::as_str).map(str::to_string), team, "context.team_id"),
                ] {
                    if let (Some(g), Some(w)) = (given, want)
                        && g != w
                    {
                        return Err(mismatch(field, &g, w));
                    }
                }
                if agent.is_some() || team.is_some() {
                    let a = c.entry("agent").or_insert_with(|| json!({}));
                    if let Some(a) = a.as_object_mut() {
                        if let Some(x) = agent {
                            a.insert("id".into(), json!(x));
                        }
                        if let Some(x) = team {
                            a.insert("team_id".into(), json!(x));
                        }
                    }
                    if let Some(x) = agent {
                        c.insert("agent_id".into(), json!(x));
                    }
                    if let Some(x) = team {
                        c.insert("team_id".into(), json!(x));
                    }
                }
            }
        }
        RouteKind::TenantOnly => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"shh";

    fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
        hex::encode(hmac(key, msg).finalize().into_bytes())
    }

    /// RFC 4231 test cases 1, 2, 3, 6 and 7 (HMAC-SHA-256), the last two
    /// with a key longer than the hash's block.
    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hmac_hex(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac_hex(&[0xaa; 20], &[0xdd; 50]),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
        );
        assert_eq!(
            hmac_hex(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert_eq!(
            hmac_hex(
                &[0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. \
                  The key needs to be hashed before being used by the HMAC algorithm."
            ),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
        );
    }

    #[test]
    fn jwts_are_checked() {
        let now = 1_800_000_000;
        let good = sign_jwt(&json!({"tenant_id": "acme", "sub": "bot", "exp": now + 60}), SECRET);
        let p = verify_jwt(&good, SECRET, now, 30, true).unwrap();
        assert_eq!((p.tenant_id.as_str(), p.agent_id.as_deref()), ("acme", Some("bot")));
        assert!(verify_jwt(&good, b"other", now, 30, true).is_none());
        let expired = sign_jwt(&json!({"tenant": "acme", "exp": now - 31}), SECRET);
        assert!(verify_jwt(&expired, SECRET, now, 30, true).is_none());
        let in_skew = sign_jwt(&json!({"tenant": "acme", "exp": now - 10}), SECRET);
        assert!(verify_jwt(&in_skew, SECRET, now, 30, true).is_some());
        let early = sign_jwt(&json!({"tenant": "acme", "nbf": now + 100}), SECRET);
        assert!(verify_jwt(&early, SECRET, now, 30, false).is_none());
        let no_exp = sign_jwt(&json!({"tenant": "acme"}), SECRET);
        assert!(verify_jwt(&no_exp, SECRET, now, 30, true).is_none());
        assert!(verify_jwt(&no_exp, SECRET, now, 30, false).is_some());
        let no_tenant = sign_jwt(&json!({"sub": "x", "exp": now + 60}), SECRET);
        assert!(verify_jwt(&no_tenant, SECRET, now, 30, true).is_none());
        assert!(verify_jwt("a.b", SECRET, now, 30, false).is_none());
        // A signature that is one bit off, truncated, padded or extended fails.
        let (head, sig) = good.rsplit_once('.').unwrap();
        let mut raw = crate::encoding::base64url_decode(sig).unwrap();
        assert_eq!(raw.len(), 32);
        raw[31] ^= 1;
        let enc = crate::encoding::base64url_encode;
        assert!(verify_jwt(&format!("{head}.{}", enc(&raw)), SECRET, now, 30, true).is_none());
        raw[31] ^= 1;
        assert!(verify_jwt(&format!("{head}.{}", enc(&raw)), SECRET, now, 30, true).is_some());
        assert!(verify_jwt(&format!("{head}.{}", enc(&raw[..16])), SECRET, now, 30, true).is_none());
        assert!(verify_jwt(&format!("{head}.{}=", enc(&raw)), SECRET, now, 30, true).is_none());
        raw.push(0);
        assert!(verify_jwt(&format!("{head}.{}", enc(&raw)), SECRET, now, 30, true).is_none());
        // Only HS256: `none` and other algorithms are refused.
        let none = format!("{}.{}.", enc(br#"{"alg":"none"}"#), enc(br#"{"tenant":"acme"}"#));
        assert!(verify_jwt(&none, SECRET, now, 30, false).is_none());
        assert!(verify_jwt(&good, b"", now, 30, true).is_none(), "an empty secret verifies nothing");
    }

    fn principal() -> Principal {
        Principal { tenant_id: "acme".into(), agent_id: Some("a1".into()), team_id: Some("t1".into()), role: None }
    }

    #[test]
    fn binding_forces_the_tenant_and_fills_identities() {
        let mut b = json!({"query_text": "x"});
        bind_body(&mut b, &principal(), RouteKind::Read, None).unwrap();
        assert_eq!(
            b,
            json!({"query_text": "x", "tenant_id": "acme", "consumer_agent_id": "a1", "consumer_team_id": "t1"})
        );

        let mut other = json!({"tenant_id": "beta"});
        let e = bind_body(&mut other, &principal(), RouteKind::TenantOnly, None).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (403, "identity_mismatch"));
        assert_eq!(e.details.unwrap()["expected"], "acme");
        assert!(bind_body(&mut json!({}), &principal(), RouteKind::TenantOnly, Some("beta")).is_err());

        let mut w = json!({"nodes": []});
        bind_body(&mut w, &principal(), RouteKind::Write, None).unwrap();
        assert_eq!((w["producer_agent_id"].as_str(), w["owner_agent_id"].as_str()), (Some("a1"), Some("a1")));
        assert!(w.get("owner_team_id").is_none());
        let e = bind_body(&mut json!({"owner_team_id": "t2"}), &principal(), RouteKind::Write, None).unwrap_err();
        assert_eq!(e.details.unwrap()["field"], "owner_team_id");

        let mut p = json!({"context": {"intent": "json"}});
        bind_body(&mut p, &principal(), RouteKind::Policy, None).unwrap();
        assert_eq!(p["context"]["agent"], json!({"id": "a1", "team_id": "t1"}));
        assert_eq!(p["context"]["agent_id"], "a1");
        let e = bind_body(&mut json!({"context": {"agent": {"id": "a9"}}}), &principal(), RouteKind::Policy, None);
        assert_eq!(e.unwrap_err().code, "identity_mismatch");
    }
}

//! What a web browser may do with a Cairn: the `Host` check (DNS
//! rebinding) and, while memory auth is off, refusing cross-origin
//! requests (any page open in the user's browser could otherwise read and
//! write the agent's memory).
//!
//! - `cors_allow_origins`: comma-separated exact origins
//!   (`https://app.example`) a browser may call from; empty (the default) =
//!   none; `*` = any, only when set explicitly.
//! - `allowed_hosts`: comma-separated `host` or `host:port` the gateway
//!   answers to (a name without a port matches any port). Empty (the
//!   default) = `localhost`, `127.0.0.1` and `[::1]` on any port while auth
//!   is off, and no check while auth is on. `cairn up` with auth off adds
//!   its `--listen` address and the loopback names with its port.
//!
//! While auth is off a request whose `Origin` is neither allowed nor the
//! server's own gets `403 cross_origin_forbidden` (preflights too). A `Host`
//! that is not allowed gets `421 host_not_allowed` (Misdirected Request:
//! this server does not answer for that name). `/health` skips both.

use cairn_core::ApiError;

/// The `cors_allow_origins` list.
pub enum CorsOrigins {
    /// `*`: every origin.
    Any,
    /// Exact origins, lowercase (empty: no cross-origin access).
    List(Vec<String>),
}

impl CorsOrigins {
    pub fn parse(raw: &str) -> CorsOrigins {
        if raw.trim() == "*" {
            return CorsOrigins::Any;
        }
        CorsOrigins::List(
            raw.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect(),
        )
    }

    pub fn allows(&self, origin: &str) -> bool {
        match self {
            CorsOrigins::Any => true,
            CorsOrigins::List(l) => l.iter().any(|a| a.eq_ignore_ascii_case(origin.trim())),
        }
    }
}

/// A `host[:port]`, lowercase; `[..]` kept around an IPv6 literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: Option<u16>,
}

impl HostPort {
    /// Parses a `Host` header value or an `allowed_hosts` entry.
    pub fn parse(raw: &str) -> Option<HostPort> {
        let s = raw.trim().to_ascii_lowercase();
        let (host, port) = if s.starts_with('[') {
            let end = s.find(']')?;
            let rest = &s[end + 1..];
            let port = match rest.strip_prefix(':') {
                Some(p) => Some(p.parse().ok()?),
                None if rest.is_empty() => None,
                None => return None,
            };
            (s[..=end].to_string(), port)
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.parse().ok()?)),
                None => (s.clone(), None),
            }
        };
        let ok =
            !host.is_empty() && !host.contains(['/', '@', ' ', ',']) && (host.starts_with('[') || !host.contains(':'));
        ok.then_some(HostPort { host, port })
    }

    /// Whether a request's `Host` (`self`) is this allowed entry. A `Host`
    /// without a port is port 80.
    fn matches(&self, entry: &HostPort) -> bool {
        self.host == entry.host && entry.port.is_none_or(|p| p == self.port.unwrap_or(80))
    }
}

/// The hosts allowed while `allowed_hosts` is empty and auth is off.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// The `allowed_hosts` entries in force (`None` = no `Host` check).
pub fn allowed_hosts(raw: Option<&str>, auth_off: bool) -> Option<Vec<HostPort>> {
    let entries: Vec<HostPort> = raw.unwrap_or_default().split(',').filter_map(HostPort::parse).collect();
    match (entries.is_empty(), auth_off) {
        (false, _) => Some(entries),
        (true, true) => Some(LOOPBACK_NAMES.iter().filter_map(|h| HostPort::parse(h)).collect()),
        (true, false) => None,
    }
}

/// `421 host_not_allowed` unless the request's `Host` is allowed.
pub fn check_host(host: Option<&str>, allowed: &[HostPort]) -> Result<(), ApiError> {
    let shown = host.unwrap_or("").trim();
    match host.and_then(HostPort::parse) {
        Some(h) if allowed.iter().any(|a| h.matches(a)) => Ok(()),
        _ => Err(ApiError::new(
            421,
            "host_not_allowed",
            format!(
                "this server does not answer for Host '{shown}' (a DNS-rebinding guard); add the name to the \
                 allowed_hosts variable to use it"
            ),
        )),
    }
}

/// Whether `origin` is the server's own: the request's `Host` behind
/// `http://` or `https://`, or an allowed host named with its port.
pub fn is_own_origin(origin: &str, host: Option<&str>, allowed: Option<&[HostPort]>) -> bool {
    let o = origin.trim().to_ascii_lowercase();
    let Some(authority) = o.strip_prefix("http://").or_else(|| o.strip_prefix("https://")) else {
        return false;
    };
    let Some(origin_host) = HostPort::parse(authority) else { return false };
    if host.and_then(HostPort::parse).is_some_and(|h| h == origin_host) {
        return true;
    }
    // Entries without a port never make an origin "own": `localhost`
    // would otherwise admit every page served on any local port.
    allowed.unwrap_or_default().iter().any(|a| a.port.is_some() && *a == origin_host)
}

/// `403 cross_origin_forbidden` (auth off) for an `Origin` that is neither
/// allowed nor the server's own.
pub fn check_origin(
    origin: Option<&str>,
    cors: &CorsOrigins,
    host: Option<&str>,
    allowed: Option<&[HostPort]>,
) -> Result<(), ApiError> {
    let Some(origin) = origin else { return Ok(()) };
    if cors.allows(origin) || is_own_origin(origin, host, allowed) {
        return Ok(());
    }
    Err(ApiError::new(
        403,
        "cross_origin_forbidden",
        format!(
            "cross-origin request from '{}' refused: memory auth is off, so only the origins in \
             cors_allow_origins may call this server from a browser",
            origin.trim()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(h: &str, p: Option<u16>) -> HostPort {
        HostPort { host: h.into(), port: p }
    }

    #[test]
    fn parses_host_values() {
        assert_eq!(HostPort::parse("LocalHost:3001"), Some(hp("localhost", Some(3001))));
        assert_eq!(HostPort::parse("[::1]:80"), Some(hp("[::1]", Some(80))));
        assert_eq!(HostPort::parse("[::1]"), Some(hp("[::1]", None)));
        assert_eq!(HostPort::parse(" cairn.internal "), Some(hp("cairn.internal", None)));
        for bad in ["", "x:port", "a:99999", "::1", "[::1]x", "a b", "u@h:1", "h/p"] {
            assert_eq!(HostPort::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn host_rules() {
        let off = allowed_hosts(None, true).unwrap();
        check_host(Some("localhost:9"), &off).unwrap();
        check_host(Some("[::1]:3001"), &off).unwrap();
        assert_eq!(check_host(Some("evil.example:3001"), &off).unwrap_err().status, 421);
        assert_eq!(check_host(None, &off).unwrap_err().code, "host_not_allowed");
        assert!(allowed_hosts(Some(" , "), false).is_none(), "empty with auth on: no check");
        let set = allowed_hosts(Some("127.0.0.1:3001, cairn.internal"), false).unwrap();
        check_host(Some("127.0.0.1:3001"), &set).unwrap();
        check_host(Some("cairn.internal"), &set).unwrap();
        check_host(Some("cairn.internal:8443"), &set).unwrap();
        assert!(check_host(Some("127.0.0.1:3002"), &set).is_err());
        assert!(check_host(Some("localhost:3001"), &set).is_err());
    }

    #[test]
    fn origin_rules() {
        let none = CorsOrigins::parse("");
        let listed = CorsOrigins::parse("https://app.example/, http://localhost:5173");
        let allowed = allowed_hosts(Some("127.0.0.1:3001,localhost:3001,localhost"), true).unwrap();
        let a = Some(allowed.as_slice());
        let host = Some("127.0.0.1:3001");
        check_origin(None, &none, host, a).unwrap();
        check_origin(Some("http://127.0.0.1:3001"), &none, host, a).unwrap();
        check_origin(Some("http://localhost:3001"), &none, host, a).unwrap();
        let e = check_origin(Some("https://evil.example"), &none, host, a).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (403, "cross_origin_forbidden"));
        assert!(check_origin(Some("http://localhost:8080"), &none, host, a).is_err(), "portless entry");
        assert!(check_origin(Some("null"), &none, host, a).is_err());
        assert!(check_origin(Some("http://127.0.0.1:3001.evil.example"), &none, host, a).is_err());
        check_origin(Some("https://APP.example"), &listed, host, a).unwrap();
        assert!(check_origin(Some("https://app.example.evil"), &listed, host, a).is_err());
        check_origin(Some("https://evil.example"), &CorsOrigins::parse("*"), host, a).unwrap();
    }
}

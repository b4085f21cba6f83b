//! Small encodings used on the wire: `encodeURIComponent` for `aionis://`
//! URIs, base64url (the `base64` crate) for opaque cursors, API keys and JWTs.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Percent-encodes `s` exactly as JavaScript's `encodeURIComponent`.
pub fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; `None` for malformed escapes or invalid UTF-8.
pub fn decode_uri_component(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Decodes an `application/x-www-form-urlencoded` component (`+` is a space).
pub fn decode_form_component(s: &str) -> Option<String> {
    decode_uri_component(&s.replace('+', " "))
}

/// Parses a query string into decoded pairs (malformed escapes are kept raw).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                decode_form_component(k).unwrap_or_else(|| k.to_string()),
                decode_form_component(v).unwrap_or_else(|| v.to_string()),
            )
        })
        .collect()
}

/// base64url (RFC 4648 §5): never padded on output; on input padding is
/// optional and the encoding must be canonical (no stray trailing bits).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// base64url without padding.
pub fn base64url_encode(data: &[u8]) -> String {
    BASE64URL.encode(data)
}

/// Decodes base64url (padding optional); `None` if malformed.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    BASE64URL.decode(s).ok()
}

/// Decodes base64url that must be unpadded, as a JWT's segments are
/// (RFC 7515 §2); `None` if malformed or padded.
pub fn base64url_decode_unpadded(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_component_round_trip() {
        assert_eq!(encode_uri_component("a b/c:d?é"), "a%20b%2Fc%3Ad%3F%C3%A9");
        assert_eq!(decode_uri_component("a%20b%2Fc%3Ad%3F%C3%A9").unwrap(), "a b/c:d?é");
        assert_eq!(decode_uri_component("%zz"), None);
        assert_eq!(
            parse_query("a=1&b=x+y&c=%2F&d"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "/".into()),
                ("d".into(), "".into())
            ]
        );
    }

    #[test]
    fn base64url_round_trip() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar", "{\"v\":1,\"seq\":42}"] {
            let e = base64url_encode(s.as_bytes());
            assert!(!e.contains('='));
            assert_eq!(base64url_decode(&e).unwrap(), s.as_bytes());
        }
        assert_eq!(base64url_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url_decode("***"), None);
        // The URL-safe alphabet, padding accepted on input only.
        assert_eq!(base64url_encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url_decode("-_8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64url_decode("+/8"), None, "not the standard alphabet");
        // Non-canonical: stray bits after the last byte.
        assert_eq!(base64url_decode("Zh"), None);
        assert_eq!(base64url_decode_unpadded("Zm8").unwrap(), b"fo");
        assert_eq!(base64url_decode_unpadded("Zm8="), None);
    }
}

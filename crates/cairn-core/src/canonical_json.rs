//! Canonical JSON: the byte form every Cairn hash is computed over.
//!
//! It matches `fast-json-stable-stringify` run in JavaScript (the form the
//! Aionis reference hashes), so a pack or commit can be re-verified with a
//! few lines of JS, Python or Rust:
//!
//! - object keys sorted by UTF-16 code units (JavaScript's default sort),
//!   recursively; no whitespace;
//! - strings escaped as `JSON.stringify` does: `\"`, `\\`, `\b`, `\f`, `\n`,
//!   `\r`, `\t`, other control characters as `\u00xx` (lowercase hex),
//!   everything else literal UTF-8;
//! - numbers as JavaScript prints them: integers without a fraction
//!   (`1.0` -> `1`), the shortest round-trip digits otherwise, exponent form
//!   below 1e-6 and from 1e21 (`1e-7`, `1.5e+21`).

use serde_json::{Map, Number, Value};

/// The canonical string of `value`.
pub fn to_string(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value);
    out
}

/// Appends the canonical form of `value` to `out`.
pub fn write_value(out: &mut String, value: &Value) {
    write_styled(out, value, &Canonical);
}

/// What varies between JSON writers that print like `JSON.stringify`: the
/// order of an object's keys and the text of a number.
pub trait JsonStyle {
    fn keys<'a>(&self, map: &'a Map<String, Value>) -> Vec<&'a String>;
    fn number(&self, out: &mut String, n: &Number);
}

/// The canonical style: keys sorted by UTF-16 code units, integers exact.
struct Canonical;

impl JsonStyle for Canonical {
    fn keys<'a>(&self, map: &'a Map<String, Value>) -> Vec<&'a String> {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_by(|a, b| utf16_cmp(a, b));
        keys
    }
    fn number(&self, out: &mut String, n: &Number) {
        write_number(out, n);
    }
}

/// `JSON.stringify(value)` for a parsed JSON value: keys in the order they
/// arrived (insertion order), numbers as JavaScript prints them.
pub fn js_stringify(value: &Value) -> String {
    let mut out = String::with_capacity(64);
    write_styled(&mut out, value, &InsertionOrder);
    out
}

struct InsertionOrder;

impl JsonStyle for InsertionOrder {
    fn keys<'a>(&self, map: &'a Map<String, Value>) -> Vec<&'a String> {
        map.keys().collect()
    }
    fn number(&self, out: &mut String, n: &Number) {
        out.push_str(&js_number(n.as_f64().unwrap_or(0.0)));
    }
}

/// Appends `value` to `out` without whitespace, strings escaped as
/// `JSON.stringify` does, keys and numbers as `style` says.
pub fn write_styled<S: JsonStyle>(out: &mut String, value: &Value, style: &S) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => style.number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_styled(out, item, style);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, key) in style.keys(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_styled(out, &map[key.as_str()], style);
            }
            out.push('}');
        }
    }
}

/// JavaScript's default string order: by UTF-16 code units. It differs from
/// Rust's (code point) order only between astral characters and U+E000..FFFF.
fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Writes `s` as a JSON string literal the way `JSON.stringify` does.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{08}' => Some("\\b"),
            '\u{0c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                out.push_str("\\u00");
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 0xf] as char);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else {
        out.push_str(&js_number(n.as_f64().unwrap_or(0.0)));
    }
}

/// Formats a finite f64 as ECMAScript's `Number.prototype.toString()` does.
pub fn js_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        // JSON has no NaN/Infinity (JSON.stringify writes null); -0 prints "0".
        return if x.is_finite() { "0".into() } else { "null".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "d.ddde-7".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp + 1; // value = 0.d1d2..dk * 10^n
    let mut out = String::with_capacity(24);
    if x < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        let e = n - 1;
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&e.abs().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_recursively_without_whitespace() {
        let v = json!({"b": 1, "a": {"d": [3, {"z": null, "y": true}], "c": "x"}});
        assert_eq!(to_string(&v), r#"{"a":{"c":"x","d":[3,{"y":true,"z":null}]},"b":1}"#);
    }

    #[test]
    fn numbers_print_like_javascript() {
        let cases = [
            (1.0, "1"),
            (0.5, "0.5"),
            (-2.25, "-2.25"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.25e-7, "1.25e-7"),
            (-0.0, "0"),
            (100.0, "100"),
            (0.1, "0.1"),
            (5e-324, "5e-324"),
        ];
        for (x, want) in cases {
            assert_eq!(js_number(x), want, "formatting {x:?}");
        }
        assert_eq!(to_string(&json!([1.0, 2, -3, 0.75])), "[1,2,-3,0.75]");
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        let v = json!("a\"b\\c\n\t\u{1}\u{1f}é\u{2028}😀");
        assert_eq!(to_string(&v), "\"a\\\"b\\\\c\\n\\t\\u0001\\u001fé\u{2028}😀\"");
    }

    #[test]
    fn key_order_is_utf16_order() {
        // U+FF61 sorts after U+1F600 in code points order but before it in UTF-16.
        let v = json!({"\u{1F600}": 1, "\u{FF61}": 2, "a": 0});
        assert_eq!(to_string(&v), "{\"a\":0,\"\u{1F600}\":1,\"\u{FF61}\":2}");
    }
}

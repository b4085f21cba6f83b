//! Column values as JSON, losslessly, for pages passed between two
//! component instances: integers as JSON integers, reals as JSON numbers
//! with a fraction or exponent (`1.0`), text as strings, blobs as
//! `{"b64": …}` (base64url), NULL as null.

use cairn_core::ApiError;
use cairn_core::encoding::{base64url_decode, base64url_encode};
use cairn_spin::sql::SqlValue;
use serde_json::{Value, json};

pub fn to_json(v: &SqlValue) -> Result<Value, ApiError> {
    Ok(match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => json!(i),
        SqlValue::Real(x) => {
            // JSON has no NaN or infinity; a copy must not turn one into NULL.
            let n = serde_json::Number::from_f64(*x)
                .ok_or_else(|| ApiError::internal(format!("a real column holds {x}, which JSON cannot carry")))?;
            Value::Number(n)
        }
        SqlValue::Text(s) => json!(s),
        SqlValue::Blob(b) => json!({ "b64": base64url_encode(b) }),
    })
}

pub fn from_json(v: &Value) -> Result<SqlValue, ApiError> {
    let bad = || ApiError::bad_request("invalid_page", format!("not a column value: {v}"));
    Ok(match v {
        Value::Null => SqlValue::Null,
        Value::Number(n) if n.is_i64() => SqlValue::Integer(n.as_i64().ok_or_else(bad)?),
        Value::Number(n) if n.is_f64() => SqlValue::Real(n.as_f64().ok_or_else(bad)?),
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Object(o) => {
            let b = o.get("b64").and_then(Value::as_str).ok_or_else(bad)?;
            SqlValue::Blob(base64url_decode(b).ok_or_else(bad)?)
        }
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_json_text() {
        let values = [
            SqlValue::Null,
            SqlValue::Integer(i64::MIN),
            SqlValue::Integer(1),
            SqlValue::Real(1.0),
            SqlValue::Real(0.1 + 0.2),
            SqlValue::Real(-0.0),
            SqlValue::Real(1e300),
            SqlValue::Text("ü \"x\"".into()),
            SqlValue::Blob(vec![0, 255, 7]),
            SqlValue::Blob(vec![]),
        ];
        for v in values {
            let text = to_json(&v).unwrap().to_string();
            let back = from_json(&serde_json::from_str(&text).unwrap()).unwrap();
            match (&v, &back) {
                (SqlValue::Real(a), SqlValue::Real(b)) => assert_eq!(a.to_bits(), b.to_bits(), "{text}"),
                _ => assert_eq!(v, back, "{text}"),
            }
        }
        assert!(to_json(&SqlValue::Real(f64::NAN)).is_err());
        assert_eq!(from_json(&json!(true)).unwrap_err().code, "invalid_page");
    }
}

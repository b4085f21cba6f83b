//! `POST /v1/memory/find`: deterministic lookup by URI, id, client_id, type,
//! title/text substring, lane and slots containment — never embeddings.
//! Newest first (`created_at DESC, seq DESC, id DESC`: same-millisecond
//! writes by write order), paged by limit/offset.

use crate::node_dto::{DtoOptions, add_common, node_uri};
use crate::settings::Settings;
use crate::stored_rows::{NODE_COLUMNS, StoredNode, lane_visible_sql};
use crate::write_request::{LANES, NODE_TYPES};
use cairn_core::ApiError;
use cairn_core::encoding::decode_uri_component;
use cairn_core::request_reader::Reader;
use cairn_core::stable_id::is_uuid_v1_to_v5;
use cairn_core::tenant_scope;
use cairn_spin::sql::{Dialect, Sql, SqlValue};
use serde_json::{Map, Value, json};

/// The parts of an `aionis://tenant/scope/type/id` URI.
#[derive(Debug, PartialEq)]
pub struct AionisUri {
    pub tenant_id: String,
    pub scope: String,
    pub node_type: String,
    pub id: String,
}

fn bad_uri(msg: &str) -> ApiError {
    ApiError::bad_request("invalid_aionis_uri", msg)
}

/// Parses an `aionis://` URI (URL-encoded segments, exactly four).
pub fn parse_uri(uri: &str) -> Result<AionisUri, ApiError> {
    let rest = uri.trim().strip_prefix("aionis://").ok_or_else(|| bad_uri("uri must start with aionis://"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() != 4 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad_uri("uri must be aionis://<tenant>/<scope>/<type>/<id>"));
    }
    let dec = |s: &str| decode_uri_component(s).ok_or_else(|| bad_uri("uri has a malformed percent-escape"));
    let u =
        AionisUri { tenant_id: dec(parts[0])?, scope: dec(parts[1])?, node_type: dec(parts[2])?, id: dec(parts[3])? };
    if !NODE_TYPES.contains(&u.node_type.as_str()) {
        return Err(bad_uri("uri type must be a node type"));
    }
    if !is_uuid_v1_to_v5(&u.id) {
        return Err(bad_uri("uri id must be a UUID (versions 1-5)"));
    }
    Ok(u)
}

/// Translates `slots @> pattern` into SQL over the JSON text column, binding
/// parameters. Objects recurse; scalars compare type and value; arrays
/// require each scalar element to be present. Returns `None` when the
/// pattern needs something SQL cannot express here (objects inside arrays,
/// keys with quotes), and the caller filters in Rust instead.
fn slots_sql(
    pattern: &Map<String, Value>,
    path: &str,
    sql: &mut Vec<String>,
    params: &mut Vec<SqlValue>,
) -> Option<()> {
    for (k, v) in pattern {
        if k.contains('"') || k.contains('\\') {
            return None;
        }
        let p = format!("{path}.\"{k}\"");
        match v {
            Value::Object(m) => {
                sql.push("json_type(n.slots, ?) = 'object'".into());
                params.push(p.clone().into());
                slots_sql(m, &p, sql, params)?;
            }
            Value::Array(items) => {
                sql.push("json_type(n.slots, ?) = 'array'".into());
                params.push(p.clone().into());
                for item in items {
                    let (cond, val) = scalar_cond("value", "type", item)?;
                    sql.push(format!("EXISTS (SELECT 1 FROM json_each(n.slots, ?) WHERE {cond})"));
                    params.push(p.clone().into());
                    params.extend(val);
                }
            }
            scalar => {
                let (cond, val) = scalar_cond("json_extract(n.slots, ?)", "json_type(n.slots, ?)", scalar)?;
                // The path binds once for the type check and once more for the
                // value comparison, which comes last.
                sql.push(cond);
                params.push(p.clone().into());
                if val.is_some() {
                    params.push(p.clone().into());
                }
                params.extend(val);
            }
        }
    }
    Some(())
}

/// The condition for one scalar: `(type_expr, value_expr)` with their
/// placeholders, and the bound value if any.
fn scalar_cond(value_expr: &str, type_expr: &str, v: &Value) -> Option<(String, Option<SqlValue>)> {
    Some(match v {
        Value::Null => (format!("{type_expr} = 'null'"), None),
        Value::Bool(true) => (format!("{type_expr} = 'true'"), None),
        Value::Bool(false) => (format!("{type_expr} = 'false'"), None),
        Value::String(s) => (format!("({type_expr} = 'text' AND {value_expr} = ?)"), Some(s.clone().into())),
        Value::Number(n) => (
            format!("({type_expr} IN ('integer', 'real') AND {value_expr} = ?)"),
            Some(match n.as_i64() {
                Some(i) => SqlValue::Integer(i),
                None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
            }),
        ),
        _ => return None,
    })
}

/// `slots @> pattern` evaluated in Rust (jsonb containment semantics).
pub fn contains(doc: &Value, pattern: &Value) -> bool {
    match (doc, pattern) {
        (Value::Object(d), Value::Object(p)) => p.iter().all(|(k, pv)| d.get(k).is_some_and(|dv| contains(dv, pv))),
        (Value::Array(d), Value::Array(p)) => p.iter().all(|pv| d.iter().any(|dv| contains(dv, pv))),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// Runs a find request.
pub fn find(db: &dyn Sql, settings: &Settings, body: &Value) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let tenant = r.str_any(o, "tenant_id");
    let scope = r.str_any(o, "scope");
    let uri = r.str_opt(o, "uri");
    let id = r.uuid_opt(o, "id");
    let client_id = r.str_opt_len(o, "client_id", 1, 512);
    let node_type = r.enum_opt(o, "type", NODE_TYPES);
    let title_contains = r.str_opt_len(o, "title_contains", 1, 1000);
    let text_contains = r.str_opt_len(o, "text_contains", 1, 1000);
    let memory_lane = r.enum_opt(o, "memory_lane", LANES);
    let slots_contains = r.obj_opt(o, "slots_contains").cloned();
    let consumer_agent = r.str_opt_len(o, "consumer_agent_id", 1, 256);
    let consumer_team = r.str_opt_len(o, "consumer_team_id", 1, 256);
    let dto = DtoOptions::read(&mut r, o);
    let limit = r.int_opt(o, "limit", 1, 200).unwrap_or(20);
    let offset = r.int_opt(o, "offset", 0, 200_000).unwrap_or(0);
    r.finish()?;

    // URI parts fill in, and must agree with, the explicit fields.
    let (mut tenant, mut scope, mut id, mut node_type) = (tenant, scope, id, node_type);
    if let Some(u) = &uri {
        let p = parse_uri(u)?;
        let mut conflicts = Vec::new();
        let mut merge = |field: &str, explicit: &mut Option<String>, from_uri: String| match explicit {
            Some(e) if e.trim() != from_uri => conflicts.push(field.to_string()),
            _ => *explicit = Some(from_uri),
        };
        merge("tenant_id", &mut tenant, p.tenant_id);
        merge("scope", &mut scope, p.scope);
        merge("type", &mut node_type, p.node_type);
        merge("id", &mut id, p.id.to_ascii_lowercase());
        if !conflicts.is_empty() {
            return Err(ApiError::bad_request("conflicting_filters", "uri conflicts with explicit filters")
                .with_details(json!({"fields": conflicts})));
        }
    }
    let ts = tenant_scope::resolve(tenant.as_deref(), scope.as_deref(), &settings.defaults)?;

    let mut conds = vec!["n.scope = ?".to_string(), lane_visible_sql("n")];
    let mut params: Vec<SqlValue> =
        vec![(&ts.scope_key).into(), consumer_agent.clone().into(), consumer_team.clone().into()];
    let mut add = |c: &str, v: SqlValue| {
        conds.push(c.to_string());
        params.push(v);
    };
    if let Some(v) = &id {
        add("n.id = ?", v.into());
    }
    if let Some(v) = &client_id {
        add("n.client_id = ?", v.trim().into());
    }
    if let Some(v) = &node_type {
        add("n.type = ?", v.into());
    }
    let dialect = db.dialect();
    let position = dialect.position_fn();
    if let Some(v) = &title_contains {
        add(&format!("{position}(lower(coalesce(n.title, '')), lower(?)) > 0"), v.into());
    }
    if let Some(v) = &text_contains {
        add(&format!("{position}(lower(coalesce(n.text_summary, '')), lower(?)) > 0"), v.into());
    }
    if let Some(v) = &memory_lane {
        add("n.memory_lane = ?", v.into());
    }
    let mut rust_filter = None;
    if let Some(p) = &slots_contains {
        if dialect == Dialect::Postgres {
            // jsonb containment is exactly what `contains` emulates.
            add("n.slots::jsonb @> CAST(? AS jsonb)", cairn_core::json_text(&Value::Object(p.clone())).into());
        } else {
            let (mut s, mut sp) = (Vec::new(), Vec::new());
            match slots_sql(p, "$", &mut s, &mut sp) {
                Some(()) => {
                    conds.extend(s);
                    params.extend(sp);
                }
                None => rust_filter = Some(Value::Object(p.clone())),
            }
        }
    }

    let where_sql = conds.join(" AND ");
    let seq_desc = dialect.desc_nulls_last();
    let (rows, has_more) = if let Some(pattern) = rust_filter {
        // Filter in Rust, then page.
        let sql = format!(
            "SELECT {NODE_COLUMNS} FROM memory_nodes n WHERE {where_sql} ORDER BY n.created_at DESC, n.seq {seq_desc}, n.id DESC"
        );
        let all: Vec<StoredNode> = db
            .query(&sql, &params)?
            .iter()
            .map(StoredNode::from_row)
            .filter(|n| contains(&Value::Object(n.slots.clone()), &pattern))
            .collect();
        let has_more = all.len() as i64 > offset + limit;
        (all.into_iter().skip(offset as usize).take(limit as usize).collect::<Vec<_>>(), has_more)
    } else {
        // Literal LIMIT and OFFSET (validated integers): SQLite re-prepares
        // a statement whose `LIMIT ?` is bound anew on every run.
        let sql = format!(
            "SELECT {} FROM memory_nodes n WHERE {where_sql} ORDER BY n.created_at DESC, n.seq {seq_desc}, n.id DESC LIMIT {} OFFSET {}",
            NODE_COLUMNS.split(", ").map(|c| format!("n.{c}")).collect::<Vec<_>>().join(", "),
            limit + 1,
            offset
        );
        let mut nodes: Vec<StoredNode> = db.query(&sql, &params)?.iter().map(StoredNode::from_row).collect();
        let has_more = nodes.len() as i64 > limit;
        nodes.truncate(limit as usize);
        (nodes, has_more)
    };

    let nodes: Vec<Value> = rows
        .iter()
        .map(|n| {
            let mut m = Map::new();
            m.insert("uri".into(), json!(node_uri(&ts.tenant_id, &ts.scope, &n.node_type, &n.id)));
            m.insert("id".into(), json!(n.id));
            m.insert("client_id".into(), json!(n.client_id));
            m.insert("type".into(), json!(n.node_type));
            m.insert("title".into(), json!(n.title));
            m.insert("text_summary".into(), json!(n.text_summary));
            add_common(&mut m, n, &dto, true);
            Value::Object(m)
        })
        .collect();
    Ok(json!({
        "tenant_id": ts.tenant_id,
        "scope": ts.scope,
        "mode": "find",
        "filters": {
            "uri": uri, "id": id, "client_id": client_id, "type": node_type,
            "title_contains": title_contains, "text_contains": text_contains, "memory_lane": memory_lane,
            "slots_contains": slots_contains, "consumer_agent_id": consumer_agent, "consumer_team_id": consumer_team,
        },
        "nodes": nodes,
        "page": {"limit": limit, "offset": offset, "returned": rows.len(), "has_more": has_more},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uris() {
        let u = parse_uri("aionis://t%201/s%2Fx/event/123e4567-e89b-12d3-a456-426614174000").unwrap();
        assert_eq!(u.tenant_id, "t 1");
        assert_eq!(u.scope, "s/x");
        for bad in [
            "http://x/y/event/123e4567-e89b-12d3-a456-426614174000",
            "aionis://t/s/event",
            "aionis://t/s/bogus/123e4567-e89b-12d3-a456-426614174000",
            "aionis://t/s/event/not-a-uuid",
            "aionis://t/s/event/123e4567-e89b-12d3-a456-426614174000/extra",
        ] {
            assert_eq!(parse_uri(bad).unwrap_err().code, "invalid_aionis_uri", "{bad}");
        }
    }

    #[test]
    fn containment() {
        let doc = json!({"a": 1, "b": {"c": [1, 2, {"d": true}]}, "s": "x"});
        assert!(contains(&doc, &json!({"a": 1.0})));
        assert!(contains(&doc, &json!({"b": {"c": [2, {"d": true}]}})));
        assert!(!contains(&doc, &json!({"b": {"c": [3]}})));
        assert!(!contains(&doc, &json!({"s": "y"})));
    }

    #[test]
    fn slots_sql_binds_paths_and_values() {
        let p: Map<String, Value> = serde_json::from_value(json!({"k": "v", "n": {"x": true}, "arr": [1]})).unwrap();
        let (mut s, mut v) = (Vec::new(), Vec::new());
        slots_sql(&p, "$", &mut s, &mut v).unwrap();
        let placeholders: usize = s.iter().map(|c| c.matches('?').count()).sum();
        assert_eq!(placeholders, v.len());
        let p: Map<String, Value> = serde_json::from_value(json!({"arr": [{"x": 1}]})).unwrap();
        assert!(slots_sql(&p, "$", &mut Vec::new(), &mut Vec::new()).is_none());
    }
}

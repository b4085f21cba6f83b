//! The session-first API: a session is a `topic` node
//! (`client_id = "session:" + encodeURIComponent(session_id)`), an event is
//! an `event` node linked to it by a `part_of` edge. Both are plain writes,
//! so they are commits on the scope's chain like any other.

use crate::node_dto::{DtoOptions, add_common, node_uri};
use crate::settings::Settings;
use crate::stored_rows::{NODE_COLUMNS, StoredNode, lane_visible_sql};
use crate::write_path;
use crate::write_request::{self, LANES};
use cairn_core::ApiError;
use cairn_core::encoding::encode_uri_component;
use cairn_core::request_reader::{Obj, Reader, query_int};
use cairn_core::tenant_scope::{self, TenantScope};
use cairn_spin::sql::{Sql, SqlValue};
use serde_json::{Map, Value, json};

pub fn session_client_id(session_id: &str) -> String {
    format!("session:{}", encode_uri_component(session_id))
}

pub fn event_client_id(session_id: &str, event_id: &str) -> String {
    format!("session_event:{}:{}", encode_uri_component(session_id), encode_uri_component(event_id))
}

/// Lane and owner fields shared by both requests.
struct Ownership {
    lane: Option<String>,
    producer: Option<String>,
    owner_agent: Option<String>,
    owner_team: Option<String>,
}

fn read_ownership(r: &mut Reader, o: Obj) -> Ownership {
    Ownership {
        lane: r.enum_opt(o, "memory_lane", LANES),
        producer: r.str_opt_len(o, "producer_agent_id", 1, 256),
        owner_agent: r.str_opt_len(o, "owner_agent_id", 1, 256),
        owner_team: r.str_opt_len(o, "owner_team_id", 1, 256),
    }
}

fn put_ownership(m: &mut Map<String, Value>, w: &Ownership) {
    for (k, v) in [
        ("memory_lane", &w.lane),
        ("producer_agent_id", &w.producer),
        ("owner_agent_id", &w.owner_agent),
        ("owner_team_id", &w.owner_team),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
}

fn resolve_ts(r: &mut Reader, o: Obj, settings: &Settings) -> Result<TenantScope, ApiError> {
    let tenant = r.str_any(o, "tenant_id");
    let scope = r.str_any(o, "scope");
    tenant_scope::resolve(tenant.as_deref(), scope.as_deref(), &settings.defaults)
}

/// `slots = {...metadata, system keys}`: the system keys win.
fn slots_with(metadata: Option<&Map<String, Value>>, system: Value) -> Value {
    let mut m = metadata.cloned().unwrap_or_default();
    if let Value::Object(s) = system {
        m.extend(s);
    }
    Value::Object(m)
}

fn session_node(
    session_id: &str,
    title: Option<&str>,
    text_summary: Option<&str>,
    metadata: Option<&Map<String, Value>>,
) -> Value {
    let title = title.map(str::to_string).unwrap_or_else(|| format!("Session {session_id}"));
    let summary = text_summary.map(str::to_string).unwrap_or_else(|| title.clone());
    json!({
        "client_id": session_client_id(session_id),
        "type": "topic",
        "title": title,
        "text_summary": summary,
        "slots": slots_with(metadata, json!({"system_kind": "session", "session_id": session_id})),
    })
}

/// `POST /v1/memory/sessions`.
pub fn create_session(db: &dyn Sql, settings: &Settings, body: &Value, now_ms: i64) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let ts = resolve_ts(&mut r, o, settings)?;
    let session_id = r.str_req(o, "session_id").filter(|s| s.chars().count() <= 128);
    if session_id.is_none() && !r.has_issues() {
        r.issue("session_id", "String must contain at most 128 character(s)");
    }
    let actor = r.str_opt_len(o, "actor", 1, 256).unwrap_or_else(|| "session_api".into());
    let title = r.str_opt_len(o, "title", 1, 512);
    let summary = r.str_opt_len(o, "text_summary", 1, 4000);
    let input_text = r.str_opt(o, "input_text");
    let metadata = r.obj_opt(o, "metadata").cloned();
    let auto_embed = r.bool_opt(o, "auto_embed").unwrap_or(false);
    let own = read_ownership(&mut r, o);
    r.finish()?;
    let session_id = session_id.expect("checked");

    let mut w = Map::new();
    w.insert("actor".into(), json!(actor));
    w.insert("input_text".into(), json!(input_text.unwrap_or_else(|| format!("create session {session_id}"))));
    w.insert("auto_embed".into(), json!(auto_embed));
    w.insert("trigger_topic_cluster".into(), json!(false));
    put_ownership(&mut w, &own);
    w.insert(
        "nodes".into(),
        json!([session_node(&session_id, title.as_deref(), summary.as_deref(), metadata.as_ref())]),
    );
    let wbody = Value::Object(w);
    let spec = write_request::parse_in_scope(Reader::root(&wbody)?, ts.clone(), settings)?;
    let resp = write_path::write(db, settings, &spec, now_ms)?;
    let session_node_id = spec.nodes[0].id.clone();
    Ok(json!({
        "tenant_id": ts.tenant_id,
        "scope": ts.scope,
        "session_id": session_id,
        "session_node_id": session_node_id,
        "session_uri": node_uri(&ts.tenant_id, &ts.scope, "topic", &session_node_id),
        "commit_id": resp["commit_id"],
        "commit_hash": resp["commit_hash"],
        "nodes": resp["nodes"],
        "edges": resp["edges"],
        "embedding_backfill": resp.get("embedding_backfill").cloned().unwrap_or(Value::Null),
    }))
}

fn load_by_client_id(db: &dyn Sql, key: &str, client_id: &str) -> Result<Option<StoredNode>, ApiError> {
    Ok(db
        .query_one(
            &format!("SELECT {NODE_COLUMNS} FROM memory_nodes WHERE scope = ? AND client_id = ?"),
            &[key.into(), client_id.into()],
        )?
        .map(|r| StoredNode::from_row(&r)))
}

/// `POST /v1/memory/events`.
pub fn write_event(
    db: &dyn Sql,
    settings: &Settings,
    body: &Value,
    now_ms: i64,
    random_id: impl FnOnce() -> String,
) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let ts = resolve_ts(&mut r, o, settings)?;
    let session_id = r.str_opt_len(o, "session_id", 1, 128);
    if session_id.is_none() && o.map.get("session_id").is_none_or(Value::is_null) {
        r.issue("session_id", "Required");
    }
    let event_id = r.str_opt_len(o, "event_id", 1, 128);
    let actor = r.str_opt_len(o, "actor", 1, 256).unwrap_or_else(|| "session_api".into());
    let title = r.str_opt_len(o, "title", 1, 512);
    let summary = r.str_opt_len(o, "text_summary", 1, 8000);
    let input_text = r.str_opt(o, "input_text");
    let metadata = r.obj_opt(o, "metadata").cloned();
    let auto_embed = r.bool_opt(o, "auto_embed").unwrap_or(true);
    let edge_weight = r.num_opt(o, "edge_weight", 0.0, 1.0).unwrap_or(1.0);
    let edge_confidence = r.num_opt(o, "edge_confidence", 0.0, 1.0).unwrap_or(1.0);
    let mut own = read_ownership(&mut r, o);
    if title.is_none() && summary.is_none() && input_text.is_none() {
        r.issue("", "must set text_summary, title or input_text");
    }
    r.finish()?;
    let session_id = session_id.expect("checked");
    let event_id = event_id.unwrap_or_else(random_id);

    // Appending to an existing private session requires being its owner;
    // the event inherits the session's lane and owners.
    if let Some(s) = load_by_client_id(db, &ts.scope_key, &session_client_id(&session_id))? {
        if s.memory_lane == "private" {
            let writer_agent = own.owner_agent.clone().or_else(|| own.producer.clone());
            let agent_ok = writer_agent.is_some() && writer_agent == s.owner_agent_id;
            let team_ok = own.owner_team.is_some() && own.owner_team == s.owner_team_id;
            if !agent_ok && !team_ok {
                return Err(ApiError::new(
                    403,
                    "session_owner_mismatch",
                    "only the session's owner may append events to a private session",
                )
                .with_details(json!({"session_id": session_id})));
            }
        }
        own.lane = Some(s.memory_lane.clone());
        own.owner_agent = s.owner_agent_id.clone();
        own.owner_team = s.owner_team_id.clone();
    }

    let event_cid = event_client_id(&session_id, &event_id);
    let mut event = json!({
        "client_id": event_cid,
        "type": "event",
        "slots": slots_with(metadata.as_ref(), json!({"system_kind": "session_event", "session_id": session_id, "event_id": event_id})),
    });
    if let Some(t) = &title {
        event["title"] = json!(t);
    }
    if let Some(s) = &summary {
        event["text_summary"] = json!(s);
    }
    let mut w = Map::new();
    w.insert("actor".into(), json!(actor));
    let input = input_text.clone().or_else(|| summary.clone()).or_else(|| title.clone()).unwrap_or_default();
    w.insert("input_text".into(), json!(input));
    w.insert("auto_embed".into(), json!(auto_embed));
    put_ownership(&mut w, &own);
    w.insert("nodes".into(), json!([session_node(&session_id, None, None, None), event]));
    w.insert(
        "edges".into(),
        json!([{
            "type": "part_of", "src": {"client_id": event_cid}, "dst": {"client_id": session_client_id(&session_id)},
            "weight": edge_weight, "confidence": edge_confidence,
        }]),
    );
    let wbody = Value::Object(w);
    let spec = write_request::parse_in_scope(Reader::root(&wbody)?, ts.clone(), settings)?;
    let resp = write_path::write(db, settings, &spec, now_ms)?;
    let (session_node_id, event_node_id) = (spec.nodes[0].id.clone(), spec.nodes[1].id.clone());
    Ok(json!({
        "tenant_id": ts.tenant_id,
        "scope": ts.scope,
        "session_id": session_id,
        "event_id": event_id,
        "event_node_id": event_node_id,
        "session_node_id": session_node_id,
        "event_uri": node_uri(&ts.tenant_id, &ts.scope, "event", &event_node_id),
        "session_uri": node_uri(&ts.tenant_id, &ts.scope, "topic", &session_node_id),
        "commit_id": resp["commit_id"],
        "commit_hash": resp["commit_hash"],
        "nodes": resp["nodes"],
        "edges": resp["edges"],
        "embedding_backfill": resp.get("embedding_backfill").cloned().unwrap_or(Value::Null),
    }))
}

/// `GET /v1/memory/sessions/:session_id/events`.
pub fn list_events(
    db: &dyn Sql,
    settings: &Settings,
    session_id: &str,
    query: &[(String, String)],
) -> Result<Value, ApiError> {
    let q = |k: &str| query.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut r = Reader::new();
    let dto = DtoOptions::read_query(&mut r, &q);
    let limit = query_int(&mut r, "limit", q("limit").as_deref(), 1, 200).unwrap_or(20);
    let offset = query_int(&mut r, "offset", q("offset").as_deref(), 0, 200_000).unwrap_or(0);
    if session_id.is_empty() || session_id.chars().count() > 128 {
        r.issue("session_id", "must be 1..128 characters");
    }
    r.finish()?;
    let ts = tenant_scope::resolve(q("tenant_id").as_deref(), q("scope").as_deref(), &settings.defaults)?;
    let agent = q("consumer_agent_id").filter(|s| !s.is_empty());
    let team = q("consumer_team_id").filter(|s| !s.is_empty());

    let session = load_by_client_id(db, &ts.scope_key, &session_client_id(session_id))?
        .filter(|s| s.visible_to(agent.as_deref(), team.as_deref()));
    let Some(session) = session else {
        return Ok(json!({
            "tenant_id": ts.tenant_id, "scope": ts.scope, "session": null, "events": [],
            "page": {"limit": limit, "offset": offset, "returned": 0, "has_more": false},
        }));
    };
    let cols = NODE_COLUMNS.split(", ").map(|c| format!("n.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {cols}, e.weight, e.confidence FROM memory_edges e JOIN memory_nodes n ON n.id = e.src_id \
         WHERE e.scope = ? AND e.dst_id = ? AND e.type = 'part_of' AND n.type = 'event' AND {} \
         ORDER BY n.created_at DESC, n.seq {}, n.id DESC LIMIT ? OFFSET ?",
        lane_visible_sql("n"),
        db.dialect().desc_nulls_last()
    );
    let rows = db.query(
        &sql,
        &[
            (&ts.scope_key).into(),
            (&session.id).into(),
            agent.into(),
            team.into(),
            SqlValue::Integer(limit + 1),
            SqlValue::Integer(offset),
        ],
    )?;
    let has_more = rows.len() as i64 > limit;
    let ncols = NODE_COLUMNS.split(", ").count();
    let events: Vec<Value> = rows
        .iter()
        .take(limit as usize)
        .map(|row| {
            let n = StoredNode::from_row(row);
            let mut m = Map::new();
            m.insert("uri".into(), json!(node_uri(&ts.tenant_id, &ts.scope, &n.node_type, &n.id)));
            m.insert("id".into(), json!(n.id));
            m.insert("client_id".into(), json!(n.client_id));
            m.insert("event_id".into(), n.slots.get("event_id").cloned().unwrap_or(Value::Null));
            m.insert("type".into(), json!(n.node_type));
            m.insert("title".into(), json!(n.title));
            m.insert("text_summary".into(), json!(n.text_summary));
            m.insert("edge_weight".into(), json!(row.real(ncols)));
            m.insert("edge_confidence".into(), json!(row.real(ncols + 1)));
            add_common(&mut m, &n, &dto, true);
            Value::Object(m)
        })
        .collect();
    let returned = events.len();
    Ok(json!({
        "tenant_id": ts.tenant_id,
        "scope": ts.scope,
        "session": {
            "session_id": session_id, "node_id": session.id, "title": session.title,
            "text_summary": session.text_summary, "uri": node_uri(&ts.tenant_id, &ts.scope, "topic", &session.id),
        },
        "events": events,
        "page": {"limit": limit, "offset": offset, "returned": returned, "has_more": has_more},
    }))
}

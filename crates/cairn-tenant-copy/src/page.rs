//! A tenant's rows, a page at a time: read from the source in a table's
//! order after a cursor, inserted into the destination in one write
//! transaction per page (a page is all or nothing).

use crate::tables::Table;
use crate::wire;
use cairn_core::ApiError;
use cairn_spin::sql::{Sql, SqlValue, is_unique_violation, placeholders, write_txn};
use serde_json::{Value, json};

/// Rows per page (at most; the insert splits further by parameters).
pub const PAGE_ROWS: i64 = 500;
/// Parameters per INSERT, under SQLite's limit (32,766) and PostgreSQL's (65,535).
const MAX_PARAMS: usize = 30_000;

/// One page of `table`'s rows of `tenant_id` after `cursor` (the order key
/// of the previous page's last row; none: from the start):
/// `{table, columns, rows: [[value…]…], next: cursor | null}`.
pub fn export(
    db: &dyn Sql,
    table: &Table,
    tenant_id: &str,
    default_tenant: &str,
    cursor: Option<&[SqlValue]>,
    limit: i64,
) -> Result<Value, ApiError> {
    let (cond, cond_params) = table.tenant_condition(tenant_id, default_tenant);
    let mut params: Vec<SqlValue> = cond_params.into_iter().map(Into::into).collect();
    let key = table.order_by.join(", ");
    let after = match cursor {
        None => String::new(),
        Some(c) if c.len() == table.order_by.len() => {
            params.extend(c.iter().cloned());
            if c.len() == 1 { format!(" AND {key} > ?") } else { format!(" AND ({key}) > ({})", placeholders(c.len())) }
        }
        Some(c) => {
            return Err(ApiError::bad_request(
                "invalid_cursor",
                format!("{} is ordered by {key}; the cursor has {} values", table.name, c.len()),
            ));
        }
    };
    params.push(SqlValue::Integer(limit.clamp(1, PAGE_ROWS)));
    let rows = db.query(
        &format!("SELECT {} FROM {} WHERE {cond}{after} ORDER BY {key} LIMIT ?", table.select_list(), table.name),
        &params,
    )?;
    let k = table.order_by.len();
    let next = match rows.last() {
        Some(last) if rows.len() as i64 == limit.clamp(1, PAGE_ROWS) => {
            Some(last.0[..k].iter().map(wire::to_json).collect::<Result<Vec<_>, _>>()?)
        }
        _ => None,
    };
    let rows = rows
        .iter()
        .map(|r| r.0[k..].iter().map(wire::to_json).collect::<Result<Vec<_>, _>>().map(Value::Array))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({"table": table.name, "columns": table.columns, "rows": rows, "next": next}))
}

/// Inserts a page from [`export`] into `db`, in one write transaction.
/// The page must carry exactly the table's columns; every row must belong
/// to `tenant_id` (a page is checked, not trusted). Returns the rows
/// inserted.
pub fn import(
    db: &dyn Sql,
    table: &Table,
    tenant_id: &str,
    default_tenant: &str,
    page: &Value,
) -> Result<i64, ApiError> {
    let columns: Vec<&str> = page["columns"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if columns != table.columns {
        return Err(ApiError::bad_request(
            "invalid_page",
            format!("{}: the page's columns {columns:?} are not the table's {:?}", table.name, table.columns),
        ));
    }
    let owner_col = match table.owner {
        crate::tables::Owner::ScopeKey => "scope",
        crate::tables::Owner::TenantId => "tenant_id",
    };
    let owner_at =
        table.columns.iter().position(|c| *c == owner_col).expect("every copied table holds its owner column");
    let ranges = cairn_core::tenant_scope::key_ranges_of(tenant_id, default_tenant);
    let mut rows: Vec<Vec<SqlValue>> = Vec::new();
    for r in page["rows"].as_array().into_iter().flatten() {
        let values = r
            .as_array()
            .filter(|v| v.len() == columns.len())
            .ok_or_else(|| {
                ApiError::bad_request("invalid_page", format!("{}: a row is not {} values", table.name, columns.len()))
            })?
            .iter()
            .map(wire::from_json)
            .collect::<Result<Vec<_>, _>>()?;
        let owner = match &values[owner_at] {
            SqlValue::Text(s) => s.as_str(),
            _ => "",
        };
        let ours = match table.owner {
            crate::tables::Owner::ScopeKey => ranges.iter().any(|kr| kr.contains(owner)),
            crate::tables::Owner::TenantId => owner == tenant_id,
        };
        if !ours {
            return Err(ApiError::bad_request(
                "invalid_page",
                format!("{}: a row's {owner_col} {owner:?} is not tenant {tenant_id:?}'s", table.name),
            ));
        }
        rows.push(values);
    }
    let per_insert = (MAX_PARAMS / columns.len()).max(1);
    let one_row = format!("({})", placeholders(columns.len()));
    write_txn(db, |db| {
        for chunk in rows.chunks(per_insert) {
            let values = vec![one_row.as_str(); chunk.len()].join(", ");
            let params: Vec<SqlValue> = chunk.iter().flatten().cloned().collect();
            db.exec(&format!("INSERT INTO {} ({}) VALUES {values}", table.name, columns.join(", ")), &params).map_err(
                |e| {
                    if is_unique_violation(&e) {
                        // The destination holds these rows already (or another
                        // tenant's with the same ids): a copy never overwrites.
                        ApiError::conflict(
                            "rows_exist",
                            format!("{}: the destination already holds a row with these keys", table.name),
                        )
                        .with_details(json!({"table": table.name, "cause": e.message}))
                    } else {
                        e
                    }
                },
            )?;
        }
        if table.name == "memory_nodes" {
            index_written_nodes(db, table, &rows)?;
        }
        Ok(())
    })?;
    Ok(rows.len() as i64)
}

/// Adds imported memories to the destination's lexical index, as the write
/// path does (the index is not copied: its layout is the backend's own).
/// Derived nodes (no `seq`) are not indexed, as on a write.
fn index_written_nodes(db: &dyn Sql, table: &Table, rows: &[Vec<SqlValue>]) -> Result<(), ApiError> {
    let at = |name: &str| table.columns.iter().position(|c| *c == name).expect("memory_nodes' columns");
    let (id, scope, title, text, seq) = (at("id"), at("scope"), at("title"), at("text_summary"), at("seq"));
    fn text_of(v: &SqlValue) -> Option<&str> {
        match v {
            SqlValue::Text(s) => Some(s.as_str()),
            _ => None,
        }
    }
    for r in rows.iter().filter(|r| !matches!(r[seq], SqlValue::Null)) {
        cairn_memory::recall::lexical::index_node(
            db,
            text_of(&r[id]).unwrap_or_default(),
            text_of(&r[scope]).unwrap_or_default(),
            text_of(&r[title]),
            text_of(&r[text]),
        )?;
    }
    Ok(())
}

/// Deletes `tenant_id`'s rows from every copied table (children first), in
/// one write transaction: the undo of a copy that failed part way. The
/// audit log is never touched (its events stay chained; a copy re-run
/// skips the ones already there). Returns the rows deleted per table.
pub fn purge(db: &dyn Sql, tenant_id: &str, default_tenant: &str) -> Result<Value, ApiError> {
    write_txn(db, |db| {
        let mut deleted = serde_json::Map::new();
        for t in crate::tables::TABLES.iter().rev() {
            let (cond, params) = t.tenant_condition(tenant_id, default_tenant);
            let params: Vec<SqlValue> = params.into_iter().map(Into::into).collect();
            let n = db.query(&format!("DELETE FROM {} WHERE {cond} RETURNING 1", t.name), &params)?.len();
            deleted.insert(t.name.into(), json!(n));
        }
        Ok(Value::Object(deleted))
    })
}

//! A tenant copied from SQLite to PostgreSQL through the operations the
//! job calls: the destination's digest equals the source's, chains verify
//! on both sides, another tenant's rows stay behind, a re-run is refused
//! row by row (unique keys) until purged, and the table list matches both
//! schemas.

use cairn_memory::settings::Settings;
use cairn_memory::{Op, run};
use cairn_spin::parity::BothBackends;
use cairn_spin::sql::Sql;
use cairn_tenant_copy::{CallCtx, handle, tables};
use serde_json::{Value, json};

const T0: i64 = 1_764_547_200_000;

fn ctx() -> CallCtx<'static> {
    CallCtx {
        default_tenant: "default",
        request_id: "test",
        event_id: "ev-copy".into(),
        now: "2025-12-01T01:00:00.000Z".into(),
    }
}

fn call(db: &dyn Sql, req: Value) -> Value {
    handle(db, &req, &ctx()).unwrap_or_else(|e| panic!("{req}: {e:?}"))
}

/// Two tenants' memory, edges, a rule, a tombstone-free log and an audit
/// event each, in `db`.
fn seed(db: &dyn Sql) {
    let now = cairn_core::time_fmt::rfc3339_millis(T0);
    cairn_memory::schema::ensure(db, &now).unwrap();
    cairn_control_plane::schema::ensure(db, &now).unwrap();
    let settings = Settings::from_lookup(|_| None);
    let mut n = 0u64;
    for tenant in ["acme", "default", "globex"] {
        for i in 0..7 {
            n += 1;
            let body = json!({
                "tenant_id": tenant, "scope": if i % 2 == 0 { "alpha" } else { "beta" },
                "input_text": format!("{tenant} event {i}"), "memory_lane": "shared",
                "nodes": [
                    {"client_id": format!("e{i}"), "type": "event", "text_summary": format!("{tenant} did thing {i}"),
                     "slots": {"n": i, "w": 0.25 * i as f64}, "salience": 0.7},
                    {"client_id": format!("p{i}"), "type": "entity", "title": format!("person {i}")}
                ],
                "edges": [{"type": "related_to", "src": {"client_id": format!("e{i}")}, "dst": {"client_id": format!("p{i}")}, "weight": 0.9}]
            });
            run(db, &settings, Op::Write, &body.to_string(), T0 + n as i64 * 1000, || {
                format!("00000000-0000-4000-8000-{n:012}")
            })
            .unwrap_or_else(|e| panic!("{body}: {e:?}"));
        }
        db.exec(
            "INSERT INTO control_tenants (tenant_id, status, metadata, created_at, updated_at, tier) VALUES (?, 'active', '{}', ?, ?, 'team')",
            &[tenant.into(), now.clone().into(), now.clone().into()],
        )
        .unwrap();
        db.exec(
            "INSERT INTO control_quota_buckets (tenant_id, class, tokens, updated_ms, granted) VALUES (?, 'write', 12.5, ?, 3)",
            &[tenant.into(), T0.into()],
        )
        .unwrap();
        for k in 0..2 {
            cairn_control_plane::audit::record(
                db,
                &cairn_control_plane::audit::AuditEvent {
                    event_id: &format!("{tenant}-ev-{k}"),
                    actor: "admin_token",
                    action: "tenant.create",
                    resource_type: "tenant",
                    resource_id: tenant,
                    tenant_id: Some(tenant),
                    request_id: None,
                    details: &json!({"k": k, "x": 1.5}),
                    created_at: &now,
                },
            )
            .unwrap();
        }
    }
}

/// Every table's digest and the chains, as the job compares them.
fn digest(db: &dyn Sql, tenant: &str) -> Value {
    let names = call(db, json!({"op": "plan"}))["tables"].clone();
    let mut out = serde_json::Map::new();
    for t in names.as_array().unwrap() {
        out.insert(t.as_str().unwrap().into(), call(db, json!({"op": "digest", "tenant_id": tenant, "table": t})));
    }
    out.insert("chains".into(), call(db, json!({"op": "chains", "tenant_id": tenant})));
    Value::Object(out)
}

/// The job's loop: every table, page by page (small pages, so cursors are used).
fn copy(src: &dyn Sql, dst: &dyn Sql, tenant: &str) -> i64 {
    let mut rows = 0;
    for t in call(src, json!({"op": "plan"}))["tables"].as_array().unwrap() {
        let mut cursor = Value::Null;
        loop {
            let page =
                call(src, json!({"op": "export", "tenant_id": tenant, "table": t, "cursor": cursor, "limit": 3}));
            rows += call(dst, json!({"op": "import", "tenant_id": tenant, "page": page}))["inserted"].as_i64().unwrap();
            if page["next"].is_null() {
                break;
            }
            cursor = page["next"].clone();
        }
    }
    rows
}

#[test]
fn a_tenant_copied_to_postgres_has_the_same_digest_and_verifies() {
    let both = BothBackends::start();
    let (src, dst): (&dyn Sql, &dyn Sql) = (&both.sqlite, &both.postgres);
    seed(src);
    let now = cairn_core::time_fmt::rfc3339_millis(T0);
    cairn_memory::schema::ensure(dst, &now).unwrap();
    cairn_control_plane::schema::ensure(dst, &now).unwrap();
    // globex is already in the destination: acme's copy must not disturb it.
    seed_one_other(dst);

    let before = digest(src, "acme");
    assert_eq!(before["memory_nodes"]["rows"], 14);
    assert_eq!(before["memory_edges"]["rows"], 7);
    assert_eq!(before["memory_commits"]["rows"], 7);
    assert_eq!(before["control_audit_events"]["events"], 2);
    let empty = digest(dst, "acme");
    assert_eq!(empty["memory_nodes"]["rows"], 0);

    let copied = copy(src, dst, "acme");
    assert!(copied > 30, "{copied}");
    let after = digest(dst, "acme");
    assert_eq!(after, before, "the destination holds acme exactly as the source does");
    for c in after["chains"].as_array().unwrap() {
        assert_eq!(c["verified"], true, "{c}");
    }
    assert_eq!(after["chains"].as_array().unwrap().len(), 2);
    // The destination's audit chain verifies with acme's events re-chained.
    let audit = cairn_control_plane::audit::verify(dst).unwrap();
    assert_eq!(audit["ok"], true, "{audit}");
    // Only acme moved; the default tenant's rows did not come along.
    assert_eq!(digest(dst, "default")["memory_nodes"]["rows"], 0);
    // Recall over the copied rows answers as on the source (same nodes, ids, order).
    let find = json!({"tenant_id": "acme", "scope": "alpha", "limit": 50}).to_string();
    let settings = Settings::from_lookup(|_| None);
    let on = |db: &dyn Sql| run(db, &settings, Op::Find, &find, T0 + 99_000, || "x".into()).unwrap();
    assert_eq!(on(src), on(dst));
    // The destination indexed the copied memories for the lexical channel
    // (its index is its own, not copied): words find the same ones.
    let alpha = cairn_core::tenant_scope::scope_key("acme", "alpha", &Default::default());
    let by_words = |db: &dyn Sql| {
        let found = cairn_memory::recall::lexical::search(db, &alpha, "thing person", None, None, 20).unwrap();
        let mut ids: Vec<String> = found.hits.into_iter().map(|h| h.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(by_words(dst).len(), 8, "4 events and 4 people in acme's alpha scope");
    assert_eq!(by_words(dst), by_words(src));

    // A second copy collides on the first's keys and leaves nothing half-written.
    let page = call(src, json!({"op": "export", "tenant_id": "acme", "table": "memory_nodes", "limit": 3}));
    let err = handle(dst, &json!({"op": "import", "tenant_id": "acme", "page": page}), &ctx()).unwrap_err();
    assert_eq!(err.status, 409, "{err:?}");
    assert_eq!(digest(dst, "acme"), before);
    // Purged, the tenant's rows are gone (its audit events stay, chained),
    // and a re-run completes: the events already there are skipped.
    let purged = call(dst, json!({"op": "purge", "tenant_id": "acme"}));
    assert_eq!(purged["deleted"]["memory_nodes"], 14);
    assert_eq!(digest(dst, "acme")["memory_commits"]["rows"], 0);
    copy(src, dst, "acme");
    assert_eq!(digest(dst, "acme"), before);
    // globex, there before, is untouched.
    assert_eq!(digest(dst, "globex")["memory_nodes"]["rows"], 2);
}

/// A page that names another tenant's rows is refused.
#[test]
fn pages_are_checked_not_trusted() {
    let db = cairn_spin::native_sqlite::NativeSqlite::in_memory();
    seed(&db);
    let mut page = call(&db, json!({"op": "export", "tenant_id": "acme", "table": "memory_edges"}));
    for tenant in ["globex", "default"] {
        let err = handle(&db, &json!({"op": "import", "tenant_id": tenant, "page": page}), &ctx()).unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (400, "invalid_page"), "{tenant}");
    }
    page["columns"][0] = json!("nope");
    assert_eq!(
        handle(&db, &json!({"op": "import", "tenant_id": "acme", "page": page}), &ctx()).unwrap_err().code,
        "invalid_page"
    );
    for (req, code) in [
        (json!({"op": "digest", "tenant_id": "acme", "table": "sqlite_master"}), "invalid_table"),
        (json!({"op": "digest", "tenant_id": "a b", "table": "memory_nodes"}), "invalid_tenant_id"),
        (json!({"op": "fly", "tenant_id": "acme"}), "invalid_op"),
        (json!({"op": "export", "tenant_id": "acme", "table": "memory_commits", "cursor": [1]}), "invalid_cursor"),
    ] {
        assert_eq!(handle(&db, &req, &ctx()).unwrap_err().code, code, "{req}");
    }
}

fn seed_one_other(db: &dyn Sql) {
    let settings = Settings::from_lookup(|_| None);
    let body = json!({"tenant_id": "globex", "scope": "alpha", "input_text": "g", "memory_lane": "shared",
        "nodes": [{"client_id": "g1", "type": "event", "text_summary": "globex here"}, {"client_id": "g2", "type": "entity", "title": "G"}]});
    run(db, &settings, Op::Write, &body.to_string(), T0, || "10000000-0000-4000-8000-000000000001".into()).unwrap();
}

/// The first column of every row `sql` returns, as text.
fn first_column(db: &dyn Sql, sql: &str, params: &[cairn_spin::sql::SqlValue]) -> Vec<String> {
    db.query(sql, params).unwrap_or_else(|e| panic!("{sql}: {e:?}")).iter().map(|r| r.string(0)).collect()
}

/// The copy's table list is the schemas' on both backends: every table is
/// copied or named as not copied, and each copied table's columns are all
/// of its columns but the one the destination assigns.
#[test]
fn the_table_list_matches_both_schemas() {
    let both = BothBackends::start();
    let now = cairn_core::time_fmt::rfc3339_millis(T0);
    for db in [&both.sqlite as &dyn Sql, &both.postgres] {
        cairn_memory::schema::ensure(db, &now).unwrap();
        cairn_control_plane::schema::ensure(db, &now).unwrap();
    }
    let sqlite_tables =
        first_column(&both.sqlite, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", &[]);
    let pg_tables = first_column(
        &both.postgres,
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
        &[],
    );
    for (backend, names) in [("sqlite", &sqlite_tables), ("postgres", &pg_tables)] {
        for name in names.iter() {
            let known = tables::find(name).is_some()
                || name == tables::AUDIT_EVENTS
                || tables::NOT_COPIED.contains(&name.as_str())
                || tables::is_fulltext_table(name);
            assert!(
                known,
                "{backend}: table {name} is neither copied nor listed as not copied (cairn_tenant_copy::tables)"
            );
        }
        for t in tables::TABLES {
            assert!(names.contains(&t.name.to_string()), "{backend}: {} is copied but not in the schema", t.name);
        }
    }
    for t in tables::TABLES {
        let mut on_sqlite =
            first_column(&both.sqlite, &format!("SELECT name FROM pragma_table_info('{}')", t.name), &[]);
        let mut on_pg = first_column(
            &both.postgres,
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ?",
            &[t.name.into()],
        );
        let mut want: Vec<String> = t.columns.iter().map(|c| c.to_string()).collect();
        if t.assigned {
            // SQLite's rowid is implicit; PostgreSQL's is a column. Identity ids are columns on both.
            on_pg.retain(|c| c != t.order_by[0]);
            on_sqlite.retain(|c| c != t.order_by[0]);
        }
        on_sqlite.sort();
        on_pg.sort();
        want.sort();
        assert_eq!(on_sqlite, want, "sqlite columns of {}", t.name);
        assert_eq!(on_pg, want, "postgres columns of {}", t.name);
    }
}

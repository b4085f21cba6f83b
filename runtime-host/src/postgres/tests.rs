//! The capability against a real PostgreSQL (cairn-testpg: a throwaway
//! server in a temp dir, stopped by its pid).

use super::host::ConnectionHandle;
use super::*;
use crate::spin_bindings::postgres::{self, DbValue, ParameterValue as P};

fn server() -> cairn_testpg::TestPg {
    cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn addresses_are_checked_against_allowed_hosts() {
    let state = InstanceState {
        capability: PostgresCapability::new(),
        allowed: Arc::new(vec!["postgres://127.0.0.1:5433".into()]),
        stats: Default::default(),
    };
    assert!(state.check("postgres://cairn@127.0.0.1:5433/db").is_ok());
    assert!(state.check("host=127.0.0.1 port=5433 user=cairn").is_ok());
    let e = state.check("postgres://cairn@127.0.0.1:5432/db").unwrap_err();
    assert!(matches!(&e, Error::ConnectionFailed(m) if m.contains("not allowed")));
    let e = state.check("host=/var/run/postgresql user=cairn").unwrap_err();
    assert!(matches!(&e, Error::ConnectionFailed(m) if m.contains("Unix sockets")));
    assert_eq!(host_of("postgres://u@db.internal/x").unwrap(), "postgres://db.internal:5432");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_round_trip_and_errors_carry_postgres_codes() {
    let pg = server();
    let cap = PostgresCapability::new();
    let mut c = ConnectionHandle::new(cap.connect(&pg.url("postgres")).await.unwrap());
    c.execute(
        "CREATE TABLE t (b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, s text, bin bytea, j jsonb, \
         u uuid, d date, ts timestamp, tz timestamptz, a4 int4[], a8 int8[], sa text[], n numeric)",
        vec![],
    )
    .await
    .unwrap();
    let params = vec![
        P::Boolean(true),
        P::Int16(-2),
        P::Int32(40),
        P::Int64(1 << 40),
        P::Floating32(1.5),
        P::Floating64(-0.25),
        P::Str("héllo".into()),
        P::Binary(vec![0, 1, 255]),
        P::Jsonb(br#"{"k": [1, 2]}"#.to_vec()),
        P::Uuid("0190c2a4-7b1e-7c3d-8e9f-0a1b2c3d4e5f".into()),
        P::Date((2026, 12, 1)),
        P::Datetime((2026, 12, 1, 18, 30, 5, 0)),
        P::Timestamp(1_796_150_000),
        P::ArrayInt32(vec![Some(1), None]),
        P::ArrayInt64(vec![Some(7)]),
        P::ArrayStr(vec![Some("a".into()), None]),
        P::DbNull,
    ];
    let n = c
        .execute("INSERT INTO t VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)", params)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let rs = c.query("SELECT * FROM t", vec![]).await.unwrap();
    assert_eq!(rs.columns.len(), 17);
    assert_eq!(rs.columns[6].name, "s");
    let row = &rs.rows[0];
    assert!(matches!(row[0], DbValue::Boolean(true)));
    assert!(matches!(row[1], DbValue::Int16(-2)));
    assert!(matches!(row[2], DbValue::Int32(40)));
    assert!(matches!(row[3], DbValue::Int64(x) if x == 1 << 40));
    assert!(matches!(row[4], DbValue::Floating32(x) if x == 1.5));
    assert!(matches!(row[5], DbValue::Floating64(x) if x == -0.25));
    assert!(matches!(&row[6], DbValue::Str(s) if s == "héllo"));
    assert!(matches!(&row[7], DbValue::Binary(b) if b == &[0, 1, 255]));
    // jsonb comes back in PostgreSQL's normal form.
    assert!(matches!(&row[8], DbValue::Jsonb(b) if b == br#"{"k": [1, 2]}"#));
    assert!(matches!(&row[9], DbValue::Uuid(u) if u == "0190c2a4-7b1e-7c3d-8e9f-0a1b2c3d4e5f"));
    assert!(matches!(row[10], DbValue::Date((2026, 12, 1))));
    assert!(matches!(row[11], DbValue::Datetime((2026, 12, 1, 18, 30, 5, 0))));
    assert!(matches!(row[12], DbValue::Timestamp(1_796_150_000)));
    assert!(matches!(&row[13], DbValue::ArrayInt32(a) if a == &[Some(1), None]));
    assert!(matches!(&row[14], DbValue::ArrayInt64(a) if a == &[Some(7)]));
    assert!(matches!(&row[15], DbValue::ArrayStr(a) if a == &[Some("a".to_string()), None]));
    assert!(matches!(row[16], DbValue::DbNull));

    // A statement the server refuses: its SQLSTATE reaches the guest.
    let e = c.execute("INSERT INTO missing VALUES (1)", vec![]).await.unwrap_err();
    assert!(matches!(&e, Error::QueryFailed(postgres::QueryError::DbError(d)) if d.code == "42P01"), "{e:?}");
    // A parameter the host cannot send is refused before the round trip.
    let e = c.query("SELECT $1::numeric", vec![P::Decimal("1.5".into())]).await.unwrap_err();
    assert!(matches!(&e, Error::BadParameter(_)), "{e:?}");
}

/// A guest that drops its connection inside a transaction leaves nothing
/// behind: with a pool of one, the next guest gets the same server session,
/// which no longer holds the dropped transaction or its row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_transaction_is_rolled_back() {
    let pg = server();
    let cap = PostgresCapability::with_pool_size(1);
    let url = pg.url("postgres");
    let pid = |rs: &crate::spin_bindings::postgres::RowSet| match rs.rows[0][0] {
        DbValue::Int32(p) => p,
        ref other => panic!("pg_backend_pid: {other:?}"),
    };
    let mut c = ConnectionHandle::new(cap.connect(&url).await.unwrap());
    c.execute("CREATE TABLE k (v int)", vec![]).await.unwrap();
    c.execute("BEGIN", vec![]).await.unwrap();
    c.execute("INSERT INTO k VALUES ($1)", vec![P::Int32(1)]).await.unwrap();
    let first = pid(&c.query("SELECT pg_backend_pid()", vec![]).await.unwrap());
    drop(c);
    // Waits until the rollback has returned the one connection to the pool.
    let mut next = ConnectionHandle::new(cap.connect(&url).await.unwrap());
    assert_eq!(pid(&next.query("SELECT pg_backend_pid()", vec![]).await.unwrap()), first, "not the same session");
    let rs = next.query("SELECT count(*)::int4 FROM k", vec![]).await.unwrap();
    assert!(matches!(rs.rows[0][0], DbValue::Int32(0)), "the dropped transaction is still open: {:?}", rs.rows);
    // And the session is usable for a transaction of its own.
    next.execute("BEGIN", vec![]).await.unwrap();
    next.execute("INSERT INTO k VALUES (2)", vec![]).await.unwrap();
    next.execute("COMMIT", vec![]).await.unwrap();
    let rs = next.query("SELECT count(*)::int4 FROM k", vec![]).await.unwrap();
    assert!(matches!(rs.rows[0][0], DbValue::Int32(1)));
}

/// `sslmode=require` speaks TLS and verifies the server against the CA
/// file (and fails without it); `disable` and the default stay in the clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_speaks_verified_tls() {
    let pg = cairn_testpg::TestPg::start_with_tls().unwrap_or_else(|e| panic!("{e}"));
    let over_tls = |cap: Arc<PostgresCapability>, url: String| async move {
        let mut c = ConnectionHandle::new(cap.connect(&url).await?);
        let rows = c.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", vec![]).await?;
        Ok::<_, Error>(matches!(rows.rows[0][0], DbValue::Boolean(true)))
    };
    let trusted = PostgresCapability::with_tls(2, tls_config(Some(&pg.ca_file())).unwrap());
    for mode in ["require", "verify-full"] {
        let url = format!("{}?sslmode={mode}", pg.url("postgres"));
        assert!(over_tls(trusted.clone(), url).await.unwrap(), "sslmode={mode} connected in the clear");
    }
    for mode in ["?sslmode=disable", ""] {
        let url = format!("{}{mode}", pg.url("postgres"));
        assert!(!over_tls(trusted.clone(), url).await.unwrap(), "{mode:?} used TLS");
    }
    // Without the CA, the server's certificate is not trusted.
    let e = over_tls(PostgresCapability::with_pool_size(2), format!("{}?sslmode=require", pg.url("postgres")))
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::ConnectionFailed(m) if m.to_lowercase().contains("certificate")), "{e:?}");
    // A CA file without a certificate is refused when the host starts.
    let empty = pg.ca_file().with_file_name("empty.pem");
    std::fs::write(&empty, "").unwrap();
    assert!(tls_config(Some(&empty)).unwrap_err().to_string().contains("no PEM certificate"));
}

//! IVF list upkeep against a real (in-memory) SQLite: vectors added after a
//! build wait as pending changes, a list with enough of them is folded into
//! its BLOB, a node that moves leaves its old list, and recall's view (the
//! stored lists with their changes) always holds every member exactly once.

use cairn_derive::vector_index::{self, Built, FOLD_AT};
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::Sql;
use cairn_vector::ivf;

const NOW: &str = "2026-12-01T00:00:00.000Z";
const SCOPE: &str = "default";

fn id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// A unit vector near axis `axis` of 4 dims.
fn near(axis: usize, i: usize) -> Vec<f32> {
    let mut v = [0.01 * (i % 7) as f32; 4];
    v[axis] = 1.0;
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

fn count(db: &NativeSqlite, sql: &str) -> i64 {
    db.query_one(sql, &[]).unwrap().unwrap().int(0)
}

/// Every list as recall sees it: stored entries with the changes folded in.
fn members_seen(db: &NativeSqlite) -> Vec<[u8; 16]> {
    let lists: Vec<usize> = (0..2).collect();
    let mut changes = cairn_memory::recall::seeds::list_changes(db, SCOPE, &lists).unwrap();
    let mut out = Vec::new();
    for r in db
        .query("SELECT list, entries FROM memory_vector_lists WHERE scope = ? ORDER BY list", &[SCOPE.into()])
        .unwrap()
    {
        let mut blob = r.blob(1).unwrap().to_vec();
        assert!(ivf::fold(&mut blob, &changes.remove(&r.int(0)).unwrap_or_default()));
        out.extend(ivf::ids(&blob));
    }
    out.sort();
    out
}

#[test]
fn added_vectors_are_pending_changes_until_their_list_is_folded() {
    let db = NativeSqlite::in_memory();
    cairn_memory::schema::ensure(&db, NOW).unwrap();
    // An index of two lists (axes 0 and 1), empty.
    let built = Built {
        centroids: vec![near(0, 0), near(1, 0)],
        lists: vec![ivf::empty(4), ivf::empty(4)],
        members: vec![],
        vectors: 0,
    };
    vector_index::write(&db, SCOPE, 4, &built, NOW, NOW).unwrap();

    let n = FOLD_AT as usize - 1;
    let items: Vec<(String, Vec<f32>)> = (0..n).map(|i| (id(i), near(0, i))).collect();
    assert_eq!(vector_index::add(&db, SCOPE, &items).unwrap(), n);
    assert_eq!(count(&db, "SELECT count(*) FROM memory_vector_list_changes"), n as i64, "one row each, no rewrite");
    let stored = count(&db, "SELECT sum(length(entries)) FROM memory_vector_lists");
    assert_eq!(stored, 16, "the lists' BLOBs are untouched (two empty headers)");
    assert_eq!(members_seen(&db).len(), n);

    // One more reaches the bound: list 0 is folded, its changes cleared.
    vector_index::add(&db, SCOPE, &[(id(n), near(0, n))]).unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM memory_vector_list_changes"), 0);
    let list0 = db.query_one("SELECT entries FROM memory_vector_lists WHERE list = 0", &[]).unwrap().unwrap();
    assert_eq!(ivf::header(list0.blob(0).unwrap()), Some((4, FOLD_AT as usize)));

    // A node that moves to list 1 leaves a removal in list 0.
    vector_index::add(&db, SCOPE, &[(id(3), near(1, 3))]).unwrap();
    let rows = db.query("SELECT list, entry IS NULL FROM memory_vector_list_changes ORDER BY id", &[]).unwrap();
    let seen: Vec<(i64, i64)> = rows.iter().map(|r| (r.int(0), r.int(1))).collect();
    assert_eq!(seen, [(0, 1), (1, 0)]);
    let members = members_seen(&db);
    assert_eq!(members.len(), FOLD_AT as usize, "each member once, wherever it sits");
    assert_eq!(count(&db, "SELECT count(*) FROM memory_vector_members WHERE list = 1"), 1);
}

/// Kernel schemas 10 and 11 rebuild the IVF tables: an index written in
/// the old layout (schema 9) keeps its lists, codes and centroids, and new
/// vectors then go to the pending changes.
#[test]
fn upgrading_from_schema_9_keeps_the_index() {
    let db = NativeSqlite::in_memory();
    cairn_spin::migrations::ensure(&db, "kernel", &cairn_memory::schema::MIGRATIONS[..9], NOW).unwrap();
    let mut list0 = ivf::empty(4);
    assert!(ivf::upsert(&mut list0, &ivf::uuid_bytes(&id(1)).unwrap(), &cairn_vector::quant::quantize(&near(0, 1))));
    let centroids = [near(0, 0), near(1, 0)];
    let flat: Vec<u8> = centroids.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    db.exec(
        "INSERT INTO memory_vector_index (scope, dims, nlist, centroids, trained_count, trained_at, updated_at, \
         centroid_codes) VALUES (?, 4, 2, ?, 1, ?, ?, ?)",
        &[SCOPE.into(), flat.clone().into(), NOW.into(), NOW.into(), ivf::centroid_codes(&centroids).into()],
    )
    .unwrap();
    for (list, blob) in [(0i64, list0.clone()), (1, ivf::empty(4))] {
        db.exec(
            "INSERT INTO memory_vector_lists (scope, list, entries) VALUES (?, ?, ?)",
            &[SCOPE.into(), list.into(), blob.into()],
        )
        .unwrap();
    }
    db.exec(
        "INSERT INTO memory_vector_members (node_id, scope, list) VALUES (?, ?, 0)",
        &[id(1).as_str().into(), SCOPE.into()],
    )
    .unwrap();
    cairn_memory::schema::ensure(&db, NOW).unwrap();

    let index = vector_index::load(&db, SCOPE).unwrap().expect("the index survives the upgrade");
    assert_eq!((index.dims, index.centroids.len()), (4, 2));
    let row = db.query_one("SELECT centroids, centroid_codes FROM memory_vector_index", &[]).unwrap().unwrap();
    assert_eq!(row.blob(0).unwrap(), flat.as_slice());
    assert_eq!(row.blob(1).unwrap(), ivf::centroid_codes(&centroids).as_slice());
    let kept = db.query_one("SELECT entries FROM memory_vector_lists WHERE list = 0", &[]).unwrap().unwrap();
    assert_eq!(kept.blob(0).unwrap(), list0.as_slice());
    vector_index::add(&db, SCOPE, &[(id(2), near(1, 2))]).unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM memory_vector_list_changes WHERE list = 1"), 1);
    assert_eq!(members_seen(&db).len(), 2);
}

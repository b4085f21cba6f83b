//! The kernel's SQLite schema and its migrations.
//!
//! Steps are append-only: never edit a released one, add the next (and the
//! same step to PostgreSQL's list, `crate::schema_pg`, which has as many).
//! They are applied from inside the component by `cairn_spin::migrations`.

use cairn_core::ApiError;
use cairn_spin::sql::{Dialect, Sql};

/// Name under which the kernel records its schema version.
pub const COMPONENT: &str = "kernel";

/// Ordered migration steps; the schema version is the number applied.
pub const MIGRATIONS: &[&[&str]] = &[
    // 1: commits, nodes, edges, outbox.
    &[
        // Clustered by (scope, seq): appending to a chain touches one
        // table page, and the chain reads in order without a second index.
        "CREATE TABLE IF NOT EXISTS memory_commits (
            scope TEXT NOT NULL,
            seq INTEGER NOT NULL,
            id TEXT NOT NULL UNIQUE,
            parent_id TEXT,
            parent_hash TEXT NOT NULL,
            kind TEXT NOT NULL,
            input_sha256 TEXT NOT NULL,
            diff_json TEXT NOT NULL,
            actor TEXT NOT NULL,
            model_version TEXT,
            prompt_version TEXT,
            request_sha256 TEXT NOT NULL,
            -- What the write reported beyond its diff (derivation jobs
            -- enqueued), returned again on an identical retry.
            result_json TEXT,
            created_at TEXT NOT NULL,
            -- Unique without an index of its own: the id is derived from
            -- (scope, commit_hash).
            commit_hash TEXT NOT NULL,
            PRIMARY KEY (scope, seq),
            UNIQUE (scope, request_sha256)
        ) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS memory_nodes (
            id TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            client_id TEXT,
            type TEXT NOT NULL,
            tier TEXT NOT NULL DEFAULT 'hot',
            title TEXT,
            text_summary TEXT,
            slots TEXT NOT NULL DEFAULT '{}',
            raw_ref TEXT,
            evidence_ref TEXT,
            embedding BLOB,
            embedding_dims INTEGER,
            embedding_model TEXT,
            embedding_status TEXT NOT NULL,
            embedding_attempts INTEGER NOT NULL DEFAULT 0,
            embedding_last_error TEXT,
            embedding_ready_at TEXT,
            salience REAL NOT NULL DEFAULT 0.5,
            importance REAL NOT NULL DEFAULT 0.5,
            confidence REAL NOT NULL DEFAULT 0.5,
            last_activated TEXT,
            memory_lane TEXT NOT NULL DEFAULT 'private',
            producer_agent_id TEXT,
            owner_agent_id TEXT,
            owner_team_id TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            CHECK (type <> 'rule' OR memory_lane <> 'private' OR owner_agent_id IS NOT NULL OR owner_team_id IS NOT NULL)
        )",
        "CREATE UNIQUE INDEX IF NOT EXISTS memory_nodes_scope_client_id ON memory_nodes (scope, client_id) WHERE client_id IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS memory_nodes_scope_created ON memory_nodes (scope, created_at DESC, id DESC)",
        "CREATE INDEX IF NOT EXISTS memory_nodes_scope_type_created ON memory_nodes (scope, type, created_at DESC, id DESC)",
        "CREATE TABLE IF NOT EXISTS memory_edges (
            id TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            type TEXT NOT NULL,
            src_id TEXT NOT NULL REFERENCES memory_nodes (id) ON DELETE CASCADE,
            dst_id TEXT NOT NULL REFERENCES memory_nodes (id) ON DELETE CASCADE,
            weight REAL NOT NULL DEFAULT 0.5,
            confidence REAL NOT NULL DEFAULT 0.5,
            decay_rate REAL NOT NULL DEFAULT 0.01,
            last_activated TEXT,
            created_at TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            UNIQUE (scope, type, src_id, dst_id),
            CHECK (src_id <> dst_id)
        )",
        "CREATE INDEX IF NOT EXISTS memory_edges_scope_src ON memory_edges (scope, src_id, type)",
        "CREATE INDEX IF NOT EXISTS memory_edges_scope_dst ON memory_edges (scope, dst_id, type)",
        // Jobs are deduplicated by job_key where they are enqueued (one per
        // commit and event type); no unique index on the write path.
        "CREATE TABLE IF NOT EXISTS memory_outbox (
            id INTEGER PRIMARY KEY,
            scope TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            payload TEXT NOT NULL,
            payload_sha256 TEXT NOT NULL,
            job_key TEXT NOT NULL,
            created_at TEXT NOT NULL,
            published_at TEXT,
            claimed_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            failed_at TEXT,
            failed_reason TEXT
        )",
        "CREATE INDEX IF NOT EXISTS memory_outbox_pending ON memory_outbox (id) WHERE published_at IS NULL AND failed_at IS NULL",
    ],
    // 2: the derivation worker's state. Outbox rows gain a backoff time, a
    // claim fence and an outcome; pending rows are indexed by scope so the
    // worker can take fair turns; derived vectors and topic centroids live
    // in their own tables (outside the hashed node content, rebuildable).
    &[
        "ALTER TABLE memory_outbox ADD COLUMN next_attempt_at TEXT",
        "ALTER TABLE memory_outbox ADD COLUMN claim_token TEXT",
        "ALTER TABLE memory_outbox ADD COLUMN result TEXT",
        "DROP INDEX IF EXISTS memory_outbox_pending",
        "CREATE INDEX IF NOT EXISTS memory_outbox_pending_scope ON memory_outbox (scope, id) WHERE published_at IS NULL AND failed_at IS NULL",
        "CREATE INDEX IF NOT EXISTS memory_outbox_dead ON memory_outbox (scope, id) WHERE failed_at IS NOT NULL",
        // One derived vector per node (client vectors stay in memory_nodes).
        "CREATE TABLE IF NOT EXISTS memory_derived_vectors (
            node_id TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            model TEXT NOT NULL,
            dims INTEGER NOT NULL,
            vector BLOB NOT NULL,
            updated_at TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS memory_derived_vectors_scope ON memory_derived_vectors (scope)",
        // A topic's centroid as the exact (fixed-point) sum of its members'
        // unit vectors: order-independent, so a rebuild reproduces it bit for bit.
        "CREATE TABLE IF NOT EXISTS memory_topic_centroids (
            topic_id TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            member_count INTEGER NOT NULL,
            sum BLOB NOT NULL,
            updated_at TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS memory_topic_centroids_scope ON memory_topic_centroids (scope)",
        // Small named values the worker keeps (the scope it served last).
        "CREATE TABLE IF NOT EXISTS memory_derive_state (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )",
    ],
    // 3: the IVF vector index, kept by derivation (see cairn-vector): per
    // scope the trained centroids, one packed BLOB per list (ids + int8
    // codes), and which list each node sits in.
    &[
        "CREATE TABLE IF NOT EXISTS memory_vector_index (
            scope TEXT PRIMARY KEY,
            dims INTEGER NOT NULL,
            nlist INTEGER NOT NULL,
            centroids BLOB NOT NULL,
            trained_count INTEGER NOT NULL,
            trained_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )",
        "CREATE TABLE IF NOT EXISTS memory_vector_lists (
            scope TEXT NOT NULL,
            list INTEGER NOT NULL,
            entries BLOB NOT NULL,
            PRIMARY KEY (scope, list)
        ) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS memory_vector_members (
            node_id TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            list INTEGER NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS memory_vector_members_scope ON memory_vector_members (scope)",
    ],
    // 4: one audit row per recall (reference memory_recall_audit): who
    // asked (consumer ids), a hash of the query vector, and the sizes of
    // what came back.
    &[
        "CREATE TABLE IF NOT EXISTS memory_recall_audit (
            id INTEGER PRIMARY KEY,
            scope TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            consumer_agent_id TEXT,
            consumer_team_id TEXT,
            query_sha256 TEXT NOT NULL,
            seed_count INTEGER NOT NULL,
            node_count INTEGER NOT NULL,
            edge_count INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS memory_recall_audit_scope ON memory_recall_audit (scope, id)",
    ],
    // 5: the centroids also as int8 codes (cairn-vector `centroid_codes`),
    // which recall reads instead of the f32 ones (¼ of the bytes).
    &["ALTER TABLE memory_vector_index ADD COLUMN centroid_codes BLOB"],
    // 6: Memory -> Policy. A rule node's definition (inserted once, in
    // draft, by the write that creates the node; its state changes through
    // rules/state commits), feedback on rules, and the decision recorded by
    // every tools/select.
    &[
        "CREATE TABLE IF NOT EXISTS memory_rule_defs (
            rule_node_id TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'draft',
            rule_scope TEXT NOT NULL DEFAULT 'global',
            target_agent_id TEXT,
            target_team_id TEXT,
            if_json TEXT NOT NULL DEFAULT '{}',
            then_json TEXT NOT NULL DEFAULT '{}',
            exceptions_json TEXT NOT NULL DEFAULT '[]',
            positive_count INTEGER NOT NULL DEFAULT 0,
            negative_count INTEGER NOT NULL DEFAULT 0,
            last_evaluated_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            -- Copied from the (insert-once) rule node, so evaluation reads
            -- one table: its lane and owners, summary, and the rank's
            -- priority / weight slots (JSON, NULL when unset).
            memory_lane TEXT NOT NULL DEFAULT 'shared',
            owner_agent_id TEXT,
            owner_team_id TEXT,
            summary TEXT,
            rank_priority TEXT,
            rank_weight TEXT
        )",
        // Evaluation scans a scope's most recently updated rules in order,
        // skipping drafts and disabled ones, and stops at its limit.
        "CREATE INDEX IF NOT EXISTS memory_rule_defs_scope_updated ON memory_rule_defs (scope, updated_at DESC, rule_node_id)",
        "CREATE TABLE IF NOT EXISTS memory_rule_feedback (
            id TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            rule_node_id TEXT NOT NULL,
            run_id TEXT,
            outcome TEXT NOT NULL CHECK (outcome IN ('positive', 'negative', 'neutral')),
            note TEXT,
            source TEXT NOT NULL DEFAULT 'rule_feedback' CHECK (source IN ('rule_feedback', 'tools_feedback')),
            decision_id TEXT,
            created_at TEXT NOT NULL,
            commit_id TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS memory_rule_feedback_rule ON memory_rule_feedback (scope, rule_node_id, created_at)",
        "CREATE TABLE IF NOT EXISTS memory_execution_decisions (
            id TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            decision_kind TEXT NOT NULL CHECK (decision_kind IN ('tools_select')),
            run_id TEXT,
            selected_tool TEXT,
            candidates_json TEXT NOT NULL DEFAULT '[]',
            context_sha256 TEXT NOT NULL,
            policy_sha256 TEXT NOT NULL,
            source_rule_ids TEXT NOT NULL DEFAULT '[]',
            metadata_json TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            commit_id TEXT
        )",
        "CREATE INDEX IF NOT EXISTS memory_execution_decisions_run ON memory_execution_decisions (scope, run_id, created_at)",
        "CREATE INDEX IF NOT EXISTS memory_execution_decisions_context ON memory_execution_decisions (scope, context_sha256, created_at)",
    ],
    // 7: tombstones: what an erasure (tenant teardown) removed from a scope —
    // the rows go, their ids and the erasure's time, actor and commit stay,
    // so the chain still verifies and says what was erased.
    &[
        "CREATE TABLE IF NOT EXISTS memory_tombstones (
            row_id TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            row_kind TEXT NOT NULL CHECK (row_kind IN ('node', 'edge')),
            erased_at TEXT NOT NULL,
            erased_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            commit_id TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS memory_tombstones_scope ON memory_tombstones (scope, row_kind)",
    ],
    // 8: bytes stored per scope (see `usage`), for the tier's storage cap.
    &["CREATE TABLE IF NOT EXISTS memory_scope_usage (scope TEXT PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID"],
    // 9: recall's lexical channel and write order (see `recall::lexical`).
    &[
        // Write order within a scope: the write path numbers the nodes it
        // stores (derived topics and summaries have none), so recall can
        // find a memory's neighbours (the turns around a conversation turn).
        "ALTER TABLE memory_nodes ADD COLUMN seq INTEGER",
        "UPDATE memory_nodes SET seq = s.rn FROM \
         (SELECT rowid AS r, row_number() OVER (PARTITION BY scope ORDER BY created_at, rowid) AS rn \
          FROM memory_nodes WHERE type NOT IN ('topic', 'concept')) AS s WHERE memory_nodes.rowid = s.r",
        "CREATE INDEX IF NOT EXISTS memory_nodes_scope_seq ON memory_nodes (scope, seq) WHERE seq IS NOT NULL",
        // What this database can do, probed once (reported by /health).
        "CREATE TABLE IF NOT EXISTS memory_features (name TEXT PRIMARY KEY, enabled INTEGER NOT NULL) WITHOUT ROWID",
        "INSERT INTO memory_features (name, enabled) VALUES ('lexical_index', 0) ON CONFLICT (name) DO NOTHING",
        // The full-text index of written memories (see `recall::lexical`):
        // BM25 via FTS5, when this SQLite has it (libsql's and Spin's both
        // do). Contentless: the text stays in memory_nodes; rowid = the
        // node's rowid. Every word is stored with its scope's prefix
        // (`x<hash>_word`), so a scope's words are its own terms: a MATCH
        // never reads another scope's rows and BM25's statistics are the
        // scope's. The write path adds rows in the write's transaction
        // (the text is split in Rust, schema 9 backfills existing rows);
        // deletions follow by trigger.
        "/* optional */ CREATE VIRTUAL TABLE IF NOT EXISTS memory_nodes_fts USING fts5(body, \
         tokenize = \"porter unicode61 remove_diacritics 2 tokenchars '_'\", content = '', contentless_delete = 1)",
        "/* if-table: memory_nodes_fts */ CREATE TRIGGER IF NOT EXISTS memory_nodes_fts_delete AFTER DELETE ON memory_nodes BEGIN \
         DELETE FROM memory_nodes_fts WHERE rowid = old.rowid; END",
        "/* if-table: memory_nodes_fts */ UPDATE memory_features SET enabled = 1 WHERE name = 'lexical_index'",
    ],
    // 10: the IVF tables laid out for how recall reads them (measured in
    // docs/recall.md, Performance). A WITHOUT ROWID table keeps
    // the whole row in its b-tree, and SQLite reads an overflowing row
    // whole to compare its key: every probe of a list read each ~128 KB
    // list it passed in the binary search. Lists become a rowid table
    // (found through the (scope, list) index, only the wanted rows read).
    // The index row puts its small columns and the int8 centroid codes
    // (what recall reads) before the f32 centroids, which SQLite would
    // otherwise walk through page by page to reach the codes.
    &[
        "CREATE TABLE memory_vector_lists_v10 (
            scope TEXT NOT NULL,
            list INTEGER NOT NULL,
            entries BLOB NOT NULL,
            UNIQUE (scope, list)
        )",
        "INSERT INTO memory_vector_lists_v10 (scope, list, entries) SELECT scope, list, entries FROM memory_vector_lists",
        "DROP TABLE memory_vector_lists",
        "ALTER TABLE memory_vector_lists_v10 RENAME TO memory_vector_lists",
        "CREATE TABLE memory_vector_index_v10 (
            scope TEXT PRIMARY KEY,
            dims INTEGER NOT NULL,
            nlist INTEGER NOT NULL,
            trained_count INTEGER NOT NULL,
            trained_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            centroid_codes BLOB,
            centroids BLOB NOT NULL
        )",
        "INSERT INTO memory_vector_index_v10 (scope, dims, nlist, trained_count, trained_at, updated_at, \
         centroid_codes, centroids) SELECT scope, dims, nlist, trained_count, trained_at, updated_at, \
         centroid_codes, centroids FROM memory_vector_index",
        "DROP TABLE memory_vector_index",
        "ALTER TABLE memory_vector_index_v10 RENAME TO memory_vector_index",
    ],
    // 11: pending changes to the IVF lists (`cairn_vector::ivf::Delta`):
    // derivation adds a vector as one small row here instead of rewriting
    // the list's BLOB (~128 KB at 100k memories) in its transaction; a
    // list's changes are folded into it once there are enough of them.
    // Recall scans a list with its changes. `entry` NULL: the node left.
    &[
        "CREATE TABLE IF NOT EXISTS memory_vector_list_changes (
            id INTEGER PRIMARY KEY,
            scope TEXT NOT NULL,
            list INTEGER NOT NULL,
            node BLOB NOT NULL,
            entry BLOB
        )",
        "CREATE INDEX IF NOT EXISTS memory_vector_list_changes_list ON memory_vector_list_changes (scope, list, id)",
    ],
    // 12: newest first means last written first. Timestamps have
    // millisecond precision and a write takes well under one, so memories
    // written in the same millisecond are ordered by their write order
    // (`seq`) before their id; the reference's microsecond timestamps make
    // such ties rare there. Derived nodes (no seq) follow within a tie.
    &[
        "DROP INDEX IF EXISTS memory_nodes_scope_created",
        "DROP INDEX IF EXISTS memory_nodes_scope_type_created",
        "CREATE INDEX IF NOT EXISTS memory_nodes_scope_created ON memory_nodes (scope, created_at DESC, seq DESC, id DESC)",
        "CREATE INDEX IF NOT EXISTS memory_nodes_scope_type_created ON memory_nodes (scope, type, created_at DESC, seq DESC, id DESC)",
    ],
    // 13: the database's identity, a random id made once: `/health` shows
    // its hash (`database_target_hash`) and `cairn gate core --data-dir`
    // compares it with the data dir's, proving a server talks to the
    // database the operator means (the reference hashes DATABASE_URL).
    &[
        "CREATE TABLE IF NOT EXISTS memory_instance (id TEXT NOT NULL)",
        "INSERT INTO memory_instance (id) SELECT lower(hex(randomblob(16))) WHERE NOT EXISTS (SELECT 1 FROM memory_instance)",
    ],
    // 14: recall's neighbourhood ranks a hop's edges by weight, confidence
    // and id and keeps the best few hundred. Through a hub (a topic or
    // concept with hundreds of members) the old (scope, end, type) indexes
    // made SQLite read every edge row to sort them; these hold everything a
    // hop reads (id, ends, type, weight, confidence), so a hop never touches
    // the table (hop 2 at 10k memories: ~20 ms → ~7 ms for a random
    // frontier, measured with the sqlite3 library). The prefix (scope, end)
    // still serves every other lookup by an end.
    &[
        "DROP INDEX IF EXISTS memory_edges_scope_src",
        "DROP INDEX IF EXISTS memory_edges_scope_dst",
        "CREATE INDEX IF NOT EXISTS memory_edges_scope_src_rank ON memory_edges (scope, src_id, weight DESC, confidence DESC, id, dst_id, type)",
        "CREATE INDEX IF NOT EXISTS memory_edges_scope_dst_rank ON memory_edges (scope, dst_id, weight DESC, confidence DESC, id, src_id, type)",
    ],
    // 15: PostgreSQL's lexical index (`crate::schema_pg`); SQLite's is
    // FTS5 since schema 9.
    &[],
];

/// The database's identity (kernel schema 13), if migrated.
pub fn database_id(db: &dyn Sql) -> Result<Option<String>, ApiError> {
    Ok(db.query_one("SELECT id FROM memory_instance LIMIT 1", &[])?.map(|r| r.string(0)))
}

/// What `/health` shows of [`database_id`]: `sha256("cairn-database:" + id)`.
pub fn database_target_hash(id: &str) -> String {
    cairn_core::digest::sha256_hex(format!("cairn-database:{id}"))
}

/// The version this build of the kernel needs.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The steps for `dialect`'s database.
pub fn migrations(dialect: Dialect) -> &'static [&'static [&'static str]] {
    match dialect {
        Dialect::Sqlite => MIGRATIONS,
        Dialect::Postgres => crate::schema_pg::MIGRATIONS,
    }
}

/// Brings the kernel's schema up to date (one indexed read when it is).
pub fn ensure(db: &dyn Sql, now: &str) -> Result<(), ApiError> {
    let dialect = db.dialect();
    cairn_spin::migrations::ensure_with(db, COMPONENT, migrations(dialect), now, |db, step| {
        // Schema 9 (SQLite) and 15 (PostgreSQL) index the memories written
        // before them, in the same transaction.
        match (step, dialect) {
            (9, Dialect::Sqlite) | (15, Dialect::Postgres) => crate::recall::lexical::backfill(db),
            _ => Ok(()),
        }
    })
}

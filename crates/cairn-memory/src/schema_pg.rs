//! The kernel's schema on PostgreSQL (docs/postgres-port.md §8, §11).
//!
//! The same number of steps as SQLite's [`crate::schema::MIGRATIONS`], so
//! a version means one schema on both backends (`/health`, the consistency
//! check's version comparison): step 1 is SQLite's schema after all of its
//! steps, spelled for PostgreSQL 15; the later steps are empty here, and
//! a new step is added to both lists together.
//!
//! Spelled differently from SQLite's:
//! - `BIGINT` for `INTEGER` (PostgreSQL's `integer` is 4 bytes),
//!   `DOUBLE PRECISION` for `REAL` (salience, weights… are hashed into the
//!   content hashes; `real` would change them), `BYTEA` for `BLOB`;
//! - identity columns for SQLite's integer primary keys, and an explicit
//!   `rowid` on `memory_nodes` (the lexical index's key and recency order);
//! - every text column `COLLATE "C"`: keys, cursors and RFC 3339 times are
//!   compared and ranged bytewise (a tenant's key range ends at `…::scope;`),
//!   which a linguistic collation does not do;
//! - `seq DESC NULLS LAST` in the indexes, SQLite's order for derived nodes
//!   (no `seq`);
//! - the lexical index is a postings table (step 15,
//!   `crate::recall::postings`), not FTS5.

pub const MIGRATIONS: &[&[&str]] = &[
    // 1: SQLite's schema 14, for PostgreSQL.
    &[
        r#"CREATE TABLE IF NOT EXISTS memory_commits (
            scope TEXT COLLATE "C" NOT NULL,
            seq BIGINT NOT NULL,
            id TEXT COLLATE "C" NOT NULL UNIQUE,
            parent_id TEXT COLLATE "C",
            parent_hash TEXT COLLATE "C" NOT NULL,
            kind TEXT COLLATE "C" NOT NULL,
            input_sha256 TEXT COLLATE "C" NOT NULL,
            diff_json TEXT NOT NULL,
            actor TEXT COLLATE "C" NOT NULL,
            model_version TEXT COLLATE "C",
            prompt_version TEXT COLLATE "C",
            request_sha256 TEXT COLLATE "C" NOT NULL,
            result_json TEXT,
            created_at TEXT COLLATE "C" NOT NULL,
            commit_hash TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (scope, seq),
            UNIQUE (scope, request_sha256)
        )"#,
        r#"CREATE TABLE IF NOT EXISTS memory_nodes (
            id TEXT COLLATE "C" PRIMARY KEY,
            rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
            scope TEXT COLLATE "C" NOT NULL,
            client_id TEXT COLLATE "C",
            type TEXT COLLATE "C" NOT NULL,
            tier TEXT COLLATE "C" NOT NULL DEFAULT 'hot',
            title TEXT,
            text_summary TEXT,
            slots TEXT NOT NULL DEFAULT '{}',
            raw_ref TEXT COLLATE "C",
            evidence_ref TEXT COLLATE "C",
            embedding BYTEA,
            embedding_dims BIGINT,
            embedding_model TEXT COLLATE "C",
            embedding_status TEXT COLLATE "C" NOT NULL,
            embedding_attempts BIGINT NOT NULL DEFAULT 0,
            embedding_last_error TEXT,
            embedding_ready_at TEXT COLLATE "C",
            salience DOUBLE PRECISION NOT NULL DEFAULT 0.5,
            importance DOUBLE PRECISION NOT NULL DEFAULT 0.5,
            confidence DOUBLE PRECISION NOT NULL DEFAULT 0.5,
            last_activated TEXT COLLATE "C",
            memory_lane TEXT COLLATE "C" NOT NULL DEFAULT 'private',
            producer_agent_id TEXT COLLATE "C",
            owner_agent_id TEXT COLLATE "C",
            owner_team_id TEXT COLLATE "C",
            created_at TEXT COLLATE "C" NOT NULL,
            updated_at TEXT COLLATE "C" NOT NULL,
            commit_id TEXT COLLATE "C" NOT NULL,
            seq BIGINT,
            CONSTRAINT memory_nodes_private_rule_owner
                CHECK (type <> 'rule' OR memory_lane <> 'private' OR owner_agent_id IS NOT NULL OR owner_team_id IS NOT NULL)
        )"#,
        r#"CREATE UNIQUE INDEX IF NOT EXISTS memory_nodes_scope_client_id ON memory_nodes (scope, client_id) WHERE client_id IS NOT NULL"#,
        r#"CREATE INDEX IF NOT EXISTS memory_nodes_scope_seq ON memory_nodes (scope, seq) WHERE seq IS NOT NULL"#,
        r#"CREATE INDEX IF NOT EXISTS memory_nodes_scope_created ON memory_nodes (scope, created_at DESC, seq DESC NULLS LAST, id DESC)"#,
        r#"CREATE INDEX IF NOT EXISTS memory_nodes_scope_type_created ON memory_nodes (scope, type, created_at DESC, seq DESC NULLS LAST, id DESC)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_edges (
            id TEXT COLLATE "C" PRIMARY KEY,
            scope TEXT COLLATE "C" NOT NULL,
            type TEXT COLLATE "C" NOT NULL,
            src_id TEXT COLLATE "C" NOT NULL REFERENCES memory_nodes (id) ON DELETE CASCADE,
            dst_id TEXT COLLATE "C" NOT NULL REFERENCES memory_nodes (id) ON DELETE CASCADE,
            weight DOUBLE PRECISION NOT NULL DEFAULT 0.5,
            confidence DOUBLE PRECISION NOT NULL DEFAULT 0.5,
            decay_rate DOUBLE PRECISION NOT NULL DEFAULT 0.01,
            last_activated TEXT COLLATE "C",
            created_at TEXT COLLATE "C" NOT NULL,
            commit_id TEXT COLLATE "C" NOT NULL,
            UNIQUE (scope, type, src_id, dst_id),
            CHECK (src_id <> dst_id)
        )"#,
        r#"CREATE INDEX IF NOT EXISTS memory_edges_scope_src_rank ON memory_edges (scope, src_id, weight DESC, confidence DESC, id, dst_id, type)"#,
        r#"CREATE INDEX IF NOT EXISTS memory_edges_scope_dst_rank ON memory_edges (scope, dst_id, weight DESC, confidence DESC, id, src_id, type)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_outbox (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            scope TEXT COLLATE "C" NOT NULL,
            commit_id TEXT COLLATE "C" NOT NULL,
            event_type TEXT COLLATE "C" NOT NULL,
            payload TEXT NOT NULL,
            payload_sha256 TEXT COLLATE "C" NOT NULL,
            job_key TEXT COLLATE "C" NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL,
            published_at TEXT COLLATE "C",
            claimed_at TEXT COLLATE "C",
            attempts BIGINT NOT NULL DEFAULT 0,
            last_error TEXT,
            failed_at TEXT COLLATE "C",
            failed_reason TEXT,
            next_attempt_at TEXT COLLATE "C",
            claim_token TEXT COLLATE "C",
            result TEXT
        )"#,
        r#"CREATE INDEX IF NOT EXISTS memory_outbox_pending_scope ON memory_outbox (scope, id) WHERE published_at IS NULL AND failed_at IS NULL"#,
        r#"CREATE INDEX IF NOT EXISTS memory_outbox_dead ON memory_outbox (scope, id) WHERE failed_at IS NOT NULL"#,
        r#"CREATE TABLE IF NOT EXISTS memory_derived_vectors (
            node_id TEXT COLLATE "C" PRIMARY KEY,
            scope TEXT COLLATE "C" NOT NULL,
            model TEXT COLLATE "C" NOT NULL,
            dims BIGINT NOT NULL,
            vector BYTEA NOT NULL,
            updated_at TEXT COLLATE "C" NOT NULL
        )"#,
        r#"CREATE INDEX IF NOT EXISTS memory_derived_vectors_scope ON memory_derived_vectors (scope)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_topic_centroids (
            topic_id TEXT COLLATE "C" PRIMARY KEY,
            scope TEXT COLLATE "C" NOT NULL,
            member_count BIGINT NOT NULL,
            sum BYTEA NOT NULL,
            updated_at TEXT COLLATE "C" NOT NULL
        )"#,
        r#"CREATE INDEX IF NOT EXISTS memory_topic_centroids_scope ON memory_topic_centroids (scope)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_derive_state (name TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_vector_index (
            scope TEXT COLLATE "C" PRIMARY KEY,
            dims BIGINT NOT NULL,
            nlist BIGINT NOT NULL,
            trained_count BIGINT NOT NULL,
            trained_at TEXT COLLATE "C" NOT NULL,
            updated_at TEXT COLLATE "C" NOT NULL,
            centroid_codes BYTEA,
            centroids BYTEA NOT NULL
        )"#,
        r#"CREATE TABLE IF NOT EXISTS memory_vector_lists (
            scope TEXT COLLATE "C" NOT NULL,
            list BIGINT NOT NULL,
            entries BYTEA NOT NULL,
            PRIMARY KEY (scope, list)
        )"#,
        r#"CREATE TABLE IF NOT EXISTS memory_vector_members (node_id TEXT COLLATE "C" PRIMARY KEY, scope TEXT COLLATE "C" NOT NULL, list BIGINT NOT NULL)"#,
        r#"CREATE INDEX IF NOT EXISTS memory_vector_members_scope ON memory_vector_members (scope)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_vector_list_changes (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            scope TEXT COLLATE "C" NOT NULL,
            list BIGINT NOT NULL,
            node BYTEA NOT NULL,
            entry BYTEA
        )"#,
        r#"CREATE INDEX IF NOT EXISTS memory_vector_list_changes_list ON memory_vector_list_changes (scope, list, id)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_recall_audit (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            scope TEXT COLLATE "C" NOT NULL,
            endpoint TEXT COLLATE "C" NOT NULL,
            consumer_agent_id TEXT COLLATE "C",
            consumer_team_id TEXT COLLATE "C",
            query_sha256 TEXT COLLATE "C" NOT NULL,
            seed_count BIGINT NOT NULL,
            node_count BIGINT NOT NULL,
            edge_count BIGINT NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL
        )"#,
        r#"CREATE INDEX IF NOT EXISTS memory_recall_audit_scope ON memory_recall_audit (scope, id)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_rule_defs (
            rule_node_id TEXT COLLATE "C" PRIMARY KEY,
            scope TEXT COLLATE "C" NOT NULL,
            state TEXT COLLATE "C" NOT NULL DEFAULT 'draft',
            rule_scope TEXT COLLATE "C" NOT NULL DEFAULT 'global',
            target_agent_id TEXT COLLATE "C",
            target_team_id TEXT COLLATE "C",
            if_json TEXT NOT NULL DEFAULT '{}',
            then_json TEXT NOT NULL DEFAULT '{}',
            exceptions_json TEXT NOT NULL DEFAULT '[]',
            positive_count BIGINT NOT NULL DEFAULT 0,
            negative_count BIGINT NOT NULL DEFAULT 0,
            last_evaluated_at TEXT COLLATE "C",
            created_at TEXT COLLATE "C" NOT NULL,
            updated_at TEXT COLLATE "C" NOT NULL,
            commit_id TEXT COLLATE "C" NOT NULL,
            memory_lane TEXT COLLATE "C" NOT NULL DEFAULT 'shared',
            owner_agent_id TEXT COLLATE "C",
            owner_team_id TEXT COLLATE "C",
            summary TEXT,
            rank_priority TEXT,
            rank_weight TEXT
        )"#,
        r#"CREATE INDEX IF NOT EXISTS memory_rule_defs_scope_updated ON memory_rule_defs (scope, updated_at DESC, rule_node_id)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_rule_feedback (
            id TEXT COLLATE "C" PRIMARY KEY,
            scope TEXT COLLATE "C" NOT NULL,
            rule_node_id TEXT COLLATE "C" NOT NULL,
            run_id TEXT COLLATE "C",
            outcome TEXT COLLATE "C" NOT NULL CHECK (outcome IN ('positive', 'negative', 'neutral')),
            note TEXT,
            source TEXT COLLATE "C" NOT NULL DEFAULT 'rule_feedback' CHECK (source IN ('rule_feedback', 'tools_feedback')),
            decision_id TEXT COLLATE "C",
            created_at TEXT COLLATE "C" NOT NULL,
            commit_id TEXT COLLATE "C" NOT NULL
        )"#,
        r#"CREATE INDEX IF NOT EXISTS memory_rule_feedback_rule ON memory_rule_feedback (scope, rule_node_id, created_at)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_execution_decisions (
            id TEXT COLLATE "C" PRIMARY KEY,
            scope TEXT COLLATE "C" NOT NULL,
            decision_kind TEXT COLLATE "C" NOT NULL CHECK (decision_kind IN ('tools_select')),
            run_id TEXT COLLATE "C",
            selected_tool TEXT COLLATE "C",
            candidates_json TEXT NOT NULL DEFAULT '[]',
            context_sha256 TEXT COLLATE "C" NOT NULL,
            policy_sha256 TEXT COLLATE "C" NOT NULL,
            source_rule_ids TEXT NOT NULL DEFAULT '[]',
            metadata_json TEXT NOT NULL DEFAULT '{}',
            created_at TEXT COLLATE "C" NOT NULL,
            commit_id TEXT COLLATE "C"
        )"#,
        r#"CREATE INDEX IF NOT EXISTS memory_execution_decisions_run ON memory_execution_decisions (scope, run_id, created_at)"#,
        r#"CREATE INDEX IF NOT EXISTS memory_execution_decisions_context ON memory_execution_decisions (scope, context_sha256, created_at)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_tombstones (
            row_id TEXT COLLATE "C" PRIMARY KEY,
            scope TEXT COLLATE "C" NOT NULL,
            row_kind TEXT COLLATE "C" NOT NULL CHECK (row_kind IN ('node', 'edge')),
            erased_at TEXT COLLATE "C" NOT NULL,
            erased_by TEXT COLLATE "C" NOT NULL,
            reason TEXT NOT NULL,
            commit_id TEXT COLLATE "C" NOT NULL
        )"#,
        r#"CREATE INDEX IF NOT EXISTS memory_tombstones_scope ON memory_tombstones (scope, row_kind)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_scope_usage (scope TEXT COLLATE "C" PRIMARY KEY, bytes BIGINT NOT NULL)"#,
        r#"CREATE TABLE IF NOT EXISTS memory_features (name TEXT COLLATE "C" PRIMARY KEY, enabled BIGINT NOT NULL)"#,
        r#"INSERT INTO memory_features (name, enabled) VALUES ('lexical_index', 0) ON CONFLICT (name) DO NOTHING"#,
        r#"CREATE TABLE IF NOT EXISTS memory_instance (id TEXT COLLATE "C" NOT NULL)"#,
        r#"INSERT INTO memory_instance (id) SELECT replace(gen_random_uuid()::text, '-', '') WHERE NOT EXISTS (SELECT 1 FROM memory_instance)"#,
    ],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    // 15: the lexical channel's postings (`crate::recall::postings`): one
    // row per distinct term of a written node. The primary key serves a
    // word's count and its newest matches; the second index the cascade
    // from memory_nodes (erasure, retention, teardown).
    &[
        r#"CREATE TABLE IF NOT EXISTS memory_lexemes (
            term TEXT COLLATE "C" NOT NULL,
            node_rowid BIGINT NOT NULL REFERENCES memory_nodes (rowid) ON DELETE CASCADE,
            PRIMARY KEY (term, node_rowid)
        )"#,
        r#"CREATE INDEX IF NOT EXISTS memory_lexemes_node ON memory_lexemes (node_rowid)"#,
        r#"UPDATE memory_features SET enabled = 1 WHERE name = 'lexical_index'"#,
        // SQLite's json_valid, for statements that read stored JSON in bulk
        // (`cairn_spin::json_sql`: the consistency checks): PostgreSQL 15
        // has no such test, and a bad cast aborts the transaction.
        r#"CREATE OR REPLACE FUNCTION cairn_json_valid(doc text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
            PERFORM doc::jsonb;
            RETURN doc IS NOT NULL;
        EXCEPTION WHEN others THEN
            RETURN false;
        END
        $$"#,
    ],
];

#[cfg(test)]
mod tests {
    /// One version means one schema on both backends.
    #[test]
    fn as_many_steps_as_sqlite() {
        assert_eq!(super::MIGRATIONS.len(), crate::schema::MIGRATIONS.len());
    }
}

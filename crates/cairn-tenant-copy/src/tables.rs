//! What a tenant owns: every table holding its rows, in the order a copy
//! inserts them (parents before the rows that reference them), with the
//! columns copied and the order rows are read in.
//!
//! A test holds this list to both schemas (`tests/copy.rs`): every table
//! of a migrated store is here or in [`NOT_COPIED`], and each entry's
//! columns are exactly the table's (less the one the destination assigns).

use cairn_core::tenant_scope::tenant_key_sql;

/// How a table's rows are attributed to a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A `scope` column holding scope keys (`tenant:<id>::scope:<s>`, or
    /// un-prefixed for the default tenant).
    ScopeKey,
    /// A `tenant_id` column.
    TenantId,
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub owner: Owner,
    /// The columns copied, in a fixed order.
    pub columns: &'static [&'static str],
    /// The key rows are read in (a unique key, so pages never overlap).
    pub order_by: &'static [&'static str],
    /// A key the destination assigns on insert (an identity column, or
    /// SQLite's `rowid`): read for the order, never copied. Rows are
    /// inserted in its order, so relative order (recency, job order)
    /// survives while the values may differ.
    pub assigned: bool,
    /// An append-only log the host writes off the request path (request
    /// telemetry, recall audit rows): it may still grow while a copy runs,
    /// from requests acknowledged before it started, so a copy holds
    /// between the rows there at the start and those there at the end.
    pub log: bool,
}

const fn scoped(name: &'static str, columns: &'static [&'static str], order_by: &'static [&'static str]) -> Table {
    Table { name, owner: Owner::ScopeKey, columns, order_by, assigned: false, log: false }
}

const fn tenant(name: &'static str, columns: &'static [&'static str], order_by: &'static [&'static str]) -> Table {
    Table { name, owner: Owner::TenantId, columns, order_by, assigned: false, log: false }
}

const fn assigned(mut t: Table) -> Table {
    t.assigned = true;
    t
}

const fn log(mut t: Table) -> Table {
    t.log = true;
    t
}

/// The copied tables, parents first.
#[rustfmt::skip]
pub const TABLES: &[Table] = &[
    // The kernel's (cairn_memory::schema).
    scoped(
        "memory_commits",
        &[
            "scope", "seq", "id", "parent_id", "parent_hash", "kind", "input_sha256", "diff_json", "actor",
            "model_version", "prompt_version", "request_sha256", "result_json", "created_at", "commit_hash",
        ],
        &["scope", "seq"],
    ),
    assigned(scoped(
        "memory_nodes",
        &[
            "id", "scope", "client_id", "type", "tier", "title", "text_summary", "slots", "raw_ref", "evidence_ref",
            "embedding", "embedding_dims", "embedding_model", "embedding_status", "embedding_attempts",
            "embedding_last_error", "embedding_ready_at", "salience", "importance", "confidence", "last_activated",
            "memory_lane", "producer_agent_id", "owner_agent_id", "owner_team_id", "created_at", "updated_at",
            "commit_id", "seq",
        ],
        &["rowid"],
    )),
    scoped(
        "memory_edges",
        &[
            "id", "scope", "type", "src_id", "dst_id", "weight", "confidence", "decay_rate", "last_activated",
            "created_at", "commit_id",
        ],
        &["id"],
    ),
    assigned(scoped(
        "memory_outbox",
        &[
            "scope", "commit_id", "event_type", "payload", "payload_sha256", "job_key", "created_at", "published_at",
            "claimed_at", "attempts", "last_error", "failed_at", "failed_reason", "next_attempt_at", "claim_token",
            "result",
        ],
        &["id"],
    )),
    scoped("memory_derived_vectors", &["node_id", "scope", "model", "dims", "vector", "updated_at"], &["node_id"]),
    scoped("memory_topic_centroids", &["topic_id", "scope", "member_count", "sum", "updated_at"], &["topic_id"]),
    scoped(
        "memory_vector_index",
        &["scope", "dims", "nlist", "trained_count", "trained_at", "updated_at", "centroid_codes", "centroids"],
        &["scope"],
    ),
    scoped("memory_vector_lists", &["scope", "list", "entries"], &["scope", "list"]),
    scoped("memory_vector_members", &["node_id", "scope", "list"], &["node_id"]),
    assigned(scoped("memory_vector_list_changes", &["scope", "list", "node", "entry"], &["id"])),
    log(assigned(scoped(
        "memory_recall_audit",
        &[
            "scope", "endpoint", "consumer_agent_id", "consumer_team_id", "query_sha256", "seed_count", "node_count",
            "edge_count", "created_at",
        ],
        &["id"],
    ))),
    scoped(
        "memory_rule_defs",
        &[
            "rule_node_id", "scope", "state", "rule_scope", "target_agent_id", "target_team_id", "if_json",
            "then_json", "exceptions_json", "positive_count", "negative_count", "last_evaluated_at", "created_at",
            "updated_at", "commit_id", "memory_lane", "owner_agent_id", "owner_team_id", "summary", "rank_priority",
            "rank_weight",
        ],
        &["rule_node_id"],
    ),
    scoped(
        "memory_rule_feedback",
        &[
            "id", "scope", "rule_node_id", "run_id", "outcome", "note", "source", "decision_id", "created_at",
            "commit_id",
        ],
        &["id"],
    ),
    scoped(
        "memory_execution_decisions",
        &[
            "id", "scope", "decision_kind", "run_id", "selected_tool", "candidates_json", "context_sha256",
            "policy_sha256", "source_rule_ids", "metadata_json", "created_at", "commit_id",
        ],
        &["id"],
    ),
    scoped(
        "memory_tombstones",
        &["row_id", "scope", "row_kind", "erased_at", "erased_by", "reason", "commit_id"],
        &["row_id"],
    ),
    scoped("memory_scope_usage", &["scope", "bytes"], &["scope"]),
    // The control plane's (cairn_control_plane::schema).
    tenant(
        "control_tenants",
        &[
            "tenant_id", "display_name", "status", "metadata", "created_at", "updated_at", "tier", "provisioned_at",
            "torn_down_at",
        ],
        &["tenant_id"],
    ),
    tenant(
        "control_projects",
        &["project_id", "tenant_id", "display_name", "status", "metadata", "created_at", "updated_at"],
        &["project_id"],
    ),
    tenant(
        "control_api_keys",
        &[
            "id", "tenant_id", "project_id", "label", "role", "agent_id", "team_id", "key_hash", "key_prefix",
            "status", "metadata", "created_at", "revoked_at",
        ],
        &["id"],
    ),
    tenant(
        "control_tenant_quotas",
        &[
            "tenant_id", "recall_rps", "recall_burst", "write_rps", "write_burst", "write_max_wait_ms",
            "debug_embed_rps", "debug_embed_burst", "recall_text_embed_rps", "recall_text_embed_burst",
            "recall_text_embed_max_wait_ms", "created_at", "updated_at",
        ],
        &["tenant_id"],
    ),
    tenant(
        "control_quota_buckets",
        &["tenant_id", "class", "tokens", "updated_ms", "granted"],
        &["tenant_id", "class"],
    ),
    log(assigned(tenant(
        "memory_request_telemetry",
        &["tenant_id", "scope", "endpoint", "status_code", "latency_ms", "request_id", "created_at", "api_key_prefix"],
        &["id"],
    ))),
    tenant(
        "control_alert_routes",
        &[
            "id", "tenant_id", "channel", "label", "events", "status", "target", "secret", "headers", "metadata",
            "created_at", "updated_at",
        ],
        &["id"],
    ),
    assigned(tenant(
        "control_alert_deliveries",
        &[
            "delivery_id", "route_id", "tenant_id", "event_type", "status", "request_id", "response_code",
            "response_body", "error", "metadata", "dedupe_key", "created_at",
        ],
        &["id"],
    )),
    tenant(
        "control_evidence",
        &[
            "evidence_id", "kind", "tenant_id", "period_start", "period_end", "producer", "content_type", "sha256",
            "size_bytes", "created_at", "content",
        ],
        &["evidence_id"],
    ),
    tenant(
        "control_governance_reports",
        &[
            "report_id", "report_week", "subject", "tenant_id", "profile", "tiers", "covered_tenants", "retention_days",
            "period_start", "period_end", "expires_at_ms", "ok", "exit_code", "created_at", "deleted_at",
        ],
        &["report_id"],
    ),
    tenant(
        "control_evidence_publish_jobs",
        &[
            "job_id", "tenant_id", "target", "index_sha256", "payload", "status", "attempts", "max_attempts",
            "retry_base_ms", "retry_max_ms", "next_attempt_ms", "locked_until_ms", "last_error", "last_response_code", "published_at", "created_at",
            "updated_at",
        ],
        &["job_id"],
    ),
];

/// The audit log, copied after the tables by re-appending each of the
/// tenant's events to the destination's chain (`crate::audit_events`).
pub const AUDIT_EVENTS: &str = "control_audit_events";

/// Tables that hold no tenant's rows, or none a copy may carry: derivation's
/// global cursors, feature flags and the instance id (the destination's
/// own), migration bookkeeping, the lexical index (PostgreSQL's postings
/// here, SQLite's FTS5 tables by [`is_fulltext_table`]; the destination
/// indexes the nodes as they are imported) and internals.
pub const NOT_COPIED: &[&str] = &[
    "memory_derive_state",
    "memory_features",
    "memory_instance",
    "cairn_schema",
    "memory_lexemes",
    "sqlite_sequence",
    "sqlite_stat1",
];

/// Whether `name` is one of SQLite's full-text index tables (`memory_nodes_fts*`).
pub fn is_fulltext_table(name: &str) -> bool {
    name.starts_with("memory_nodes_fts")
}

/// The table named `name`.
pub fn find(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

impl Table {
    /// The SQL condition selecting `tenant_id`'s rows, with its parameters.
    pub fn tenant_condition(&self, tenant_id: &str, default_tenant: &str) -> (String, Vec<String>) {
        match self.owner {
            Owner::ScopeKey => tenant_key_sql("scope", tenant_id, default_tenant),
            Owner::TenantId => ("(tenant_id = ?)".into(), vec![tenant_id.to_string()]),
        }
    }

    /// The read order's columns followed by the copied ones (the order key
    /// is selected first so a page's last row gives the next cursor).
    pub fn select_list(&self) -> String {
        let mut cols: Vec<&str> = self.order_by.to_vec();
        cols.extend(self.columns);
        cols.join(", ")
    }
}

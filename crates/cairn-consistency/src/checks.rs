//! The checks. Most are one SQL statement selecting one JSON object per
//! offending row (`json_object(...)`): its count is the finding's count
//! and its first rows the sample. The rest (commit chains, the audit chain,
//! key and model formats) are computed in Rust over a read.
//!
//! Names follow the reference (§8.3) where the check means the same thing;
//! Cairn's own checks are named in the same style. `docs/operations.md`
//! lists every check with what a finding means and what to do.

use crate::options::{CheckSet, FAST_COUNT_CAP, Mode, Options};
use crate::{CheckResult, Severity};
use cairn_core::ApiError;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::json_sql;
use cairn_spin::sql::{Dialect, Sql};
use serde_json::{Value, json};

/// The tenant of a scope key in SQL (`''` for the default tenant's raw keys).
fn tenant_of(d: Dialect, col: &str) -> String {
    let pos = d.position_fn();
    format!(
        "(CASE WHEN substr({col}, 1, 7) = 'tenant:' THEN substr({col}, 8, {pos}({col}, '::scope:') - 8) ELSE '' END)"
    )
}

/// One SQL check.
struct SqlCheck {
    name: &'static str,
    severity: Severity,
    set: CheckSet,
    note: &'static str,
    rows: String,
    /// The component whose tables it reads.
    needs: &'static str,
}

/// The SQL checks for `o` (scope checks filtered to its scopes), spelled
/// for `d`: written with SQLite's `json_object` (renamed on PostgreSQL by
/// `json_sql::objects_for`); the few that read stored JSON use `json_sql`.
#[rustfmt::skip]
fn sql_checks(d: Dialect, o: &Options) -> Vec<SqlCheck> {
    use CheckSet::{CrossTenant, Scope};
    use Severity::{Error, Warning};
    let f = |col: &str| o.filter.sql(col);
    let claim_cutoff = rfc3339_millis(o.now_ms - o.claim_timeout_ms);
    let max_attempts = o.max_attempts;
    let kernel = cairn_memory::schema::COMPONENT;
    let c = |name, severity, set, note, rows: String| SqlCheck {
        name,
        severity,
        set,
        note,
        rows: json_sql::objects_for(d, &rows),
        needs: kernel,
    };
    let (text, valid) = (|doc: &str, key: &str| json_sql::text(d, doc, key), |doc: &str| json_sql::valid(d, doc));
    let rollup = |n: &str| {
        format!("{} AND {} = 'compression_rollup'", valid(&format!("{n}slots")), text(&format!("{n}slots"), "summary_kind"))
    };
    vec![
        // ---- graph ----
        c("edges_cross_scope", Error, Scope, "an edge's scope differs from one of its endpoints' scope",
          format!("SELECT json_object('edge_id', e.id, 'scope', e.scope, 'src_scope', s.scope, 'dst_scope', d.scope) \
                   FROM memory_edges e JOIN memory_nodes s ON s.id = e.src_id JOIN memory_nodes d ON d.id = e.dst_id \
                   WHERE {} AND (s.scope <> e.scope OR d.scope <> e.scope)", f("e.scope"))),
        c("edges_endpoint_missing", Error, Scope, "an edge names a node that does not exist",
          format!("SELECT json_object('edge_id', e.id, 'scope', e.scope, 'src_id', e.src_id, 'dst_id', e.dst_id) \
                   FROM memory_edges e WHERE {} AND (NOT EXISTS (SELECT 1 FROM memory_nodes s WHERE s.id = e.src_id) \
                   OR NOT EXISTS (SELECT 1 FROM memory_nodes d WHERE d.id = e.dst_id))", f("e.scope"))),
        c("nodes_missing_commit_id", Error, Scope, "a node's commit_id is empty or names no commit of its scope",
          format!("SELECT json_object('node_id', n.id, 'scope', n.scope, 'commit_id', n.commit_id) FROM memory_nodes n \
                   WHERE {} AND NOT EXISTS (SELECT 1 FROM memory_commits c WHERE c.id = n.commit_id AND c.scope = n.scope)",
                  f("n.scope"))),
        c("edges_missing_commit_id", Error, Scope, "an edge's commit_id is empty or names no commit of its scope",
          format!("SELECT json_object('edge_id', e.id, 'scope', e.scope, 'commit_id', e.commit_id) FROM memory_edges e \
                   WHERE {} AND NOT EXISTS (SELECT 1 FROM memory_commits c WHERE c.id = e.commit_id AND c.scope = e.scope)",
                  f("e.scope"))),
        c("tombstoned_rows_present", Error, Scope, "a row erased behind a tombstone is still stored",
          format!("SELECT json_object('row_id', t.row_id, 'row_kind', t.row_kind, 'scope', t.scope, 'commit_id', t.commit_id) \
                   FROM memory_tombstones t WHERE {} AND (EXISTS (SELECT 1 FROM memory_nodes n WHERE n.id = t.row_id) \
                   OR EXISTS (SELECT 1 FROM memory_edges e WHERE e.id = t.row_id))", f("t.scope"))),
        // ---- embeddings ----
        c("embedding_dim_mismatch", Error, Scope, "a stored vector's byte length is not 4 x its dims",
          format!("SELECT json_object('node_id', id, 'scope', scope, 'source', 'client', 'dims', embedding_dims, 'bytes', length(embedding)) \
                   FROM memory_nodes WHERE {} AND embedding IS NOT NULL AND (embedding_dims IS NULL OR length(embedding) <> 4 * embedding_dims) \
                   UNION ALL SELECT json_object('node_id', node_id, 'scope', scope, 'source', 'derived', 'dims', dims, 'bytes', length(vector)) \
                   FROM memory_derived_vectors WHERE {} AND length(vector) <> 4 * dims", f("scope"), f("scope"))),
        c("embedding_ready_without_vector", Error, Scope, "a node is marked ready but has no vector",
          format!("SELECT json_object('node_id', n.id, 'scope', n.scope) FROM memory_nodes n WHERE {} \
                   AND n.embedding_status = 'ready' AND n.embedding IS NULL \
                   AND NOT EXISTS (SELECT 1 FROM memory_derived_vectors v WHERE v.node_id = n.id)", f("n.scope"))),
        // A node being re-embedded (pending: a summary rewritten by its
        // rollup) keeps its previous derived vector until the new one lands.
        c("embedding_not_ready_with_vector", Error, Scope, "a node has a vector but is not marked ready (or pending re-embedding)",
          format!("SELECT json_object('node_id', n.id, 'scope', n.scope, 'embedding_status', n.embedding_status) \
                   FROM memory_nodes n WHERE {} AND n.embedding_status <> 'ready' AND (n.embedding IS NOT NULL \
                   OR (n.embedding_status <> 'pending' AND EXISTS (SELECT 1 FROM memory_derived_vectors v WHERE v.node_id = n.id)))",
                  f("n.scope"))),
        c("embedding_model_missing_for_ready", Error, Scope, "a ready vector does not say which model made it",
          format!("SELECT json_object('node_id', n.id, 'scope', n.scope) FROM memory_nodes n \
                   LEFT JOIN memory_derived_vectors v ON v.node_id = n.id WHERE {} AND n.embedding_status = 'ready' \
                   AND (n.embedding IS NOT NULL OR v.node_id IS NOT NULL) \
                   AND trim(coalesce(n.embedding_model, v.model, '')) = ''", f("n.scope"))),
        c("derived_vector_orphan", Error, Scope, "a derived vector belongs to no node of its scope",
          format!("SELECT json_object('node_id', v.node_id, 'scope', v.scope) FROM memory_derived_vectors v WHERE {} \
                   AND NOT EXISTS (SELECT 1 FROM memory_nodes n WHERE n.id = v.node_id AND n.scope = v.scope)", f("v.scope"))),
        // ---- the IVF index ----
        c("ivf_member_orphan", Error, Scope,
          "an IVF list member is no vector of its scope, or its scope has no index (rebuild the index: POST /v1/admin/derive/rebuild)",
          format!("SELECT json_object('node_id', m.node_id, 'scope', m.scope, 'list', m.list) FROM memory_vector_members m WHERE {} \
                   AND (NOT EXISTS (SELECT 1 FROM memory_nodes n WHERE n.id = m.node_id AND n.scope = m.scope \
                        AND (n.embedding IS NOT NULL OR EXISTS (SELECT 1 FROM memory_derived_vectors v WHERE v.node_id = n.id))) \
                   OR NOT EXISTS (SELECT 1 FROM memory_vector_index i WHERE i.scope = m.scope))", f("m.scope"))),
        c("ivf_member_missing", Error, Scope,
          "a ready derived vector of an indexed scope is in no IVF list, so recall's index cannot find it",
          format!("SELECT json_object('node_id', v.node_id, 'scope', v.scope) FROM memory_derived_vectors v \
                   JOIN memory_vector_index i ON i.scope = v.scope JOIN memory_nodes n ON n.id = v.node_id \
                   WHERE {} AND n.embedding_status = 'ready' AND length(v.vector) = 4 * i.dims \
                   AND NOT EXISTS (SELECT 1 FROM memory_vector_members m WHERE m.node_id = v.node_id)", f("v.scope"))),
        // ---- topics and summaries ----
        c("topic_state_invalid", Warning, Scope, "a topic's topic_state is neither active nor draft",
          format!("SELECT json_object('node_id', id, 'scope', scope, 'topic_state', {}) \
                   FROM memory_nodes WHERE {} AND type = 'topic' AND {} \
                   AND coalesce({}, 'active') NOT IN ('active', 'draft')",
                  json_sql::value(d, "slots", "topic_state"), f("scope"), valid("slots"), text("slots", "topic_state"))),
        c("topic_member_count_invalid", Warning, Scope, "a topic's member_count is not a whole number",
          format!("SELECT json_object('node_id', id, 'scope', scope, 'member_count', {}) \
                   FROM memory_nodes WHERE {} AND type = 'topic' AND {} AND {} AND NOT {}",
                  json_sql::value(d, "slots", "member_count"), f("scope"), valid("slots"),
                  json_sql::present(d, "slots", "member_count"), json_sql::whole_number(d, "slots", "member_count"))),
        c("compression_citations_invalid", Warning, Scope, "a compression summary has no citations array",
          format!("SELECT json_object('node_id', id, 'scope', scope) FROM memory_nodes WHERE {} AND type = 'concept' \
                   AND {} AND NOT {}", f("scope"), rollup(""), json_sql::is_array(d, "slots", "citations"))),
        c("compression_citation_node_missing", Warning, Scope, "a compression summary cites a node that is gone",
          format!("SELECT json_object('node_id', n.id, 'scope', n.scope, 'cited', {cited}) \
                   FROM memory_nodes n, {elements} WHERE {} AND n.type = 'concept' AND {} AND {} \
                   AND NOT EXISTS (SELECT 1 FROM memory_nodes m WHERE m.id = {cited} AND m.scope = n.scope)",
                  f("n.scope"), rollup("n."), json_sql::is_array(d, "n.slots", "citations"),
                  cited = json_sql::element_text(d, "j", "node_id"),
                  elements = json_sql::array_elements(d, "n.slots", "citations", "j"))),
        // ---- lanes and rules ----
        c("private_lane_without_owner", Warning, Scope, "a private memory (not a rule) has no owner agent or team: only find by id reaches it",
          format!("SELECT json_object('node_id', id, 'scope', scope, 'type', type) FROM memory_nodes WHERE {} \
                   AND type <> 'rule' AND memory_lane = 'private' AND owner_agent_id IS NULL AND owner_team_id IS NULL", f("scope"))),
        c("private_rule_without_owner", Error, Scope, "a private rule has no owner agent or team",
          format!("SELECT json_object('node_id', id, 'scope', scope) FROM memory_nodes WHERE {} \
                   AND type = 'rule' AND memory_lane = 'private' AND owner_agent_id IS NULL AND owner_team_id IS NULL", f("scope"))),
        c("private_rule_owner_constraint_not_validated", Error, Scope,
          "memory_nodes lacks the CHECK that a private rule has an owner (the table was altered by hand)",
          match d {
              Dialect::Sqlite => "SELECT json_object('table', 'memory_nodes') FROM sqlite_master WHERE type = 'table' \
                  AND name = 'memory_nodes' AND instr(sql, 'CHECK (type <> ''rule'' OR memory_lane <> ''private''') = 0".to_string(),
              // PostgreSQL keeps the CHECK as a constraint of its own, spelled
              // back with its own parentheses and casts.
              Dialect::Postgres => "SELECT json_object('table', 'memory_nodes') WHERE NOT EXISTS (SELECT 1 FROM pg_constraint \
                  WHERE conrelid = 'memory_nodes'::regclass AND contype = 'c' \
                  AND strpos(pg_get_constraintdef(oid), 'memory_lane <> ''private''') > 0 \
                  AND strpos(pg_get_constraintdef(oid), 'owner_agent_id IS NOT NULL') > 0)".to_string(),
          }),
        c("rule_scope_target_missing", Error, Scope, "an agent or team rule names no target agent or team",
          format!("SELECT json_object('rule_node_id', rule_node_id, 'scope', scope, 'rule_scope', rule_scope) FROM memory_rule_defs \
                   WHERE {} AND ((rule_scope = 'agent' AND coalesce(target_agent_id, '') = '') \
                   OR (rule_scope = 'team' AND coalesce(target_team_id, '') = ''))", f("scope"))),
        c("rule_def_node_missing", Error, Scope, "a rule definition has no rule node in its scope",
          format!("SELECT json_object('rule_node_id', d.rule_node_id, 'scope', d.scope) FROM memory_rule_defs d WHERE {} \
                   AND NOT EXISTS (SELECT 1 FROM memory_nodes n WHERE n.id = d.rule_node_id AND n.scope = d.scope AND n.type = 'rule')",
                  f("d.scope"))),
        c("tools_feedback_missing_decision_id", Error, Scope, "tools feedback without the decision it is about",
          format!("SELECT json_object('feedback_id', id, 'scope', scope) FROM memory_rule_feedback WHERE {} \
                   AND source = 'tools_feedback' AND decision_id IS NULL", f("scope"))),
        c("tools_feedback_decision_link_broken", Error, Scope, "tools feedback names a decision that does not exist",
          format!("SELECT json_object('feedback_id', fb.id, 'scope', fb.scope, 'decision_id', fb.decision_id) FROM memory_rule_feedback fb \
                   WHERE {} AND fb.decision_id IS NOT NULL AND NOT EXISTS \
                   (SELECT 1 FROM memory_execution_decisions d WHERE d.id = fb.decision_id AND d.scope = fb.scope)", f("fb.scope"))),
        c("tools_feedback_run_id_mismatch_with_decision", Warning, Scope, "tools feedback's run_id differs from its decision's",
          format!("SELECT json_object('feedback_id', fb.id, 'scope', fb.scope, 'run_id', fb.run_id, 'decision_run_id', d.run_id) \
                   FROM memory_rule_feedback fb JOIN memory_execution_decisions d ON d.id = fb.decision_id AND d.scope = fb.scope \
                   WHERE {} AND coalesce(fb.run_id, '') <> '' AND coalesce(d.run_id, '') <> '' AND fb.run_id <> d.run_id", f("fb.scope"))),
        c("tools_decision_missing_run_id", Warning, Scope, "a tools/select decision was recorded without a run_id",
          format!("SELECT json_object('decision_id', id, 'scope', scope) FROM memory_execution_decisions WHERE {} \
                   AND decision_kind = 'tools_select' AND coalesce(run_id, '') = ''", f("scope"))),
        // ---- the outbox ----
        c("outbox_commit_missing", Error, Scope, "a derivation job names no commit of its scope",
          format!("SELECT json_object('job_id', o.id, 'scope', o.scope, 'commit_id', o.commit_id, 'event_type', o.event_type) \
                   FROM memory_outbox o WHERE {} AND NOT EXISTS \
                   (SELECT 1 FROM memory_commits c WHERE c.id = o.commit_id AND c.scope = o.scope)", f("o.scope"))),
        c("outbox_should_be_failed_but_not_marked", Error, Scope,
          "a job used every attempt but is not dead-lettered (the next tick's sweep marks it; if it stays, derivation is not running)",
          format!("SELECT json_object('job_id', id, 'scope', scope, 'event_type', event_type, 'attempts', attempts) FROM memory_outbox \
                   WHERE {} AND published_at IS NULL AND failed_at IS NULL AND attempts >= {max_attempts} \
                   AND (claimed_at IS NULL OR claimed_at <= '{claim_cutoff}')", f("scope"))),
        c("outbox_claimed_too_old", Warning, Scope,
          "a job has been claimed for longer than the claim timeout: its worker died or hangs (another tick takes it over)",
          format!("SELECT json_object('job_id', id, 'scope', scope, 'event_type', event_type, 'claimed_at', claimed_at, 'attempts', attempts) \
                   FROM memory_outbox WHERE {} AND published_at IS NULL AND failed_at IS NULL \
                   AND claimed_at IS NOT NULL AND claimed_at <= '{claim_cutoff}'", f("scope"))),
        // ---- across tenants ----
        c("cross_tenant_edge_scope_mismatch", Error, CrossTenant, "an edge joins nodes of different tenants",
          format!("SELECT json_object('edge_id', e.id, 'scope', e.scope, 'src_scope', s.scope, 'dst_scope', d.scope) \
                   FROM memory_edges e JOIN memory_nodes s ON s.id = e.src_id JOIN memory_nodes d ON d.id = e.dst_id \
                   WHERE {} <> {} OR {} <> {}", tenant_of(d, "e.scope"), tenant_of(d, "s.scope"), tenant_of(d, "e.scope"), tenant_of(d, "d.scope"))),
        c("cross_tenant_rule_def_scope_mismatch", Error, CrossTenant, "a rule definition and its rule node belong to different tenants",
          format!("SELECT json_object('rule_node_id', d.rule_node_id, 'scope', d.scope, 'node_scope', n.scope) \
                   FROM memory_rule_defs d JOIN memory_nodes n ON n.id = d.rule_node_id WHERE {} <> {}",
                  tenant_of(d, "d.scope"), tenant_of(d, "n.scope"))),
        c("cross_tenant_rule_feedback_scope_mismatch", Error, CrossTenant, "rule feedback and its rule belong to different tenants",
          format!("SELECT json_object('feedback_id', fb.id, 'scope', fb.scope, 'rule_scope', n.scope) \
                   FROM memory_rule_feedback fb JOIN memory_nodes n ON n.id = fb.rule_node_id WHERE {} <> {}",
                  tenant_of(d, "fb.scope"), tenant_of(d, "n.scope"))),
        c("cross_tenant_outbox_scope_mismatch", Error, CrossTenant, "a derivation job names another tenant's commit",
          format!("SELECT json_object('job_id', o.id, 'scope', o.scope, 'commit_scope', c.scope) \
                   FROM memory_outbox o JOIN memory_commits c ON c.id = o.commit_id WHERE {} <> {}",
                  tenant_of(d, "o.scope"), tenant_of(d, "c.scope"))),
        c("cross_tenant_commit_parent_scope_mismatch", Error, CrossTenant, "a commit's parent belongs to another tenant",
          format!("SELECT json_object('commit_id', c.id, 'scope', c.scope, 'parent_scope', p.scope) \
                   FROM memory_commits c JOIN memory_commits p ON p.id = c.parent_id WHERE {} <> {}",
                  tenant_of(d, "c.scope"), tenant_of(d, "p.scope"))),
        SqlCheck { needs: cairn_control_plane::schema::COMPONENT, ..c("api_keys_live_for_inactive_tenant", Error, CrossTenant,
          "an API key still works for a suspended or torn-down tenant: revoke it (POST /v1/admin/control/api-keys/:id/revoke)",
          format!("SELECT json_object('key_id', k.id, 'tenant_id', k.tenant_id, 'key_prefix', k.key_prefix, 'tenant_status', t.status, \
                   'torn_down_at', t.torn_down_at) FROM control_api_keys k JOIN control_tenants t ON t.tenant_id = k.tenant_id \
                   WHERE k.status = 'active' AND (k.revoked_at IS NULL OR k.revoked_at > '{}') \
                   AND (t.status <> 'active' OR t.torn_down_at IS NOT NULL)", rfc3339_millis(o.now_ms))) },
    ]
}

/// Runs one SQL check.
fn run_sql(db: &dyn Sql, c: &SqlCheck, o: &Options) -> CheckResult {
    finish(c.name, c.severity, c.note, count_and_sample(db, &c.rows, o))
}

/// How many rows `rows` selects (capped in fast mode) and the first of
/// their JSON objects.
fn count_and_sample(db: &dyn Sql, rows: &str, o: &Options) -> Result<(i64, Vec<Value>), ApiError> {
    let count_sql = match o.mode {
        Mode::Full => format!("SELECT count(*) FROM ({rows}) AS found"),
        Mode::Fast => format!("SELECT count(*) FROM ({rows} LIMIT {FAST_COUNT_CAP}) AS found"),
    };
    let count = db.query_one(&count_sql, &[])?.map(|r| r.int(0)).unwrap_or(0);
    let sample = if count == 0 {
        vec![]
    } else {
        // In the objects' byte order, the same on every backend.
        let sorted = match db.dialect() {
            Dialect::Sqlite => format!("SELECT * FROM ({rows}) AS found ORDER BY 1"),
            Dialect::Postgres => format!("SELECT o FROM ({rows}) AS found (o) ORDER BY o COLLATE \"C\""),
        };
        db.query(&format!("{sorted} LIMIT {}", o.sample), &[])?
            .iter()
            .map(|r| r.text(0).and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null))
            .collect()
    };
    Ok((count, sample))
}

fn finish(
    name: &'static str,
    severity: Severity,
    note: &str,
    found: Result<(i64, Vec<Value>), ApiError>,
) -> CheckResult {
    match found {
        Ok((count, sample)) => CheckResult { name, severity, count, sample, note: note.into(), error: None },
        Err(e) => CheckResult { name, severity, count: 0, sample: vec![], note: note.into(), error: Some(e.message) },
    }
}

/// Which components' schemas exist: a data dir whose control plane was
/// never used has no control tables, and its checks are skipped (count 0,
/// said in the note) rather than failed.
struct Present {
    kernel: bool,
    control: bool,
}

fn present(db: &dyn Sql) -> Present {
    Present {
        kernel: has_schema(db, cairn_memory::schema::COMPONENT),
        control: has_schema(db, cairn_control_plane::schema::COMPONENT),
    }
}

/// Whether `component`'s schema exists in this database (any version).
pub fn has_schema(db: &dyn Sql, component: &str) -> bool {
    db.query_one("SELECT 1 FROM cairn_schema WHERE component = ?", &[component.into()]).ok().flatten().is_some()
}

fn skipped(name: &'static str, severity: Severity, note: &str, component: &str) -> CheckResult {
    CheckResult {
        name,
        severity,
        count: 0,
        sample: vec![],
        note: format!("skipped: the {component} schema does not exist yet ({note})"),
        error: None,
    }
}

/// Runs one check so that its failure (reported in its result) does not
/// fail the next: on PostgreSQL an error aborts the whole transaction, so
/// each check runs inside a savepoint, rolled back when the check failed.
fn guarded(db: &dyn Sql, check: &dyn Fn() -> CheckResult) -> CheckResult {
    if db.dialect() == Dialect::Sqlite {
        return check();
    }
    if let Err(e) = db.exec("SAVEPOINT cairn_check", &[]) {
        let mut r = check();
        r.error.get_or_insert(e.message);
        return r;
    }
    let r = check();
    if r.error.is_some() {
        let _ = db.exec("ROLLBACK TO SAVEPOINT cairn_check", &[]);
    }
    let _ = db.exec("RELEASE SAVEPOINT cairn_check", &[]);
    r
}

/// Every check of `o.check_set`, in a fixed order.
pub fn run_all(db: &dyn Sql, o: &Options) -> Vec<CheckResult> {
    let p = present(db);
    let mut out = Vec::new();
    let kernel = |out: &mut Vec<CheckResult>, name, severity, note: &str, f: &dyn Fn() -> CheckResult| {
        out.push(if p.kernel { guarded(db, f) } else { skipped(name, severity, note, "kernel") });
    };
    if o.check_set.includes(CheckSet::Scope) {
        out.push(guarded(db, &|| schema_current(db)));
        kernel(&mut out, "commit_chain_broken", Severity::Error, "commit chains", &|| commit_chains(db, o));
    }
    for c in sql_checks(db.dialect(), o).iter().filter(|c| o.check_set.includes(c.set)) {
        let component_present = if c.needs == cairn_control_plane::schema::COMPONENT { p.control } else { p.kernel };
        out.push(if component_present {
            guarded(db, &|| run_sql(db, c, o))
        } else {
            skipped(c.name, c.severity, c.note, c.needs)
        });
    }
    if o.check_set.includes(CheckSet::Scope) {
        kernel(&mut out, "embedding_model_invalid_for_ready", Severity::Error, "model labels", &|| {
            embedding_models(db, o)
        });
        kernel(&mut out, "fts_index_missing_rows", Severity::Warning, "full-text index", &|| full_text_index(db, o));
    }
    if o.check_set.includes(CheckSet::CrossTenant) {
        kernel(&mut out, "tenant_scope_key_malformed", Severity::Error, "scope keys", &|| scope_keys(db, o));
        out.push(if p.control {
            guarded(db, &|| audit_chain(db))
        } else {
            skipped("control_audit_chain_broken", Severity::Error, "the audit chain", "control")
        });
    }
    out
}

/// Every component's schema is the version this build needs.
fn schema_current(db: &dyn Sql) -> CheckResult {
    let expected = [
        (cairn_memory::schema::COMPONENT, cairn_memory::schema::current_version()),
        (cairn_control_plane::schema::COMPONENT, cairn_control_plane::schema::current_version()),
    ];
    let found = (|| {
        let mut behind = Vec::new();
        for (component, want) in expected {
            // A component never opened has no row: nothing to compare.
            let Some(have) = db
                .query_one("SELECT version FROM cairn_schema WHERE component = ?", &[component.into()])?
                .map(|r| r.int(0))
            else {
                continue;
            };
            if have != want {
                behind.push(json!({"component": component, "schema_version": have, "expected": want}));
            }
        }
        Ok((behind.len() as i64, behind))
    })();
    finish(
        "schema_version_mismatch",
        Severity::Error,
        "a component's schema is not the version this build of cairn uses (start `cairn up` once to migrate; a newer schema needs the newer binary)",
        found,
    )
}

/// Each selected scope's commit chain verifies (links, hashes, the rows
/// each commit attests, erasures) — the same verifier as `/commits/verify`.
fn commit_chains(db: &dyn Sql, o: &Options) -> CheckResult {
    let found = (|| {
        let scopes = db.query(
            &format!("SELECT DISTINCT scope FROM memory_commits WHERE {} ORDER BY scope", o.filter.sql("scope")),
            &[],
        )?;
        let mut broken = Vec::new();
        for s in &scopes {
            let key = s.string(0);
            let r = cairn_memory::commit_log::verify_in_snapshot(db, &key)?;
            if let Some(b) = r.first_broken {
                broken.push(json!({"scope": key, "commit_id": b.commit_id, "reason": b.reason, "checked": r.checked}));
            }
        }
        let count = broken.len() as i64;
        broken.truncate(o.sample);
        Ok((count, broken))
    })();
    finish(
        "commit_chain_broken",
        Severity::Error,
        "a scope's commit chain does not verify: a commit, or a row it attests, was changed outside the write path",
        found,
    )
}

/// `<provider>:<model>` (`^[a-z0-9][a-z0-9_-]*:[^\s]+$`), `client`, or
/// `topic_centroid` (a topic's vector: the mean of its members').
fn model_label_valid(m: &str) -> bool {
    if m == "client" || m == "topic_centroid" {
        return true;
    }
    let Some((provider, model)) = m.split_once(':') else { return false };
    let p = provider.as_bytes();
    provider != "unknown"
        && !p.is_empty()
        && (p[0].is_ascii_lowercase() || p[0].is_ascii_digit())
        && p.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'))
        && !model.is_empty()
        && !model.chars().any(char::is_whitespace)
}

fn embedding_models(db: &dyn Sql, o: &Options) -> CheckResult {
    let found = (|| {
        let rows = db.query(
            &format!(
                "SELECT m, count(*) FROM (SELECT embedding_model AS m FROM memory_nodes WHERE {} AND embedding_status = 'ready' \
                 AND embedding IS NOT NULL AND trim(coalesce(embedding_model, '')) <> '' \
                 UNION ALL SELECT model FROM memory_derived_vectors WHERE {} AND trim(model) <> '') AS labels GROUP BY m",
                o.filter.sql("scope"),
                o.filter.sql("scope")
            ),
            &[],
        )?;
        let bad: Vec<(String, i64)> =
            rows.iter().map(|r| (r.string(0), r.int(1))).filter(|(m, _)| !model_label_valid(m)).collect();
        let count = bad.iter().map(|b| b.1).sum();
        Ok((count, bad.iter().take(o.sample).map(|(m, n)| json!({"embedding_model": m, "vectors": n})).collect()))
    })();
    finish(
        "embedding_model_invalid_for_ready",
        Severity::Error,
        "a ready vector's model label is not `<provider>:<model>` (or `client`, `topic_centroid`): recall cannot tell which vectors compare",
        found,
    )
}

/// Written memories with words are in the full-text index (where this
/// SQLite has FTS5 and the index is on).
fn full_text_index(db: &dyn Sql, o: &Options) -> CheckResult {
    let found = (|| {
        if !cairn_memory::recall::lexical::available(db)? {
            return Ok((0, vec![]));
        }
        let indexed = match db.dialect() {
            Dialect::Sqlite => "EXISTS (SELECT 1 FROM memory_nodes_fts f WHERE f.rowid = n.rowid)",
            Dialect::Postgres => "EXISTS (SELECT 1 FROM memory_lexemes l WHERE l.node_rowid = n.rowid)",
        };
        let rows = format!(
            "SELECT json_object('node_id', n.id, 'scope', n.scope) FROM memory_nodes n WHERE {} AND n.seq IS NOT NULL \
             AND trim(coalesce(n.title, '') || coalesce(n.text_summary, '')) <> '' AND NOT {indexed}",
            o.filter.sql("n.scope")
        );
        count_and_sample(db, &json_sql::objects_for(db.dialect(), &rows), o)
    })();
    finish(
        "fts_index_missing_rows",
        Severity::Warning,
        "a written memory is not in the full-text index: recall_text's lexical side cannot find it by its words (POST /v1/admin/derive/rebuild re-indexes a scope)",
        found,
    )
}

/// Every `tenant:` key has the reference's shape.
fn scope_keys(db: &dyn Sql, o: &Options) -> CheckResult {
    let found = (|| {
        let mut bad = Vec::new();
        for table in ["memory_commits", "memory_nodes", "memory_edges", "memory_outbox"] {
            for r in db.query(
                &format!("SELECT DISTINCT scope FROM {table} WHERE substr(scope, 1, 7) = 'tenant:' ORDER BY scope"),
                &[],
            )? {
                let key = r.string(0);
                if !scope_key_valid(&key) {
                    bad.push(json!({"table": table, "scope": key}));
                }
            }
        }
        let count = bad.len() as i64;
        bad.truncate(o.sample);
        Ok((count, bad))
    })();
    finish(
        "tenant_scope_key_malformed",
        Severity::Error,
        "a tenant scope key is not `tenant:<tenant_id>::scope:<scope>`: its rows are unreachable through the API",
        found,
    )
}

/// `^tenant:[A-Za-z0-9][A-Za-z0-9._-]{0,63}::scope:.+$`.
fn scope_key_valid(key: &str) -> bool {
    key.strip_prefix("tenant:")
        .and_then(|rest| rest.split_once("::scope:"))
        .is_some_and(|(t, s)| cairn_core::tenant_scope::is_valid_tenant_id(t) && !s.is_empty())
}

/// The control plane's audit chain verifies.
fn audit_chain(db: &dyn Sql) -> CheckResult {
    let found = cairn_control_plane::audit::verify_in_snapshot(db)
        .map(|v| if v["ok"].as_bool() == Some(true) { (0, vec![]) } else { (1, vec![v["first_broken"].clone()]) });
    finish(
        "control_audit_chain_broken",
        Severity::Error,
        "the control plane's audit events do not verify: an event was changed or removed outside the admin API",
        found,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_labels() {
        for ok in ["minilm:all-minilm-l6-v2", "local:all-minilm-l6-v2", "openai:text-embedding-3-small", "client"] {
            assert!(model_label_valid(ok), "{ok}");
        }
        for bad in ["", "unknown:x", "MiniLM:x", "minilm", "minilm:", "mini lm:x", "minilm:a b", "-x:y"] {
            assert!(!model_label_valid(bad), "{bad}");
        }
    }

    #[test]
    fn scope_key_shapes() {
        assert!(scope_key_valid("tenant:acme::scope:default"));
        assert!(scope_key_valid("tenant:a.b_c-d::scope:x::y"));
        for bad in ["tenant:", "tenant:acme", "tenant:acme::scope:", "tenant:-a::scope:s", "tenant:::scope:s"] {
            assert!(!scope_key_valid(bad), "{bad}");
        }
    }

    #[test]
    fn tenant_expression_reads_the_prefix() {
        let db = cairn_spin::native_sqlite::NativeSqlite::in_memory();
        let t = |k: &str| {
            db.query_one(&format!("SELECT {}", tenant_of(Dialect::Sqlite, &format!("'{k}'"))), &[])
                .unwrap()
                .unwrap()
                .string(0)
        };
        assert_eq!(t("tenant:acme::scope:s"), "acme");
        assert_eq!(t("default"), "");
    }
}

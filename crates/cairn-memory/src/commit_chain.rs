//! The per-scope commit chain.
//!
//! Every commit of a (tenant, scope) names the scope's previous commit (its
//! head) as parent. Its hash is
//!
//! ```text
//! commit_hash = sha256(canonical({parentHash, inputSha, diffSha, scope, actor,
//!                                  model_version, prompt_version}))   // kind "write"
//! commit_hash = sha256(canonical({parentHash, inputSha, diffSha, scope, actor, kind}))  // other kinds
//! ```
//!
//! with `parentHash` the parent's hash (`""` for the first commit),
//! `diffSha = sha256(canonical(diff))`, `scope` the internal scope key and
//! absent versions written as `null`. The commit id is derived from the hash
//! (`stableUuid("<scope>:commit:<commit_hash>")`), so every column but
//! `created_at` and `request_sha256` is recomputable — and `created_at` is
//! repeated inside the diff, so it is covered too.

use cairn_core::ApiError;
use cairn_core::digest::{sha256_canonical, sha256_hex};
use cairn_core::stable_id::stable_uuid;
use cairn_spin::sql::{Sql, SqlValue};
use serde_json::{Value, json};

/// The commit kind of `/write` (and of everything built on it).
pub const KIND_WRITE: &str = "write";

/// The fields a commit hash covers.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitPreimage<'a> {
    pub parent_hash: &'a str,
    pub input_sha256: &'a str,
    pub diff_sha256: &'a str,
    pub scope_key: &'a str,
    pub actor: &'a str,
    pub kind: &'a str,
    pub model_version: Option<&'a str>,
    pub prompt_version: Option<&'a str>,
}

impl CommitPreimage<'_> {
    /// The canonical object hashed into `commit_hash`.
    pub fn object(&self) -> Value {
        if self.kind == KIND_WRITE {
            json!({
                "parentHash": self.parent_hash,
                "inputSha": self.input_sha256,
                "diffSha": self.diff_sha256,
                "scope": self.scope_key,
                "actor": self.actor,
                "model_version": self.model_version,
                "prompt_version": self.prompt_version,
            })
        } else {
            json!({
                "parentHash": self.parent_hash,
                "inputSha": self.input_sha256,
                "diffSha": self.diff_sha256,
                "scope": self.scope_key,
                "actor": self.actor,
                "kind": self.kind,
            })
        }
    }

    pub fn commit_hash(&self) -> String {
        sha256_canonical(&self.object())
    }
}

/// The id a commit with `commit_hash` gets in `scope_key`.
pub fn commit_id(scope_key: &str, commit_hash: &str) -> String {
    stable_uuid(&format!("{scope_key}:commit:{commit_hash}"))
}

/// The current head of a scope's chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub id: String,
    pub commit_hash: String,
    pub seq: i64,
}

/// A commit ready to append.
pub struct NewCommit<'a> {
    pub scope_key: &'a str,
    pub kind: &'a str,
    pub actor: &'a str,
    pub input_sha256: &'a str,
    pub model_version: Option<&'a str>,
    pub prompt_version: Option<&'a str>,
    pub diff: &'a Value,
    pub request_sha256: &'a str,
    /// What the operation reported beyond its diff, replayed on retries.
    pub result_json: Option<&'a str>,
    pub created_at: &'a str,
}

/// An appended commit.
#[derive(Debug, Clone)]
pub struct Appended {
    pub id: String,
    pub commit_hash: String,
    pub seq: i64,
}

/// The scope's head, read inside the caller's write transaction.
pub fn head(db: &dyn Sql, scope_key: &str) -> Result<Option<Head>, ApiError> {
    Ok(db
        .query_one(
            "SELECT id, commit_hash, seq FROM memory_commits WHERE scope = ? ORDER BY seq DESC LIMIT 1",
            &[scope_key.into()],
        )?
        .map(|r| Head { id: r.string(0), commit_hash: r.string(1), seq: r.int(2) }))
}

/// Appends `c` after `parent` (the head read in the same write transaction).
pub fn append(db: &dyn Sql, parent: Option<&Head>, c: &NewCommit) -> Result<Appended, ApiError> {
    let diff_text = cairn_core::canonical_json::to_string(c.diff);
    let diff_sha = sha256_hex(&diff_text);
    let parent_hash = parent.map(|h| h.commit_hash.as_str()).unwrap_or("");
    let hash = CommitPreimage {
        parent_hash,
        input_sha256: c.input_sha256,
        diff_sha256: &diff_sha,
        scope_key: c.scope_key,
        actor: c.actor,
        kind: c.kind,
        model_version: c.model_version,
        prompt_version: c.prompt_version,
    }
    .commit_hash();
    let id = commit_id(c.scope_key, &hash);
    let seq = parent.map(|h| h.seq).unwrap_or(0) + 1;
    db.exec(
        "INSERT INTO memory_commits (id, scope, seq, parent_id, parent_hash, kind, input_sha256, diff_json, actor, \
         model_version, prompt_version, request_sha256, result_json, created_at, commit_hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            id.clone().into(),
            c.scope_key.into(),
            SqlValue::Integer(seq),
            parent.map(|h| h.id.clone()).into(),
            parent_hash.into(),
            c.kind.into(),
            c.input_sha256.into(),
            diff_text.into(),
            c.actor.into(),
            c.model_version.into(),
            c.prompt_version.into(),
            c.request_sha256.into(),
            c.result_json.into(),
            c.created_at.into(),
            hash.clone().into(),
        ],
    )?;
    Ok(Appended { id, commit_hash: hash, seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_hash_covers_versions_and_other_kinds_cover_kind() {
        let base = CommitPreimage {
            parent_hash: "",
            input_sha256: "a",
            diff_sha256: "b",
            scope_key: "default",
            actor: "system",
            kind: KIND_WRITE,
            model_version: None,
            prompt_version: None,
        };
        assert_eq!(
            cairn_core::canonical_json::to_string(&base.object()),
            r#"{"actor":"system","diffSha":"b","inputSha":"a","model_version":null,"parentHash":"","prompt_version":null,"scope":"default"}"#
        );
        let mut v = base.clone();
        v.model_version = Some("m1");
        assert_ne!(base.commit_hash(), v.commit_hash());
        let mut k = base.clone();
        k.kind = "rule_state_change";
        assert!(cairn_core::canonical_json::to_string(&k.object()).contains(r#""kind":"rule_state_change""#));
        assert_eq!(commit_id("default", "x"), commit_id("default", "x"));
        assert_ne!(commit_id("default", "x"), commit_id("other", "x"));
    }
}

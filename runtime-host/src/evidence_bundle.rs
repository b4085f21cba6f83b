//! Signed evidence bundles (issue 18, step 7): `cairn job evidence bundle`
//! writes a tenant's artifacts for a period — its own and the deployment's,
//! as the registry holds them — to a directory with `evidence_index.json`
//! (`files[{path, sha256, size_bytes, evidence_id?, kind?}]`, the reference's
//! §7.7 shape) and, given a key, `evidence_index.sig.json`
//! (`{algorithm: "HMAC-SHA256", signature_hex}` over the index's bytes).
//! `cairn job evidence verify-bundle DIR` checks every file against the
//! index, the index against its signature, and each artifact against the
//! sha256 the registry recorded for it.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub const INDEX: &str = "evidence_index.json";
pub const SIGNATURE: &str = "evidence_index.sig.json";
/// The registry's facts of every artifact and its verdict at export time.
pub const REGISTRY: &str = "registry.json";
/// The environment variable holding the signing key unless told otherwise.
pub const KEY_ENV: &str = "CAIRN_EVIDENCE_SIGNING_KEY";

/// A file name for an artifact: `artifacts/<kind>/<evidence_id>.<ext>`.
fn artifact_path(a: &Value) -> String {
    let ext = match a["content_type"].as_str().unwrap_or("") {
        t if t.starts_with("application/json") => "json",
        t if t.starts_with("text/html") => "html",
        t if t.starts_with("text/markdown") => "md",
        _ => "txt",
    };
    // Kinds and ids are registry-validated ([a-z0-9_.-], uuids): safe path parts.
    format!("artifacts/{}/{}.{ext}", a["kind"].as_str().unwrap_or("unknown"), a["evidence_id"].as_str().unwrap_or(""))
}

fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The signature file's JSON for `index` bytes under `key`.
fn signature(index: &[u8], key: &[u8]) -> Value {
    json!({"algorithm": "HMAC-SHA256", "signed": INDEX, "signature_hex": cairn_core::auth::hmac_sha256_hex(key, index)})
}

/// A bundle in memory: every file's path and text, the index last.
pub struct Bundle {
    pub index: Value,
    /// `evidence_index.json`'s exact text (what the signature covers).
    pub index_text: String,
    /// `evidence_index.sig.json`'s text, when signed.
    pub signature_text: Option<String>,
    /// The artifacts and registry.json, by path.
    pub files: Vec<(String, String)>,
}

impl Bundle {
    /// The body POSTed to a publish target: the index's exact text, its
    /// signature and every file, `{kind, index_sha256, index_text,
    /// signature, files: {path: text}}`.
    pub fn upload(&self) -> Value {
        let files: serde_json::Map<String, Value> = self.files.iter().map(|(p, t)| (p.clone(), json!(t))).collect();
        json!({
            "kind": "cairn_evidence_bundle_upload",
            "index_sha256": cairn_core::digest::sha256_hex(&self.index_text),
            "index_text": self.index_text,
            "signature": self.signature_text.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok()),
            "files": files,
        })
    }
}

/// The bundle of `export` (the `evidence-export` verb's answer), signed
/// when `key` is given.
pub fn build(export: &Value, key: Option<&[u8]>) -> Result<Bundle> {
    let mut files = Vec::new();
    let mut listed = Vec::new();
    let mut facts = Vec::new();
    for a in export["artifacts"].as_array().into_iter().flatten() {
        let content = a["content"].as_str().unwrap_or("").to_string();
        let path = artifact_path(a);
        listed.push(json!({
            "path": path, "sha256": cairn_core::digest::sha256_hex(&content), "size_bytes": content.len(),
            "evidence_id": a["evidence_id"], "kind": a["kind"],
        }));
        files.push((path, content));
        let mut f = a.clone();
        if let Some(o) = f.as_object_mut() {
            o.remove("content");
        }
        facts.push(f);
    }
    let registry = json!({"artifacts": facts, "verify": export["registry"]});
    let registry_text = format!("{}\n", serde_json::to_string_pretty(&registry)?);
    listed.push(json!({"path": REGISTRY, "sha256": cairn_core::digest::sha256_hex(&registry_text),
                       "size_bytes": registry_text.len()}));
    files.push((REGISTRY.to_string(), registry_text));
    let index = json!({
        "kind": "cairn_evidence_bundle",
        "tenant_id": export["tenant_id"],
        "period": {"from": export["from"], "to": export["to"]},
        "exported_at": export["exported_at"],
        "registry_ok": export["registry"]["ok"],
        "audit_head": export["registry"]["audit_chain"]["head"],
        "files": listed,
        "signed": key.is_some(),
    });
    let index_text = format!("{}\n", serde_json::to_string_pretty(&index)?);
    let signature_text = match key {
        Some(k) => Some(format!("{}\n", serde_json::to_string_pretty(&signature(index_text.as_bytes(), k))?)),
        None => None,
    };
    Ok(Bundle { index, index_text, signature_text, files })
}

/// Writes `bundle` to `dir` (which must not hold one already), the index
/// last: a directory with an index holds a whole bundle.
pub fn write(dir: &Path, bundle: &Bundle) -> Result<()> {
    if dir.join(INDEX).exists() {
        bail!("{} already holds a bundle ({INDEX}); choose an empty directory", dir.display());
    }
    for (path, text) in &bundle.files {
        write_whole(&dir.join(path), text.as_bytes())?;
    }
    if let Some(sig) = &bundle.signature_text {
        write_whole(&dir.join(SIGNATURE), sig.as_bytes())?;
    }
    write_whole(&dir.join(INDEX), bundle.index_text.as_bytes())
}

/// What [`verify`] found: `ok`, and each problem.
pub fn verify(dir: &Path, key: Option<&[u8]>) -> Result<Value> {
    let index_path = dir.join(INDEX);
    let index_bytes = std::fs::read(&index_path).with_context(|| format!("reading {}", index_path.display()))?;
    let index: Value =
        serde_json::from_slice(&index_bytes).with_context(|| format!("parsing {}", index_path.display()))?;
    let mut problems: Vec<Value> = Vec::new();
    let sig_path = dir.join(SIGNATURE);
    let signature_state = match (sig_path.exists(), key) {
        (false, _) if index["signed"] == true => {
            problems.push(json!({"path": SIGNATURE, "problem": "missing: the index says the bundle was signed"}));
            "missing"
        }
        (false, _) => "unsigned",
        (true, None) => {
            problems.push(json!({"path": SIGNATURE, "problem": format!("signed, but no key to check it ({KEY_ENV})")}));
            "unchecked"
        }
        (true, Some(k)) => {
            let sig: Value =
                serde_json::from_slice(&std::fs::read(&sig_path)?).context("parsing the signature file")?;
            let want = signature(&index_bytes, k)["signature_hex"].as_str().unwrap_or("").to_string();
            let got = sig["signature_hex"].as_str().unwrap_or("");
            if sig["algorithm"] == "HMAC-SHA256"
                && cairn_core::admin_token::constant_time_eq(got.as_bytes(), want.as_bytes())
            {
                "valid"
            } else {
                problems.push(json!({"path": SIGNATURE, "problem": "the signature does not match the index (changed index or another key)"}));
                "invalid"
            }
        }
    };
    let registry: Value =
        std::fs::read(dir.join(REGISTRY)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
    let registered = |id: &Value| {
        registry["artifacts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["evidence_id"] == *id)
            .map(|a| a["sha256"].clone())
    };
    let mut checked = 0;
    for f in index["files"].as_array().into_iter().flatten() {
        let rel = f["path"].as_str().unwrap_or("");
        // Paths stay inside the bundle.
        if rel.is_empty() || rel.starts_with('/') || rel.split('/').any(|p| p == ".." || p.is_empty()) {
            problems.push(json!({"path": rel, "problem": "not a path inside the bundle"}));
            continue;
        }
        checked += 1;
        let Ok(bytes) = std::fs::read(dir.join(rel)) else {
            problems.push(json!({"path": rel, "problem": "missing"}));
            continue;
        };
        let sha = cairn_core::digest::sha256_hex(&bytes);
        if sha != f["sha256"].as_str().unwrap_or("")
            || bytes.len() as u64 != f["size_bytes"].as_u64().unwrap_or(u64::MAX)
        {
            problems.push(json!({"path": rel, "problem": "content differs from the index (sha256 or size)"}));
        } else if !f["evidence_id"].is_null() && registered(&f["evidence_id"]) != Some(json!(sha)) {
            problems.push(json!({"path": rel, "problem": "differs from the sha256 the registry recorded"}));
        }
    }
    if index["registry_ok"] != true {
        problems.push(json!({"path": REGISTRY, "problem": "the registry did not verify when the bundle was exported"}));
    }
    Ok(json!({
        "ok": problems.is_empty(),
        "dir": dir.display().to_string(),
        "tenant_id": index["tenant_id"],
        "files_checked": checked,
        "signature": signature_state,
        "problems": problems,
    }))
}

/// The signing key from `env_name`'s variable (`None` when unset or empty).
pub fn key_from_env(env_name: &str) -> Option<Vec<u8>> {
    std::env::var(env_name).ok().filter(|k| !k.is_empty()).map(String::into_bytes)
}

/// The default output directory: `artifacts/evidence/<tenant>_<unix ms>`.
pub fn default_dir(tenant: &str) -> PathBuf {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    PathBuf::from("artifacts/evidence").join(format!("{tenant}_{ms}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export() -> Value {
        json!({
            "tenant_id": "acme", "from": null, "to": null, "exported_at": "2027-01-01T00:00:00.000Z",
            "artifacts": [
                {"evidence_id": "e1", "kind": "weekly_report", "content_type": "application/json", "sha256": cairn_core::digest::sha256_hex("{\"ok\":true}"), "content": "{\"ok\":true}"},
                {"evidence_id": "e2", "kind": "replay_drill", "content_type": "text/plain", "sha256": cairn_core::digest::sha256_hex("passed"), "content": "passed"},
            ],
            "registry": {"ok": true, "audit_chain": {"ok": true, "head": "abc"}},
        })
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cairn-bundle-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_signed_bundle_verifies_and_every_kind_of_change_is_named() {
        let dir = tmp("signed");
        let bundle = build(&export(), Some(b"k1")).unwrap();
        write(&dir, &bundle).unwrap();
        let index = &bundle.index;
        assert_eq!(index["files"].as_array().unwrap().len(), 3);
        assert_eq!(index["files"][0]["path"], "artifacts/weekly_report/e1.json");
        let up = bundle.upload();
        assert_eq!(up["index_sha256"], cairn_core::digest::sha256_hex(std::fs::read(dir.join(INDEX)).unwrap()));
        assert_eq!(up["files"]["artifacts/replay_drill/e2.txt"], "passed");
        let v = verify(&dir, Some(b"k1")).unwrap();
        assert_eq!(
            (v["ok"].as_bool(), v["signature"].as_str(), v["files_checked"].as_i64()),
            (Some(true), Some("valid"), Some(3))
        );
        // Another key, no key.
        assert_eq!(verify(&dir, Some(b"k2")).unwrap()["signature"], "invalid");
        assert_eq!(verify(&dir, None).unwrap()["ok"], false);
        // A changed artifact.
        std::fs::write(dir.join("artifacts/replay_drill/e2.txt"), "failed").unwrap();
        let v = verify(&dir, Some(b"k1")).unwrap();
        assert_eq!(v["problems"][0]["path"], "artifacts/replay_drill/e2.txt");
        // A changed index no longer matches its signature.
        let text = std::fs::read_to_string(dir.join(INDEX)).unwrap().replace("acme", "other");
        std::fs::write(dir.join(INDEX), text).unwrap();
        assert_eq!(verify(&dir, Some(b"k1")).unwrap()["signature"], "invalid");
        // A second bundle into the same directory is refused.
        assert!(write(&dir, &build(&export(), None).unwrap()).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unsigned_bundle_checks_its_files_and_the_registrys_hashes() {
        let dir = tmp("unsigned");
        let mut e = export();
        // The registry recorded another hash than the bytes exported.
        e["artifacts"][1]["sha256"] = json!("0".repeat(64));
        write(&dir, &build(&e, None).unwrap()).unwrap();
        let v = verify(&dir, None).unwrap();
        assert_eq!(v["signature"], "unsigned");
        assert_eq!(
            v["problems"],
            json!([{"path": "artifacts/replay_drill/e2.txt", "problem": "differs from the sha256 the registry recorded"}])
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

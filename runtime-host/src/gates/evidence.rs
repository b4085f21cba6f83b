//! `cairn release evidence --out DIR` and `cairn release verify DIR`: one
//! rollout's release evidence bundle (seeds: Enterprise needs one for every
//! customer-impacting rollout).
//!
//! The bundle holds the preflight and core-gate summaries, the component
//! `.wasm` sha256s, the binary's and manifest's versions and hashes, the
//! tiers file's hash, the server's schema versions and the gate scope's
//! chain heads, a human-readable `EVIDENCE.md`, the audit receipt, and
//! `MANIFEST.sha256` (`sha256sum` format) over every other file.
//!
//! The evidence files (all but the receipt and the manifest) are digested
//! (`bundle_digest`: the sha256 of their manifest lines) and the digest is
//! recorded as a control-plane audit event (`POST
//! /v1/admin/control/releases`), so the hash-chained audit log references
//! the bundle; `audit_receipt.json` keeps the event's id and hash. The
//! manifest is also registered in the evidence registry (kind
//! `release_bundle`; the receipt's `evidence_id`).
//! `verify` re-hashes every file, refuses missing or extra ones, recomputes
//! the digest against the receipt and, given `--base-url`, finds the event.

use super::Probe;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum ReleaseCmd {
    /// Collect one rollout's evidence into a directory and record it in the audit log.
    Evidence(EvidenceArgs),
    /// Re-check a bundle: every file's hash, the digest, the audit event.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct EvidenceArgs {
    /// The bundle's directory (created; must be empty or absent).
    #[arg(long)]
    out: PathBuf,
    /// The server the rollout targets (schema versions, the audit event).
    #[arg(long)]
    base_url: String,
    #[arg(long, env = "CAIRN_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// The preflight summary (default: the newest under --artifacts-dir).
    #[arg(long)]
    preflight: Option<PathBuf>,
    /// The core gate summary (default: the newest under --artifacts-dir).
    #[arg(long)]
    core_gate: Option<PathBuf>,
    #[arg(long, default_value = "artifacts")]
    artifacts_dir: PathBuf,
    /// The app manifest whose components ship.
    #[arg(long, env = "CAIRN_MANIFEST", default_value = "spin.toml")]
    manifest: PathBuf,
    /// The tiers file (default: config/tiers.yaml beside the manifest).
    #[arg(long, env = "CAIRN_TIERS")]
    tiers: Option<PathBuf>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The bundle's directory.
    dir: PathBuf,
    /// Also find the bundle's audit event on this server (needs the admin token).
    #[arg(long)]
    base_url: Option<String>,
    #[arg(long, env = "CAIRN_ADMIN_TOKEN")]
    admin_token: Option<String>,
}

const MANIFEST: &str = "MANIFEST.sha256";
const RECEIPT: &str = "audit_receipt.json";

fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok((hex::encode(Sha256::digest(&bytes)), bytes.len() as u64))
}

/// `<sha256>  <name>` lines, sorted by name.
fn manifest_lines(dir: &Path, names: &[String]) -> Result<String> {
    let mut names = names.to_vec();
    names.sort();
    let mut out = String::new();
    for n in &names {
        out.push_str(&format!("{}  {n}\n", sha256_file(&dir.join(n))?.0));
    }
    Ok(out)
}

/// The newest `<artifacts>/<gate>/<run_id>/summary.json` (run ids sort by time).
fn newest_summary(artifacts: &Path, gate: &str) -> Result<PathBuf> {
    let dir = artifacts.join(gate);
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("no {gate} runs under {} (run the gate first, or pass its summary)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path().join("summary.json")))
        .filter(|p| p.exists())
        .collect();
    runs.sort();
    runs.pop().with_context(|| format!("no {gate} summary under {}", dir.display()))
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn write(dir: &Path, name: &str, v: &Value) -> Result<String> {
    std::fs::write(dir.join(name), serde_json::to_string_pretty(v)? + "\n")?;
    Ok(name.to_string())
}

pub async fn evidence(a: EvidenceArgs) -> Result<()> {
    if a.out.exists() && std::fs::read_dir(&a.out)?.next().is_some() {
        bail!("{} is not empty: a bundle goes into a new directory", a.out.display());
    }
    let Some(token) = a.admin_token.clone().filter(|t| !t.is_empty()) else {
        bail!("recording the bundle in the audit log needs the admin token (--admin-token or CAIRN_ADMIN_TOKEN)");
    };
    let preflight_path = match &a.preflight {
        Some(p) => p.clone(),
        None => newest_summary(&a.artifacts_dir, "preflight")?,
    };
    let core_path = match &a.core_gate {
        Some(p) => p.clone(),
        None => newest_summary(&a.artifacts_dir, "core_gate")?,
    };
    let preflight = read_json(&preflight_path)?;
    let core = read_json(&core_path)?;
    for (what, s) in [("preflight", &preflight), ("core gate", &core)] {
        if s["ok"] != true {
            bail!("the {what} summary did not pass (fail_reasons {}): a bundle records passed gates", s["fail_reasons"]);
        }
    }
    let probe = Probe::new(&a.base_url, Some(token));
    let health = probe.get("/health", false).await?;
    if health.status != 200 {
        bail!("{}/health answered {}", a.base_url, health.status);
    }
    let manifest = crate::app_manifest::AppManifest::load(&a.manifest)?;
    let manifest_toml: toml::Value = toml::from_str(&std::fs::read_to_string(&a.manifest)?)?;
    let tiers_path = a.tiers.clone().unwrap_or_else(|| crate::tiers_beside(&a.manifest));

    std::fs::create_dir_all(&a.out)?;
    let dir = a.out.as_path();
    let mut files = Vec::new();
    files.push(write(dir, "preflight_summary.json", &preflight)?);
    files.push(write(dir, "core_gate_summary.json", &core)?);

    let mut components = BTreeMap::new();
    for (id, c) in &manifest.components {
        let (sha, size) = sha256_file(&c.source)?;
        components.insert(id.clone(), json!({"source": c.source, "sha256": sha, "size_bytes": size}));
        for d in &c.dependencies {
            let (sha, size) = sha256_file(&d.source)?;
            components.insert(format!("{id}/{}", d.name), json!({"source": d.source, "sha256": sha, "size_bytes": size}));
        }
    }
    files.push(write(dir, "components.json", &json!(components))?);
    let exe = std::env::current_exe()?;
    let (exe_sha, exe_size) = sha256_file(&exe)?;
    let (manifest_sha, _) = sha256_file(&a.manifest)?;
    let (tiers_sha, _) = sha256_file(&tiers_path)?;
    let versions = json!({
        "cairn": {"version": env!("CARGO_PKG_VERSION"), "binary": exe, "sha256": exe_sha, "size_bytes": exe_size},
        "manifest": {"path": a.manifest, "sha256": manifest_sha, "application": manifest_toml.get("application"),
                     "spin_manifest_version": manifest_toml.get("spin_manifest_version")},
        "tiers": {"path": tiers_path, "sha256": tiers_sha},
        "schema_versions": health.body["components"],
        "database_target_hash": health.body["database_target_hash"],
        "base_url": a.base_url,
    });
    files.push(write(dir, "versions.json", &versions)?);
    let heads = json!({"tenant_id": core["target"]["tenant_id"], "scope": core["target"]["scope"],
                       "chain_heads": core["chain_heads"]});
    files.push(write(dir, "chain_heads.json", &heads)?);
    let md = evidence_md(&preflight, &core, &components, &versions);
    std::fs::write(dir.join("EVIDENCE.md"), md)?;
    files.push("EVIDENCE.md".into());

    // The digest of the evidence, recorded in the audit chain.
    let digest = hex::encode(Sha256::digest(manifest_lines(dir, &files)?.as_bytes()));
    let recorded = probe
        .post(
            "/v1/admin/control/releases",
            &json!({"bundle_digest": digest, "run_id": core["run_id"],
                    "summary": {"preflight_run_id": preflight["run_id"], "core_gate_run_id": core["run_id"],
                                "database_target_hash": health.body["database_target_hash"]}}),
            true,
        )
        .await?;
    if recorded.status != 200 {
        bail!("recording the bundle failed: {} {}", recorded.status, recorded.body);
    }
    // The bundle's manifest as an artifact of the evidence registry too
    // (kind release_bundle, deployment-wide), so compliance reports and
    // evidence bundles find the rollout (docs/governance.md).
    let manifest = manifest_lines(dir, &files)?;
    let registered = probe
        .post(
            "/v1/admin/control/evidence",
            &json!({"kind": "release_bundle", "producer": "cairn release evidence",
                    "content": json!({"bundle_digest": digest, "run_id": core["run_id"], "manifest": manifest,
                                      "release_event_id": recorded.body["event_id"]}).to_string()}),
            true,
        )
        .await?;
    if registered.status != 200 {
        bail!("registering the bundle as evidence failed: {} {}", registered.status, registered.body);
    }
    let receipt = json!({"bundle_digest": digest, "files": files, "base_url": a.base_url,
                         "event_id": recorded.body["event_id"], "event_hash": recorded.body["event_hash"],
                         "recorded_at": recorded.body["created_at"],
                         "evidence_id": registered.body["evidence"]["evidence_id"]});
    write(dir, RECEIPT, &receipt)?;
    let mut all = files.clone();
    all.push(RECEIPT.into());
    std::fs::write(dir.join(MANIFEST), manifest_lines(dir, &all)?)?;
    println!(
        "release evidence: {} ({} files, bundle digest {digest}, audit event {})",
        dir.display(),
        all.len() + 1,
        recorded.body["event_id"].as_str().unwrap_or("")
    );
    Ok(())
}

fn evidence_md(preflight: &Value, core: &Value, components: &BTreeMap<String, Value>, versions: &Value) -> String {
    let mut md = String::from("# Release evidence\n\n");
    md.push_str(&format!(
        "- cairn {} (binary sha256 `{}`)\n- manifest `{}` sha256 `{}`\n- tiers sha256 `{}`\n- target {} (database `{}`)\n\n",
        versions["cairn"]["version"].as_str().unwrap_or(""),
        versions["cairn"]["sha256"].as_str().unwrap_or(""),
        versions["manifest"]["path"].as_str().unwrap_or(""),
        versions["manifest"]["sha256"].as_str().unwrap_or(""),
        versions["tiers"]["sha256"].as_str().unwrap_or(""),
        versions["base_url"].as_str().unwrap_or(""),
        versions["database_target_hash"].as_str().unwrap_or(""),
    ));
    for (title, s) in [("Preflight", preflight), ("Core gate", core)] {
        md.push_str(&format!("## {title}: {} (run {})\n\n", if s["ok"] == true { "passed" } else { "FAILED" }, s["run_id"].as_str().unwrap_or("")));
        md.push_str("| check | severity | result |\n| --- | --- | --- |\n");
        for c in s["checks"].as_array().into_iter().flatten() {
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                c["name"].as_str().unwrap_or(""),
                c["severity"].as_str().unwrap_or(""),
                if c["pass"] == true { "pass" } else { "FAIL" }
            ));
        }
        md.push('\n');
    }
    if let Some(p) = core["perf"].as_object() {
        md.push_str(&format!(
            "Perf: recall_text p95 {} ms, write p95 {} ms, error rate {}.\n\n",
            p["recall_text_p95_ms"], p["write_p95_ms"], p["error_rate"]
        ));
    }
    md.push_str("## Components\n\n| component | sha256 | bytes |\n| --- | --- | --- |\n");
    for (id, c) in components {
        md.push_str(&format!("| {id} | `{}` | {} |\n", c["sha256"].as_str().unwrap_or(""), c["size_bytes"]));
    }
    md.push_str(&format!("\nSchema versions: {}\n\nVerify with `cairn release verify <this directory>`.\n", versions["schema_versions"]));
    md
}

pub async fn verify(a: VerifyArgs) -> Result<()> {
    let dir = a.dir.as_path();
    let problems = check_bundle(dir)?;
    let receipt = read_json(&dir.join(RECEIPT)).unwrap_or(Value::Null);
    let mut problems = problems;
    if let Some(base) = &a.base_url
        && problems.is_empty()
    {
        let probe = Probe::new(base, a.admin_token.clone());
        let events = probe.get("/v1/admin/control/audit-events?action=release.evidence&limit=500", true).await?;
        let found = events.body["events"].as_array().into_iter().flatten().any(|e| {
            e["event_id"] == receipt["event_id"] && e["resource_id"] == receipt["bundle_digest"]
        });
        if !found {
            problems.push(format!("no release.evidence audit event {} on {base}", receipt["event_id"]));
        }
    }
    if problems.is_empty() {
        println!("release verify: ok ({}, bundle digest {})", dir.display(), receipt["bundle_digest"].as_str().unwrap_or(""));
        Ok(())
    } else {
        for p in &problems {
            println!("FAIL {p}");
        }
        println!("release verify: FAILED ({} problems)", problems.len());
        std::process::exit(2);
    }
}

/// What is wrong with a bundle (empty: nothing).
pub fn check_bundle(dir: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).with_context(|| format!("no {MANIFEST} in {}", dir.display()))?;
    let mut problems = Vec::new();
    let mut listed = BTreeMap::new();
    for line in text.lines() {
        match line.split_once("  ") {
            Some((sha, name)) if sha.len() == 64 && !name.contains('/') => {
                listed.insert(name.to_string(), sha.to_string());
            }
            _ => problems.push(format!("{MANIFEST}: malformed line {line:?}")),
        }
    }
    for (name, sha) in &listed {
        match sha256_file(&dir.join(name)) {
            Ok((actual, _)) if &actual == sha => {}
            Ok((actual, _)) => problems.push(format!("{name}: sha256 {actual}, the manifest says {sha}")),
            Err(_) => problems.push(format!("{name}: listed but missing")),
        }
    }
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name != MANIFEST && !listed.contains_key(&name) {
            problems.push(format!("{name}: in the bundle but not in {MANIFEST}"));
        }
    }
    match read_json(&dir.join(RECEIPT)) {
        Err(e) => problems.push(format!("{RECEIPT}: {e:#}")),
        Ok(receipt) => {
            let files: Vec<String> =
                receipt["files"].as_array().into_iter().flatten().filter_map(|f| f.as_str().map(str::to_string)).collect();
            match manifest_lines(dir, &files) {
                Ok(lines) => {
                    let digest = hex::encode(Sha256::digest(lines.as_bytes()));
                    if receipt["bundle_digest"] != digest.as_str() {
                        problems.push(format!("bundle digest {digest} differs from the recorded {}", receipt["bundle_digest"]));
                    }
                }
                Err(e) => problems.push(format!("{RECEIPT} lists a file that is gone: {e:#}")),
            }
        }
    }
    Ok(problems)
}

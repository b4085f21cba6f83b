//! deploy/spinkube against its schemas (no cluster here): the Kubernetes
//! kinds against kubernetes-validate's published schemas, strict; the
//! SpinApp against the CRD's transcription in deploy/spinkube/schema; every
//! variable a spin.toml variable and every secret/config reference one the
//! manifests define (tools/validate-spinkube.py). Broken copies must fail,
//! each for its reason.

use cairn_e2e::{TempDir, pip_venv, repo_root};
use std::path::Path;
use std::process::Command;

fn validate(python: &Path, dir: &Path) -> (bool, String) {
    let out = Command::new(python)
        .arg(repo_root().join("tools/validate-spinkube.py"))
        .arg(dir)
        .output()
        .expect("run validate-spinkube.py");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn the_spinkube_manifests_match_their_schemas_and_the_app() {
    let python = pip_venv("CAIRN_K8S_VENV", &["kubernetes-validate==1.37.0"], "import kubernetes_validate");
    let dir = repo_root().join("deploy/spinkube");
    let (ok, text) = validate(&python, &dir);
    assert!(ok, "{text}");
    for kind in ["v1/Namespace", "v1/ConfigMap", "v1/Secret", "batch/v1/CronJob", "core.spinkube.dev/v1alpha1/SpinApp"]
    {
        assert!(text.lines().any(|l| l.starts_with("ok") && l.ends_with(kind)), "{kind} not validated:\n{text}");
    }
    assert!(text.contains("6 documents, 0 failing"), "{text}");

    // Each kind of mistake is caught, and named.
    let broken = TempDir::new("spinkube");
    copy_dir(&dir, broken.path());
    let p = |f: &str| broken.path().join(f);
    edit(&p("spinapp.yaml"), "replicas: 3", "replicas: \"three\"");
    edit(&p("spinapp.yaml"), "  executor: containerd-shim-spin", "  executer: containerd-shim-spin");
    edit(&p("spinapp.yaml"), "name: memory_auth_mode", "name: memory_auth_mod");
    edit(&p("spinapp.yaml"), "key: llm-token", "key: llm-tokn");
    edit(&p("cronjob-derive-tick.yaml"), "  schedule:", "  schedul:");
    let (ok, text) = validate(&python, broken.path());
    assert!(!ok, "{text}");
    for says in [
        "spec.replicas: 'three' is not of type 'integer'",
        "'executer' was unexpected",
        "variable 'memory_auth_mod' is not declared in spin.toml",
        "secretKeyRef cairn-secrets/llm-tokn",
        "CronJob: spec: 'schedule' is a required property",
    ] {
        assert!(text.contains(says), "expected {says:?} in:\n{text}");
    }
}

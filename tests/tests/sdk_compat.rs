//! The published Python client `aionis-sdk` runs unchanged against
//! `cairn up`. The test installs the pinned version into a venv (cached
//! under ~/.cache/cairn) the first time, starts the server and runs
//! tests/python/sdk_compat.py against it.

use cairn_e2e::{Options, Server, pip_venv, repo_root};
use std::path::PathBuf;
use std::process::Command;

/// The client version this test pins (0.2.x, the newest published).
const SDK: &str = "aionis-sdk==0.2.21";

fn venv_python() -> PathBuf {
    pip_venv("CAIRN_SDK_VENV", &[SDK], "import aionis_sdk")
}

#[test]
fn aionis_python_sdk_works_unchanged() {
    let python = venv_python();
    // The embedder `make up` serves with (all-MiniLM-L6-v2 when fetched).
    let s = Server::start_with(Options {
        admin_token: Some("sdk-admin".into()),
        extra_args: vec!["--embedder".into(), "auto".into()],
        ..Default::default()
    });
    let out = Command::new(python)
        .arg(repo_root().join("tests/python/sdk_compat.py"))
        .args(["--base-url", &s.base, "--admin-token", "sdk-admin"])
        .output()
        .expect("run sdk_compat.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "SDK checks failed:\n{stdout}\n{stderr}\nserver log:\n{}", s.log());
    assert!(stdout.contains("all SDK checks passed"), "{stdout}");
}

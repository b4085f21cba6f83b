//! Turns the OpenAPI document (`docs/openapi.yaml`, written by hand and
//! checked against the route tables by `openapi`'s tests) into the compact
//! JSON the gateway serves at `/openapi.json`.

fn main() {
    // Read at run time, not `env!`: the build directory is shared by every
    // checkout (~/.cache/cairn/target), and a build script compiled in one
    // may run for another, which must read its own document.
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for build scripts");
    let src = std::path::Path::new(&dir).join("../../docs/openapi.yaml");
    println!("cargo:rerun-if-changed={}", src.display());
    let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    let doc: serde_json::Value =
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", src.display()));
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("openapi.json");
    std::fs::write(&out, serde_json::to_string(&doc).expect("JSON")).expect("write openapi.json");
}

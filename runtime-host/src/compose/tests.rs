//! The composer against synthetic components (wit-component's dummy core
//! modules: every function traps, the types are real) built from the
//! repository's WIT and from the layout before it, through the manifest
//! parser as `cairn up` runs it.

use super::*;
use crate::app_manifest::{AppManifest, Inherit};
use std::path::PathBuf;
use wit_parser::{ManglingAndAbi, Resolve};

/// A component whose core module is a dummy for `world` of `resolve`.
fn dummy(resolve: &Resolve, world: &str) -> Vec<u8> {
    let world =
        resolve.select_world(&resolve.packages.iter().map(|(id, _)| id).collect::<Vec<_>>(), Some(world)).unwrap();
    let mut module = wit_component::dummy_module(resolve, world, ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(&mut module, resolve, world, wit_component::StringEncoding::UTF8).unwrap();
    wit_component::ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap()
}

fn repo_wit() -> Resolve {
    let mut resolve = Resolve::default();
    resolve.push_dir(crate::repo_root().join("wit")).unwrap();
    resolve
}

/// A fresh directory for one test's component files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cairn-compose-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn imports_of(bytes: &[u8]) -> Vec<String> {
    let mut graph = CompositionGraph::new();
    let pkg = Package::from_bytes("composed", None, bytes.to_vec(), graph.types_mut()).unwrap();
    graph.types()[pkg.ty()].imports.keys().cloned().collect()
}

fn exports_of(bytes: &[u8]) -> Vec<String> {
    let mut graph = CompositionGraph::new();
    let pkg = Package::from_bytes("composed", None, bytes.to_vec(), graph.types_mut()).unwrap();
    graph.types()[pkg.ty()].exports.keys().cloned().collect()
}

/// The WIT before issue 12: three interfaces of one package `cairn:kernel`,
/// each exported by its own component.
const ONE_PACKAGE_WIT: &str = r#"
package cairn:kernel@0.1.0;
interface types { record error { code: string } }
interface memory { use types.{error}; write: func(request: string) -> result<string, error>; }
interface policy { use types.{error}; evaluate: func(request: string) -> result<string, error>; }
interface control { use types.{error}; admin: func(request: string) -> result<string, error>; }
world kernel { export memory; }
world policy-engine { export policy; }
world control-plane { export control; }
world gateway { import memory; import policy; import control; export run: func(); }
"#;

/// The gateway's dependency table before issue 12, as the manifest had it.
const ONE_PACKAGE_MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "old"
[[trigger.http]]
route = "/..."
component = "gateway"
[component.gateway]
source = "gateway.wasm"
dependencies_inherit_configuration = true
[component.gateway.dependencies]
"cairn:kernel/memory@0.1.0" = { path = "kernel.wasm" }
"cairn:kernel/policy@0.1.0" = { path = "policy.wasm" }
"cairn:kernel/control@0.1.0" = { path = "control.wasm" }
"#;

#[test]
fn three_dependencies_of_one_package_are_refused_as_spin_refuses_them() {
    let mut resolve = Resolve::default();
    resolve.push_str("old.wit", ONE_PACKAGE_WIT).unwrap();
    let dir = scratch("one-package");
    for (file, world) in
        [("gateway", "gateway"), ("kernel", "kernel"), ("policy", "policy-engine"), ("control", "control-plane")]
    {
        std::fs::write(dir.join(format!("{file}.wasm")), dummy(&resolve, world)).unwrap();
    }
    let manifest = AppManifest::parse(ONE_PACKAGE_MANIFEST, &dir).expect("the manifest itself is valid, as for Spin");
    let err = compose(&manifest.components["gateway"]).expect_err("Spin cannot compose this");
    let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
    assert_eq!(
        chain,
        [
            "failed to resolve dependencies for component \"gateway\"",
            "an error occurred when preparing dependencies",
            "package `cairn:kernel` has already been registered in the graph",
        ],
        "Spin 4.0's error chain for the same manifest"
    );
}

/// Writes dummies of the repository's gateway and library worlds and
/// returns the shipped manifest, its gateway's sources pointed at them.
fn shipped_layout(name: &str) -> (PathBuf, crate::app_manifest::ComponentDecl) {
    let resolve = repo_wit();
    let dir = scratch(name);
    let manifest = AppManifest::load(&crate::repo_root().join("spin.toml")).unwrap();
    let mut gateway = manifest.components["gateway"].clone();
    gateway.source = dir.join("gateway.wasm");
    std::fs::write(&gateway.source, dummy(&resolve, "cairn:gateway/gateway-imports")).unwrap();
    for dep in &mut gateway.dependencies {
        let world = match dep.name.registration_name() {
            "cairn:memory" => "cairn:memory/kernel",
            "cairn:policy" => "cairn:policy/policy-engine",
            "cairn:control" => "cairn:control/control-plane",
            other => panic!("unexpected dependency {other}"),
        };
        dep.source = dir.join(format!("{}.wasm", world.replace([':', '/'], "-")));
        std::fs::write(&dep.source, dummy(&resolve, world)).unwrap();
    }
    (dir, gateway)
}

#[test]
fn the_shipped_layout_composes() {
    let (_dir, gateway) = shipped_layout("shipped");
    let composed = compose(&gateway).expect("one package per dependency composes");
    let imports = imports_of(&composed);
    for plugged in ["cairn:memory/memory@0.1.0", "cairn:policy/policy@0.1.0", "cairn:control/control@0.1.0"] {
        assert!(!imports.contains(&plugged.to_string()), "{plugged} is satisfied inside: {imports:?}");
    }
    // The libraries' own host imports pass through to the host.
    for host in ["spin:sqlite/sqlite@3.0.0", "fermyon:spin/variables@2.0.0", "fermyon:spin/llm@2.0.0"] {
        assert!(imports.contains(&host.to_string()), "{host} missing from {imports:?}");
    }
}

#[test]
fn every_dependency_name_form_composes() {
    let (_dir, gateway) = shipped_layout("names");
    for memory_name in ["cairn:memory", "cairn:memory@0.1.0", "cairn:memory/memory", "cairn:memory/memory@0.1.0"] {
        let mut g = gateway.clone();
        g.dependencies[0].name = memory_name.parse().unwrap();
        compose(&g).unwrap_or_else(|e| panic!("{memory_name}: {e:#}"));
    }
    let mut g = gateway.clone();
    g.dependencies[0].name = "cairn:memory/memory@0.2.0".parse().unwrap();
    let err = format!("{:#}", compose(&g).unwrap_err());
    assert!(
        err.contains("dependency 'cairn:memory/memory@0.2.0' doesn't match any imports of component 'gateway'"),
        "{err}"
    );
    let mut g = gateway.clone();
    g.dependencies[0].export = Some("cairn:memory/nope@0.1.0".into());
    let err = format!("{:#}", compose(&g).unwrap_err());
    assert!(
        err.contains("doesn't export 'cairn:memory/nope@0.1.0' to satisfy import 'cairn:memory/memory@0.1.0'"),
        "{err}"
    );
    // The policy component does not export the memory interface.
    let mut g = gateway.clone();
    g.dependencies[0].source = g.dependencies[1].source.clone();
    let err = format!("{:#}", compose(&g).unwrap_err());
    assert!(err.contains("doesn't export 'cairn:memory/memory@0.1.0'"), "{err}");
}

#[test]
fn plain_names_and_subtypes() {
    let mut resolve = Resolve::default();
    resolve
        .push_str(
            "plain.wit",
            r#"
package test:plain;
world main { import greeter: interface { hello: func(name: string) -> string; } export run: func(); }
world good { export greeter: interface { hello: func(name: string) -> string; bye: func(); } }
world bad { export greeter: interface { hello: func(name: u32) -> string; } }
"#,
        )
        .unwrap();
    let dep = |source: &str| Dependency {
        name: "greeter".parse().unwrap(),
        source: source.into(),
        export: None,
        inherit: Inherit::All,
    };
    let main = dummy(&resolve, "main");
    let composed = compose_bytes("main", main.clone(), &[dep("good")], vec![dummy(&resolve, "good")]).unwrap();
    assert!(imports_of(&composed).is_empty(), "a plain import plugged by a plain name");
    assert_eq!(exports_of(&composed), ["run"]);
    let err = compose_bytes("main", main.clone(), &[dep("bad")], vec![dummy(&resolve, "bad")]).unwrap_err();
    assert!(
        format!("{err:#}")
            .contains("dependency 'greeter' exports 'greeter' which is not compatible with import 'greeter'"),
        "{err:#}"
    );
    // A plain dependency named like the main component collides with its
    // registration, as in Spin.
    let err = compose_bytes("greeter", main, &[dep("good")], vec![dummy(&resolve, "good")]).unwrap_err();
    assert!(format!("{err:#}").contains("package `greeter` has already been registered"), "{err:#}");
}

#[test]
fn dependencies_without_inherited_configuration_get_the_deny_adapter() {
    let (_dir, gateway) = shipped_layout("deny");
    let kernel = std::fs::read(&gateway.dependencies[0].source).unwrap();
    assert!(imports_of(&kernel).contains(&"spin:sqlite/sqlite@3.0.0".to_string()));
    assert!(imports_of(&kernel).contains(&"spin:postgres/postgres@4.0.0".to_string()));

    let only_variables = deny_adapter::apply(&kernel, &Inherit::Some(vec!["variables".into()])).unwrap();
    let imports = imports_of(&only_variables);
    assert!(imports.contains(&"fermyon:spin/variables@2.0.0".to_string()), "{imports:?}");
    for denied in ["spin:sqlite/sqlite@3.0.0", "fermyon:spin/llm@2.0.0", "spin:postgres/postgres@4.0.0"] {
        assert!(!imports.contains(&denied.to_string()), "{denied} should be answered by the adapter: {imports:?}");
    }
    assert_eq!(exports_of(&only_variables), ["cairn:memory/memory@0.1.0"]);

    let nothing = deny_adapter::apply(&kernel, &Inherit::Some(vec![])).unwrap();
    let imports = imports_of(&nothing);
    for denied in ["spin:sqlite/sqlite@3.0.0", "fermyon:spin/llm@2.0.0", "fermyon:spin/variables@2.0.0"] {
        assert!(!imports.contains(&denied.to_string()), "{denied}: {imports:?}");
    }
    assert_eq!(deny_adapter::apply(&kernel, &Inherit::All).unwrap(), kernel, "inherit all = untouched");

    // The whole gateway composes with a denied dependency.
    let mut g = gateway.clone();
    g.dependencies[1].inherit = Inherit::Some(vec![]);
    compose(&g).unwrap();
}

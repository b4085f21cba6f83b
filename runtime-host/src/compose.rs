//! Composing a component with its `[component.x.dependencies]` at load
//! time, the way Spin does (`spin_compose`, built on `wac-graph`): each
//! dependency name is matched to the main component's imports (a whole
//! package, one interface, optionally versioned), its export is checked to
//! be a subtype of the import and plugged in, and the main component's
//! exports are re-exported. Imports nobody satisfies stay imports of the
//! composed component and are served by the host.
//!
//! Like Spin, this is plug-style: a dependency's own imports go to the host,
//! never to another dependency. Dependencies that do not inherit the
//! parent's configuration are refused here (Spin would wrap them in a
//! deny-all adapter, which needs a component we do not ship).

use crate::app_manifest::ComponentDecl;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use wac_graph::types::{Package, SubtypeChecker};
use wac_graph::{CompositionGraph, EncodeOptions};

/// A parsed dependency or import name: `ns:pkg[/iface][@version]`.
#[derive(Debug, PartialEq)]
struct PackageRef {
    package: String,
    interface: Option<String>,
    version: Option<String>,
}

fn parse_ref(s: &str) -> Option<PackageRef> {
    if !s.contains(':') {
        return None;
    }
    let (body, version) = match s.split_once('@') {
        Some((b, v)) => (b, Some(v.to_string())),
        None => (s, None),
    };
    let (package, interface) = match body.split_once('/') {
        Some((p, i)) => (p.to_string(), Some(i.to_string())),
        None => (body.to_string(), None),
    };
    Some(PackageRef { package, interface, version })
}

/// Whether dependency `dep` satisfies `import` (Spin's maximal match: a
/// package name matches every interface of the package; a version, when
/// given, must be equal).
pub fn matches_import(dep: &str, import: &str) -> bool {
    match (parse_ref(dep), parse_ref(import)) {
        (Some(d), Some(i)) => {
            d.package == i.package
                && d.interface.as_ref().is_none_or(|di| Some(di) == i.interface.as_ref())
                && d.version.as_ref().is_none_or(|dv| Some(dv) == i.version.as_ref())
        }
        (None, None) => dep == import,
        _ => false,
    }
}

/// A dependency instance that may satisfy an import.
struct Plug {
    dep_name: String,
    instance: wac_graph::NodeId,
    world: wac_graph::types::WorldId,
    export: Option<String>,
}

/// Reads the component's and its dependencies' files and composes them.
/// Returns the main component's bytes unchanged when it has no dependencies.
pub fn compose(decl: &ComponentDecl) -> Result<Vec<u8>> {
    let main = std::fs::read(&decl.source).with_context(|| {
        format!("reading component '{}' from {} (run `make build`?)", decl.id, decl.source.display())
    })?;
    if decl.dependencies.is_empty() {
        return Ok(main);
    }
    let mut graph = CompositionGraph::new();
    let pkg = Package::from_bytes(&decl.id, None, main, graph.types_mut())
        .with_context(|| format!("component '{}' is not a valid component", decl.id))?;
    let world = pkg.ty();
    let main_pkg = graph.register_package(pkg)?;
    let main_inst = graph.instantiate(main_pkg);
    let imports: Vec<String> = graph.types()[world].imports.keys().cloned().collect();

    // import name -> the dependencies that could satisfy it
    let mut plugs: BTreeMap<String, Vec<Plug>> = BTreeMap::new();
    for (i, dep) in decl.dependencies.iter().enumerate() {
        if !dep.inherit_configuration {
            bail!(
                "component '{}': dependency '{}' must set inherit_configuration (or the component dependencies_inherit_configuration = true); cairn does not apply Spin's deny-all adapter",
                decl.id,
                dep.name
            );
        }
        let matched: Vec<&String> = imports.iter().filter(|imp| matches_import(&dep.name, imp)).collect();
        if matched.is_empty() {
            bail!("component '{}': dependency '{}' doesn't match any imports", decl.id, dep.name);
        }
        let bytes = std::fs::read(&dep.source)
            .with_context(|| format!("reading dependency '{}' from {}", dep.name, dep.source.display()))?;
        let dep_pkg = Package::from_bytes(&format!("dep{i}:{}", sanitize(&dep.name)), None, bytes, graph.types_mut())
            .with_context(|| format!("dependency '{}' is not a valid component", dep.name))?;
        let dep_world = dep_pkg.ty();
        let dep_id = graph.register_package(dep_pkg)?;
        let dep_inst = graph.instantiate(dep_id);
        for imp in matched {
            plugs.entry(imp.clone()).or_default().push(Plug {
                dep_name: dep.name.clone(),
                instance: dep_inst,
                world: dep_world,
                export: dep.export.clone(),
            });
        }
    }

    let mut cache = Default::default();
    let mut checker = SubtypeChecker::new(&mut cache);
    for (import, candidates) in plugs {
        if candidates.len() > 1 {
            let names: Vec<&str> = candidates.iter().map(|c| c.dep_name.as_str()).collect();
            bail!(
                "component '{}': import '{import}' is satisfied by several dependencies: {}",
                decl.id,
                names.join(", ")
            );
        }
        let Plug { dep_name, instance: dep_inst, world: dep_world, export } = &candidates[0];
        let export_name = export.clone().unwrap_or_else(|| import.clone());
        let Some(export_ty) = graph.types()[*dep_world].exports.get(&export_name).copied() else {
            bail!("dependency '{dep_name}' doesn't export '{export_name}' to satisfy import '{import}'");
        };
        let import_ty = graph.types()[world].imports[&import];
        checker.is_subtype(export_ty, graph.types(), import_ty, graph.types()).with_context(|| {
            format!("dependency '{dep_name}' export '{export_name}' is not compatible with import '{import}'")
        })?;
        let node = graph.alias_instance_export(*dep_inst, &export_name)?;
        graph.set_instantiation_argument(main_inst, &import, node)?;
    }
    let exports: Vec<String> = graph.types()[world].exports.keys().cloned().collect();
    for name in exports {
        let node = graph.alias_instance_export(main_inst, &name)?;
        graph.export(node, &name)?;
    }
    graph.encode(EncodeOptions::default()).with_context(|| format!("encoding the composition of '{}'", decl.id))
}

/// A package name wac accepts (`ns:name`, kebab-case) derived from a dependency name.
fn sanitize(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let s = s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
    if s.starts_with(|c: char| c.is_ascii_digit()) { format!("d-{s}") } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_names_match_like_spin() {
        for (dep, imports) in [
            ("foo:bar/baz@0.1.0", vec!["foo:bar/baz@0.1.0"]),
            ("foo:bar/baz", vec!["foo:bar/baz@0.1.0", "foo:bar/baz"]),
            ("foo:bar", vec!["foo:bar/baz@0.1.0", "foo:bar/baz"]),
            ("foo:bar@0.1.0", vec!["foo:bar/baz@0.1.0"]),
            ("foo-bar", vec!["foo-bar"]),
        ] {
            for imp in imports {
                assert!(matches_import(dep, imp), "{dep} should match {imp}");
            }
        }
        for (dep, imports) in [
            ("foo:bar/baz@0.1.0", vec!["foo:bar/baz"]),
            ("foo:bar/baz", vec!["foo:bar/bub", "foo:bar/bub@0.1.0"]),
            ("foo:bar", vec!["foo:bub/bib"]),
            ("foo:bar@0.1.0", vec!["foo:bar/baz"]),
            ("foo:bar/baz", vec!["foo:bar/baz-bub", "foo-bar"]),
        ] {
            for imp in imports {
                assert!(!matches_import(dep, imp), "{dep} should not match {imp}");
            }
        }
    }

    #[test]
    fn sanitizes_package_names() {
        assert_eq!(sanitize("cairn:kernel/memory@0.1.0"), "cairn-kernel-memory-0-1-0");
    }
}

//! Composing a component with its `[component.x.dependencies]` at load
//! time, by the rules of Spin 4.0's composer (`spin_compose`, on
//! `wac-graph`), so the same manifest composes, or fails, the same way
//! under both hosts:
//!
//! 1. The main component is registered in the graph under its component
//!    id; each dependency under its *package* name (`cairn:memory`, no
//!    interface, no version) or its plain name. A second registration of
//!    one name fails: two dependencies of one WIT package cannot be
//!    composed into one component.
//! 2. Each dependency name is matched to the main component's imports
//!    ([`import_name`]); a name that matches none is an error, and so is an
//!    import matched by two dependencies.
//! 3. A dependency that does not inherit a capability set gets those
//!    imports answered by the deny-all adapter ([`deny_adapter`]).
//! 4. Each matched import is satisfied by the dependency's export of the
//!    same name (or the `export` the manifest names), which must be a
//!    subtype of the import; the main component's exports are re-exported.
//!
//! Plug-style only, as in Spin: a dependency's own imports go to the host,
//! never to another dependency. Imports nobody satisfies stay imports of
//! the composed component.

mod deny_adapter;
mod import_name;

use import_name::matches_import;

use crate::app_manifest::{ComponentDecl, Dependency};
use anyhow::{Context, Result, anyhow};
use std::collections::BTreeMap;
use wac_graph::types::{Package, SubtypeChecker, WorldId};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId};

/// A registered dependency.
struct Registered<'a> {
    dependency: &'a Dependency,
    instance: NodeId,
    world: WorldId,
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
    let mut sources = Vec::with_capacity(decl.dependencies.len());
    for dep in &decl.dependencies {
        let bytes = std::fs::read(&dep.source)
            .with_context(|| format!("reading dependency '{}' from {}", dep.name, dep.source.display()))?;
        sources.push(bytes);
    }
    compose_bytes(&decl.id, main, &decl.dependencies, sources)
        .with_context(|| format!("failed to resolve dependencies for component {:?}", decl.id))
}

/// [`compose`] on bytes already read (`sources[i]` is `deps[i]`'s file).
pub fn compose_bytes(id: &str, main: Vec<u8>, deps: &[Dependency], sources: Vec<Vec<u8>>) -> Result<Vec<u8>> {
    let prepare = |e: anyhow::Error| e.context("an error occurred when preparing dependencies");
    let mut graph = CompositionGraph::new();
    let main_pkg = Package::from_bytes(id, None, main, graph.types_mut()).map_err(prepare)?;
    let main_world = main_pkg.ty();
    let main_id = graph.register_package(main_pkg).map_err(|e| prepare(e.into()))?;
    let main_inst = graph.instantiate(main_id);
    let imports: Vec<String> = graph.types()[main_world].imports.keys().cloned().collect();

    // import name -> the dependencies that match it, in manifest order.
    let mut mappings: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut registered: Vec<Registered> = Vec::with_capacity(deps.len());
    for (dep, source) in deps.iter().zip(sources) {
        let mut matched = Vec::new();
        for import in &imports {
            if matches_import(&dep.name, import).map_err(prepare)? {
                matched.push(import.clone());
            }
        }
        if matched.is_empty() {
            return Err(anyhow!("dependency '{}' doesn't match any imports of component '{id}'", dep.name));
        }
        let source = deny_adapter::apply(&source, &dep.inherit).map_err(prepare)?;
        let pkg =
            Package::from_bytes(dep.name.registration_name(), None, source, graph.types_mut()).map_err(prepare)?;
        let world = pkg.ty();
        let pkg_id = graph.register_package(pkg).map_err(|e| prepare(e.into()))?;
        let instance = graph.instantiate(pkg_id);
        for import in matched {
            mappings.entry(import).or_default().push(registered.len());
        }
        registered.push(Registered { dependency: dep, instance, world });
    }

    let conflicts: Vec<String> = mappings
        .iter()
        .filter(|(_, by)| by.len() > 1)
        .map(|(import, by)| {
            let names: Vec<String> = by.iter().map(|&i| registered[i].dependency.name.to_string()).collect();
            format!("import '{import}' satisfied by dependencies: '{}'", names.join(", "))
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(anyhow!("component '{id}' has dependency conflicts: {}", conflicts.join("; ")));
    }

    let mut cache = Default::default();
    let mut checker = SubtypeChecker::new(&mut cache);
    for (import, by) in mappings {
        let Registered { dependency, instance, world } = &registered[by[0]];
        let export = dependency.export.clone().unwrap_or_else(|| import.clone());
        let Some(export_ty) = graph.types()[*world].exports.get(&export).copied() else {
            return Err(anyhow!(
                "dependency '{}' doesn't export '{export}' to satisfy import '{import}'",
                dependency.name
            ));
        };
        let import_ty = graph.types()[main_world].imports[&import];
        checker
            .is_subtype(export_ty, graph.types(), import_ty, graph.types())
            .with_context(|| {
                format!(
                    "dependency '{}' exports '{export}' which is not compatible with import '{import}'",
                    dependency.name
                )
            })
            .map_err(prepare)?;
        let node = graph.alias_instance_export(*instance, &export).map_err(|e| prepare(e.into()))?;
        graph.set_instantiation_argument(main_inst, &import, node).map_err(|e| prepare(e.into()))?;
    }
    let exports: Vec<String> = graph.types()[main_world].exports.keys().cloned().collect();
    for name in exports {
        let node = graph.alias_instance_export(main_inst, &name).map_err(|e| prepare(e.into()))?;
        graph.export(node, &name).map_err(|e| prepare(e.into()))?;
    }
    graph.encode(EncodeOptions::default()).map_err(|e| anyhow!("failed to encode composition graph: {e}"))
}

#[cfg(test)]
mod tests;

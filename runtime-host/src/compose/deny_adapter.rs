//! Configuration isolation for dependencies, as Spin does it
//! (`spin_capabilities::apply_deny_adapter`): a dependency that does not
//! inherit a capability set from the component it is composed into gets
//! that set's imports answered by the deny-all adapter instead of the host.
//!
//! The adapter is our own component (`components/deny-adapter`, embedded
//! here as built; `make deny-adapter` rebuilds it). It exports the
//! capability interfaces `cairn` serves; an import `cairn` does not serve
//! would fail to link anyway. Each adapter export belongs to one of Spin's
//! capability-set names; an inherited set's exports are left out, so those
//! imports keep going to the host.

use crate::app_manifest::Inherit;
use anyhow::Result;
use wac_graph::types::{Package, SubtypeChecker, are_semver_compatible};
use wac_graph::{CompositionGraph, EncodeOptions};

/// The built `cairn:deny-adapter/deny-all` component.
const DENY_ADAPTER: &[u8] = include_bytes!("deny_adapter.wasm");

/// Spin's capability-set names and the adapter exports each one lets
/// through to the host when inherited. Spin's other sets (`files`,
/// `key_value_stores`) have no interface `cairn` serves, so they have no
/// exports here.
pub const CAPABILITY_SETS: &[(&str, &[&str])] = &[
    ("ai_models", &["fermyon:spin/llm@2.0.0"]),
    ("allowed_outbound_hosts", &["spin:postgres/postgres@4.0.0"]),
    ("environment", &["wasi:cli/environment@0.2.0"]),
    ("files", &[]),
    ("key_value_stores", &[]),
    ("sqlite_databases", &["spin:sqlite/sqlite@3.0.0"]),
    ("variables", &["fermyon:spin/variables@2.0.0"]),
];

/// The adapter exports a dependency may still reach the host through.
fn allow_list(inherit: &Inherit) -> Vec<&'static str> {
    let sets: Vec<&(&str, &[&str])> = match inherit {
        Inherit::All => CAPABILITY_SETS.iter().collect(),
        // Unknown names are ignored, as in Spin.
        Inherit::Some(names) => CAPABILITY_SETS.iter().filter(|(set, _)| names.iter().any(|n| n == set)).collect(),
    };
    sets.into_iter().flat_map(|(_, exports)| exports.iter().copied()).collect()
}

/// `source` with every non-inherited capability import plugged by the
/// adapter; unchanged when nothing needs plugging (everything inherited, or
/// the dependency imports none of the denied interfaces).
pub fn apply(source: &[u8], inherit: &Inherit) -> Result<Vec<u8>> {
    let allow = allow_list(inherit);
    let mut graph = CompositionGraph::new();
    let dependency = Package::from_bytes("dependency", None, source.to_vec(), graph.types_mut())?;
    let dependency_world = dependency.ty();
    let dependency_id = graph.register_package(dependency)?;
    let adapter = Package::from_bytes("cairn-deny-all-adapter", None, DENY_ADAPTER, graph.types_mut())?;
    let adapter_world = adapter.ty();
    let adapter_id = graph.register_package(adapter)?;

    // (adapter export, dependency import) pairs to plug.
    let mut plugs: Vec<(String, String)> = Vec::new();
    let mut cache = Default::default();
    let mut checker = SubtypeChecker::new(&mut cache);
    for (name, export_ty) in &graph.types()[adapter_world].exports {
        if allow.contains(&name.as_str()) {
            continue;
        }
        let imports = &graph.types()[dependency_world].imports;
        let matching = imports
            .get_key_value(name)
            .or_else(|| imports.iter().find(|(import, _)| are_semver_compatible(name, import)));
        if let Some((import, import_ty)) = matching
            && checker.is_subtype(*export_ty, graph.types(), *import_ty, graph.types()).is_ok()
        {
            plugs.push((name.clone(), import.clone()));
        }
    }
    if plugs.is_empty() {
        return Ok(source.to_vec());
    }
    let dependency_inst = graph.instantiate(dependency_id);
    let adapter_inst = graph.instantiate(adapter_id);
    for (export, import) in plugs {
        let node = graph.alias_instance_export(adapter_inst, &export)?;
        graph.set_instantiation_argument(dependency_inst, &import, node)?;
    }
    let exports: Vec<String> = graph.types()[dependency_world].exports.keys().cloned().collect();
    for name in exports {
        let node = graph.alias_instance_export(dependency_inst, &name)?;
        graph.export(node, &name)?;
    }
    Ok(graph.encode(EncodeOptions::default())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded adapter exports exactly the interfaces of the capability
    /// table (a rebuilt adapter with another export set fails here).
    #[test]
    fn embedded_adapter_matches_the_capability_sets() {
        let mut graph = CompositionGraph::new();
        let adapter = Package::from_bytes("adapter", None, DENY_ADAPTER, graph.types_mut()).unwrap();
        let mut exports: Vec<&str> = graph.types()[adapter.ty()].exports.keys().map(String::as_str).collect();
        exports.sort();
        let mut table: Vec<&str> = CAPABILITY_SETS.iter().flat_map(|(_, e)| e.iter().copied()).collect();
        table.sort();
        assert_eq!(exports, table);
    }

    #[test]
    fn allow_lists() {
        assert_eq!(allow_list(&Inherit::All).len(), 5);
        assert!(allow_list(&Inherit::Some(vec![])).is_empty());
        assert_eq!(
            allow_list(&Inherit::Some(vec!["sqlite_databases".into(), "bogus".into()])),
            ["spin:sqlite/sqlite@3.0.0"]
        );
    }

    #[test]
    fn nothing_to_plug_leaves_the_component_as_it_is() {
        // The adapter itself imports none of its own exports but the
        // environment; with everything inherited nothing is plugged.
        let out = apply(DENY_ADAPTER, &Inherit::All).unwrap();
        assert_eq!(out, DENY_ADAPTER);
    }
}

//! Matching a dependency name to the main component's import names, by
//! Spin's rule (`spin_compose::matches_import`): a plain name matches the
//! plain import of that name; a package name matches every import of its
//! package, narrowed by its interface and its version when it names them.

use crate::app_manifest::DependencyName;
use anyhow::{Context, Result};

/// An import name of a component: `ns:pkg/iface[@version]` or plain.
#[derive(Debug, PartialEq)]
enum ImportName {
    Plain(String),
    Package { package: String, interface: String, version: Option<semver::Version> },
}

fn parse(s: &str) -> Result<ImportName> {
    if !s.contains([':', '/']) {
        return Ok(ImportName::Plain(s.to_string()));
    }
    let (package, rest) = s.split_once('/').with_context(|| format!("invalid import name: {s}"))?;
    let (interface, version) = match rest.split_once('@') {
        Some((i, v)) => {
            (i, Some(semver::Version::parse(v).with_context(|| format!("invalid version in import name: {s}"))?))
        }
        None => (rest, None),
    };
    Ok(ImportName::Package { package: package.to_string(), interface: interface.to_string(), version })
}

/// Whether `dependency` satisfies the import named `import`.
pub fn matches_import(dependency: &DependencyName, import: &str) -> Result<bool> {
    Ok(match (dependency, parse(import)?) {
        (DependencyName::Plain(d), ImportName::Plain(i)) => *d == i,
        (DependencyName::Package(d), ImportName::Package { package, interface, version }) => {
            d.package == package
                && d.interface.as_ref().is_none_or(|di| *di == interface)
                && d.version.as_ref().is_none_or(|dv| Some(dv) == version.as_ref())
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases of Spin's own `test_matches_import`, plus plain names.
    #[test]
    fn dependency_names_match_like_spin() {
        let dep = |s: &str| s.parse::<DependencyName>().unwrap();
        for (d, imports) in [
            ("foo:bar/baz@0.1.0", vec!["foo:bar/baz@0.1.0"]),
            ("foo:bar/baz", vec!["foo:bar/baz@0.1.0", "foo:bar/baz"]),
            ("foo:bar", vec!["foo:bar/baz@0.1.0", "foo:bar/baz"]),
            ("foo:bar@0.1.0", vec!["foo:bar/baz@0.1.0"]),
            ("foo-bar", vec!["foo-bar"]),
        ] {
            for imp in imports {
                assert!(matches_import(&dep(d), imp).unwrap(), "{d} should match {imp}");
            }
        }
        for (d, imports) in [
            ("foo:bar/baz@0.1.0", vec!["foo:bar/baz"]),
            ("foo:bar/baz", vec!["foo:bar/bub", "foo:bar/bub@0.1.0"]),
            ("foo:bar", vec!["foo:bub/bib"]),
            ("foo:bar@0.1.0", vec!["foo:bar/baz"]),
            ("foo:bar/baz", vec!["foo:bar/baz-bub", "foo-bar"]),
            ("foo-bar", vec!["foo:bar/baz", "foo-baz"]),
        ] {
            for imp in imports {
                assert!(!matches_import(&dep(d), imp).unwrap(), "{d} should not match {imp}");
            }
        }
        assert!(matches_import(&dep("foo:bar"), "foo:bar/baz@0.1").is_err(), "import versions are semver");
        assert!(matches_import(&dep("foo:bar"), "foo:bar").is_err(), "a package import needs an interface");
    }
}

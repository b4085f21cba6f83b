//! `[component.x.dependencies]` read the way Spin 4.0 reads them
//! (`spin-serde` `DependencyName`, `spin-manifest` `ComponentDependency`,
//! its `normalize` and `validate_dependencies`), so a manifest Spin refuses
//! before composing is refused here for the same reason.
//!
//! Names: `ns:pkg`, `ns:pkg@1.2.3`, `ns:pkg/iface`, `ns:pkg/iface@1.2.3`
//! (a package, optionally one interface, optionally a full semver version)
//! or a plain kebab-case name (`foo-bar`, matching a plain import).
//!
//! Sources: `{ path }` (relative to the manifest), `{ component = "id" }`
//! (another component of the app, which may have no resources of its own),
//! and the registry and URL forms, which Spin downloads and `cairn` does not
//! (refused with a message saying so).

use super::ids::{check_kebab, check_package_ref};
use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;

/// A dependency name as Spin parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyName {
    /// A plain kebab-case name: matches a plain import of that name.
    Plain(String),
    /// A package, optionally narrowed to one interface and one version.
    Package(PackageName),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageName {
    /// `namespace:name`.
    pub package: String,
    pub interface: Option<String>,
    pub version: Option<semver::Version>,
}

impl std::str::FromStr for DependencyName {
    type Err = anyhow::Error;

    /// Spin's rule: a name with `:` or `/` is a package name (version after
    /// the first `@`, interface after the first `/`), anything else a plain
    /// kebab-case name.
    fn from_str(s: &str) -> Result<Self> {
        if !s.contains([':', '/']) {
            check_kebab(s).map_err(|e| anyhow!("{e}"))?;
            return Ok(DependencyName::Plain(s.to_string()));
        }
        let (name, version) = match s.split_once('@') {
            Some((name, v)) => (name, Some(semver::Version::parse(v)?)),
            None => (s, None),
        };
        let (package, interface) = match name.split_once('/') {
            Some((p, i)) => {
                check_kebab(i).map_err(|e| anyhow!("{e}"))?;
                (p, Some(i.to_string()))
            }
            None => (name, None),
        };
        check_package_ref(package).map_err(|e| anyhow!("{e}"))?;
        Ok(DependencyName::Package(PackageName { package: package.to_string(), interface, version }))
    }
}

impl fmt::Display for DependencyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DependencyName::Plain(p) => f.write_str(p),
            DependencyName::Package(p) => {
                f.write_str(&p.package)?;
                if let Some(i) = &p.interface {
                    write!(f, "/{i}")?;
                }
                if let Some(v) = &p.version {
                    write!(f, "@{v}")?;
                }
                Ok(())
            }
        }
    }
}

impl DependencyName {
    /// The name the dependency is registered under in the composition
    /// graph: the package alone (no interface, no version) or the plain
    /// name. Two dependencies with one registration name cannot be composed
    /// into one component.
    pub fn registration_name(&self) -> &str {
        match self {
            DependencyName::Plain(p) => p,
            DependencyName::Package(p) => &p.package,
        }
    }
}

/// `inherit_configuration`: `true`/`false`, or the capability sets to let
/// through (`ai_models`, `allowed_outbound_hosts`, `environment`, `files`,
/// `key_value_stores`, `sqlite_databases`, `variables`; others are ignored,
/// as Spin ignores them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RawInherit {
    All(bool),
    Some(Vec<String>),
}

/// What a dependency inherits from the component it is composed into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inherit {
    All,
    /// Only these capability sets; empty = none (the deny-all adapter
    /// answers every capability call).
    Some(Vec<String>),
}

/// One dependency entry as written (Spin's `ComponentDependency`, untagged).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum RawDependency {
    /// `"ns:pkg" = "1.2"`: a registry package.
    Version(String),
    Package {
        version: String,
        #[allow(dead_code)] // Spin's field; cairn refuses registry sources
        registry: Option<String>,
        package: Option<String>,
        export: Option<String>,
        inherit_configuration: Option<RawInherit>,
    },
    Local {
        path: PathBuf,
        export: Option<String>,
        inherit_configuration: Option<RawInherit>,
    },
    Http {
        url: String,
        digest: String,
        export: Option<String>,
        inherit_configuration: Option<RawInherit>,
    },
    AppComponent {
        component: String,
        export: Option<String>,
        inherit_configuration: Option<RawInherit>,
    },
}

impl RawDependency {
    pub fn inherit(&self) -> Option<&RawInherit> {
        match self {
            RawDependency::Version(_) => None,
            RawDependency::Package { inherit_configuration, .. }
            | RawDependency::Local { inherit_configuration, .. }
            | RawDependency::Http { inherit_configuration, .. }
            | RawDependency::AppComponent { inherit_configuration, .. } => inherit_configuration.as_ref(),
        }
    }

    fn set_inherit(&mut self, value: RawInherit) {
        match self {
            RawDependency::Version(_) => {}
            RawDependency::Package { inherit_configuration, .. }
            | RawDependency::Local { inherit_configuration, .. }
            | RawDependency::Http { inherit_configuration, .. }
            | RawDependency::AppComponent { inherit_configuration, .. } => *inherit_configuration = Some(value),
        }
    }

    fn export(&self) -> Option<&String> {
        match self {
            RawDependency::Version(_) => None,
            RawDependency::Package { export, .. }
            | RawDependency::Local { export, .. }
            | RawDependency::Http { export, .. }
            | RawDependency::AppComponent { export, .. } => export.as_ref(),
        }
    }
}

/// What another component of the app must not have to be used as a
/// dependency (Spin's `ensure_is_acceptable_dependency`: these would not
/// apply once it is composed).
#[derive(Debug, Clone, Default)]
pub struct DependencyTarget {
    pub source: TargetSource,
    /// The resource fields it sets (`ai_models`, `variables`, …).
    pub resources: Vec<&'static str>,
}

/// A component's `source`.
#[derive(Debug, Clone, Default)]
pub enum TargetSource {
    #[default]
    None,
    Local(PathBuf),
    Remote {
        url: String,
        digest: String,
    },
    Registry {
        registry: Option<String>,
        package: String,
        version: String,
    },
}

/// A dependency ready to compose.
#[derive(Debug, Clone)]
pub struct Dependency {
    pub name: DependencyName,
    /// The component file, resolved against the manifest's directory.
    pub source: PathBuf,
    /// Export of the dependency to plug in (default: the import's name).
    pub export: Option<String>,
    pub inherit: Inherit,
}

/// Spin's `normalize_dependency_inherit_configuration` for one component:
/// `dependencies_inherit_configuration` and per-dependency
/// `inherit_configuration` are mutually exclusive; `true` at component level
/// means every dependency inherits everything.
pub fn normalize_inherit(
    component_id: &str,
    component_level: Option<bool>,
    deps: &mut [(String, RawDependency)],
) -> Result<()> {
    let per_dep = deps.iter().any(|(_, d)| d.inherit().is_some());
    if component_level.is_some() && per_dep {
        bail!(
            "Component `{component_id}` specifies both `dependencies_inherit_configuration` and per-dependency `inherit_configuration`. These are mutually exclusive; use one or the other."
        );
    }
    if component_level == Some(true) {
        for (_, d) in deps.iter_mut() {
            d.set_inherit(RawInherit::All(true));
        }
    }
    Ok(())
}

/// Spin's `validate_dependencies` for one component's parsed names: plain
/// names need a package source, a whole-package dependency may not name an
/// export, and two names of one package must differ in interface or in a
/// semver-incompatible version.
pub fn validate(deps: &[(DependencyName, RawDependency)]) -> Result<()> {
    for (name, dep) in deps {
        if let DependencyName::Plain(plain) = name {
            let needs_package = match dep {
                RawDependency::Package { package, .. } => package.is_none(),
                RawDependency::Version(_) => true,
                _ => false,
            };
            if needs_package {
                bail!("dependency {plain:?} must specify a package name");
            }
        }
    }
    for (name, dep) in deps {
        if let DependencyName::Package(p) = name
            && p.interface.is_none()
            && matches!(dep, RawDependency::Package { .. } | RawDependency::Local { .. })
            && dep.export().is_some()
        {
            bail!("using an export to satisfy the package dependency \"{name}\" is not currently permitted");
        }
    }
    for (i, (this, _)) in deps.iter().enumerate() {
        for (other, _) in &deps[i + 1..] {
            let (DependencyName::Package(a), DependencyName::Package(b)) = (this, other) else { continue };
            if a.package != b.package {
                continue;
            }
            if let (Some(va), Some(vb)) = (&a.version, &b.version)
                && compatible_track(va) != compatible_track(vb)
            {
                continue;
            }
            if let (Some(ia), Some(ib)) = (&a.interface, &b.interface)
                && ia != ib
            {
                continue;
            }
            bail!("\"{this}\" dependency conflicts with \"{other}\"");
        }
    }
    Ok(())
}

/// The semver track a version is compatible within (Spin's
/// `normalize_compatible_version`): `1.2.3` -> `1.0.0`, `0.2.3` -> `0.2.0`.
fn compatible_track(v: &semver::Version) -> semver::Version {
    let mut v = v.clone();
    v.build = semver::BuildMetadata::EMPTY;
    if !v.pre.is_empty() {
        return v;
    }
    if v.major > 0 {
        v.minor = 0;
        v.patch = 0;
    } else if v.minor > 0 {
        v.patch = 0;
    }
    v
}

/// Resolves one component's dependencies (after [`normalize_inherit`]):
/// parses and validates the names, turns component references into their
/// target's source, and refuses the sources `cairn` cannot load.
pub fn resolve(
    component_id: &str,
    dir: &std::path::Path,
    raw: Vec<(String, RawDependency)>,
    target: impl Fn(&str) -> Option<DependencyTarget>,
) -> Result<Vec<Dependency>> {
    let mut parsed = Vec::with_capacity(raw.len());
    for (name, dep) in raw {
        let name: DependencyName = name.parse().with_context(|| format!("invalid dependency name {name:?}"))?;
        parsed.push((name, dep));
    }
    // Component references are resolved before validation, as Spin does.
    for (_, dep) in parsed.iter_mut() {
        if let RawDependency::AppComponent { component, export, inherit_configuration } = dep {
            let t = target(component).with_context(|| format!("dependency ID {component} does not exist"))?;
            if !t.resources.is_empty() {
                bail!(
                    "Dependencies may not have their own resources or permissions. Component {component} cannot be used as a dependency of {component_id} because it specifies: {}",
                    t.resources.join(", ")
                );
            }
            let (export, inherit_configuration) = (export.clone(), inherit_configuration.clone());
            *dep = match t.source {
                TargetSource::Local(path) => RawDependency::Local { path, export, inherit_configuration },
                TargetSource::Remote { url, digest } => {
                    RawDependency::Http { url, digest, export, inherit_configuration }
                }
                TargetSource::Registry { registry, package, version } => {
                    RawDependency::Package { version, registry, package: Some(package), export, inherit_configuration }
                }
                TargetSource::None => bail!("dependency ID {component} has no source"),
            };
        }
    }
    validate(&parsed).with_context(|| format!("component {component_id:?} has invalid dependencies"))?;
    parsed
        .into_iter()
        .map(|(name, dep)| {
            let inherit = match dep.inherit() {
                Some(RawInherit::All(true)) => Inherit::All,
                Some(RawInherit::Some(sets)) => Inherit::Some(sets.clone()),
                Some(RawInherit::All(false)) | None => Inherit::Some(Vec::new()),
            };
            let export = dep.export().cloned();
            let source = match dep {
                RawDependency::Local { path, .. } => dir.join(path),
                RawDependency::Version(v) | RawDependency::Package { version: v, .. } => {
                    ensure!(
                        semver::VersionReq::parse(&v).is_ok(),
                        "Component dependency \"{name}\" specifies an invalid semantic version requirement ({v:?}) for its package version"
                    );
                    bail!(
                        "component {component_id:?}: dependency \"{name}\" comes from a registry; cairn loads only local files (build it and use `path`, or pre-compose with `spin registry push`)"
                    )
                }
                RawDependency::Http { url, digest, .. } => {
                    ensure!(digest.starts_with("sha256:"), "invalid `digest` {digest:?}; must start with 'sha256:'");
                    bail!(
                        "component {component_id:?}: dependency \"{name}\" is a download ({url}); cairn loads only local files (download it and use `path`)"
                    )
                }
                RawDependency::AppComponent { .. } => unreachable!("resolved above"),
            };
            Ok(Dependency { name, source, export, inherit })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DependencyName {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn local(path: &str) -> RawDependency {
        RawDependency::Local { path: path.into(), export: None, inherit_configuration: None }
    }

    #[test]
    fn parses_every_name_form_spin_accepts() {
        assert_eq!(name("foo-bar"), DependencyName::Plain("foo-bar".into()));
        let DependencyName::Package(p) = name("foo:bar/baz@0.1.0") else { panic!() };
        assert_eq!((p.package.as_str(), p.interface.as_deref()), ("foo:bar", Some("baz")));
        assert_eq!(p.version, Some(semver::Version::new(0, 1, 0)));
        for s in ["foo:bar", "foo:bar@0.1.0", "foo:bar/baz", "foo:bar/baz@1.2.3-rc.1", "cairn:memory/memory@0.1.0"] {
            assert_eq!(name(s).to_string(), s);
        }
        // Spin needs a full semver version, a kebab-case interface and a
        // `namespace:name` package.
        for bad in ["foo:bar@0.1", "foo:bar/Baz_x", "foo/bar", "foo:bar/", "foo_bar", "Foo:bar"] {
            assert!(bad.parse::<DependencyName>().is_err(), "{bad}");
        }
        assert_eq!(name("cairn:kernel/memory@0.1.0").registration_name(), "cairn:kernel");
        assert_eq!(name("foo-bar").registration_name(), "foo-bar");
    }

    #[test]
    fn parses_every_source_form() {
        let t: toml::Table = toml::from_str(
            r#"
a = "1.0"
b = { version = "1.0", package = "x:y", registry = "r.io", export = "e" }
c = { path = "c.wasm", inherit_configuration = ["variables"] }
d = { url = "https://x/d.wasm", digest = "sha256:00" }
e = { component = "other", inherit_configuration = false }
"#,
        )
        .unwrap();
        let kinds: Vec<&str> = t
            .into_iter()
            .map(|(_, v)| match v.try_into::<RawDependency>().unwrap() {
                RawDependency::Version(_) => "version",
                RawDependency::Package { .. } => "package",
                RawDependency::Local { inherit_configuration: Some(RawInherit::Some(s)), .. } if s == ["variables"] => {
                    "local"
                }
                RawDependency::Http { .. } => "http",
                RawDependency::AppComponent { inherit_configuration: Some(RawInherit::All(false)), .. } => "component",
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["version", "package", "local", "http", "component"]);
        let unknown: Result<RawDependency, _> =
            toml::Value::Table(toml::from_str("path = 'x'\nfoo = 1").unwrap()).try_into();
        assert!(unknown.is_err(), "unknown fields are refused");
    }

    #[test]
    fn validation_matches_spin() {
        let ok = |names: &[&str]| validate(&names.iter().map(|n| (name(n), local("x.wasm"))).collect::<Vec<_>>());
        // Interfaces of one package: valid manifests (Spin then fails to
        // compose them; see compose).
        assert!(ok(&["cairn:kernel/memory@0.1.0", "cairn:kernel/policy@0.1.0"]).is_ok());
        assert!(ok(&["foo:bar@1.0.0", "foo:bar@2.0.0"]).is_ok());
        assert!(ok(&["foo:bar", "foo:baz"]).is_ok());
        for (a, b) in [
            ("foo:bar", "foo:bar/baz"),
            ("foo:bar/baz@1.0.0", "foo:bar/baz@1.2.0"),
            ("foo:bar@0.1.0", "foo:bar@0.1.5"),
            ("foo:bar/baz", "foo:bar/baz@1.0.0"),
        ] {
            let err = ok(&[a, b]).unwrap_err().to_string();
            assert_eq!(err, format!("\"{a}\" dependency conflicts with \"{b}\""));
        }
        let plain = validate(&[(name("foo-bar"), RawDependency::Version("1.0".into()))]).unwrap_err();
        assert_eq!(plain.to_string(), "dependency \"foo-bar\" must specify a package name");
        let plain_path = validate(&[(name("foo-bar"), local("x.wasm"))]);
        assert!(plain_path.is_ok(), "a plain name with a local source is fine");
        let export = validate(&[(
            name("foo:bar"),
            RawDependency::Local { path: "x".into(), export: Some("e".into()), inherit_configuration: None },
        )])
        .unwrap_err();
        assert!(export.to_string().contains("is not currently permitted"), "{export}");
    }

    #[test]
    fn inherit_configuration_rules() {
        let mut deps = vec![("a:b".to_string(), local("x"))];
        normalize_inherit("gw", Some(true), &mut deps).unwrap();
        assert_eq!(deps[0].1.inherit(), Some(&RawInherit::All(true)));
        let mut both = vec![(
            "a:b".to_string(),
            RawDependency::Local { path: "x".into(), export: None, inherit_configuration: Some(RawInherit::All(true)) },
        )];
        let err = normalize_inherit("gw", Some(false), &mut both).unwrap_err().to_string();
        assert!(err.contains("mutually exclusive"), "{err}");
        let resolved =
            resolve("gw", std::path::Path::new("/app"), vec![("a:b/c".into(), local("x.wasm"))], |_| None).unwrap();
        assert_eq!(resolved[0].inherit, Inherit::Some(vec![]), "no inheritance unless granted");
        assert_eq!(resolved[0].source, PathBuf::from("/app/x.wasm"));
    }

    #[test]
    fn component_references() {
        let dep = RawDependency::AppComponent { component: "kernel".into(), export: None, inherit_configuration: None };
        let target = |id: &str| {
            (id == "kernel")
                .then(|| DependencyTarget { source: TargetSource::Local("k.wasm".into()), resources: vec![] })
        };
        let r = resolve("gw", std::path::Path::new("/app"), vec![("a:b/c".into(), dep.clone())], target).unwrap();
        assert_eq!(r[0].source, PathBuf::from("/app/k.wasm"));
        let missing =
            RawDependency::AppComponent { component: "nope".into(), export: None, inherit_configuration: None };
        let err = resolve("gw", std::path::Path::new("/app"), vec![("a:b/c".into(), missing)], target).unwrap_err();
        assert_eq!(err.to_string(), "dependency ID nope does not exist");
        let with_vars = |_: &str| {
            Some(DependencyTarget {
                source: TargetSource::Local("k.wasm".into()),
                resources: vec!["sqlite_databases", "variables"],
            })
        };
        let err = resolve("gw", std::path::Path::new("/app"), vec![("a:b/c".into(), dep)], with_vars).unwrap_err();
        assert!(err.to_string().ends_with("because it specifies: sqlite_databases, variables"), "{err}");
        let registry = resolve(
            "gw",
            std::path::Path::new("/"),
            vec![("a:b".into(), RawDependency::Version("1.0".into()))],
            |_| None,
        );
        assert!(registry.unwrap_err().to_string().contains("cairn loads only local files"));
    }
}

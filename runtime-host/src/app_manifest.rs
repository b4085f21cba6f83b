//! Reading `spin.toml` (Spin manifest v2) as our app manifest, so Spin and
//! `cairn up` serve the same routes, components, dependencies and variables.
//!
//! Only what the host needs is read; anything else in the file is ignored
//! (Spin reads it). Template expressions (`"{{ name }}"`) in component
//! variables are expanded against the application variables.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    #[serde(default)]
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Debug, Default, Deserialize)]
struct RawApplication {
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
}

#[derive(Debug, Default, Deserialize)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
    #[serde(default)]
    cron: Vec<RawCronTrigger>,
}

#[derive(Debug, Deserialize)]
struct RawHttpTrigger {
    route: toml::Value,
    component: String,
}

#[derive(Debug, Deserialize)]
struct RawCronTrigger {
    component: String,
    cron_expression: String,
}

#[derive(Debug, Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    dependencies: BTreeMap<String, toml::Value>,
    #[serde(default)]
    dependencies_inherit_configuration: bool,
    #[serde(default)]
    ai_models: Vec<String>,
}

/// An application variable declared in `[variables]`.
#[derive(Debug, Clone)]
pub struct VariableDecl {
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
}

/// A component dependency (`[component.x.dependencies]`).
#[derive(Debug, Clone)]
pub struct Dependency {
    /// The dependency name: a package (`cairn:kernel`), an interface
    /// (`cairn:kernel/memory`), optionally versioned.
    pub name: String,
    pub source: PathBuf,
    /// Export of the dependency to use (defaults to the import's name).
    pub export: Option<String>,
    /// Whether the dependency sees the parent's configuration (databases,
    /// variables). Without it Spin denies it every capability.
    pub inherit_configuration: bool,
}

#[derive(Debug, Clone)]
pub struct ComponentDecl {
    pub id: String,
    pub source: PathBuf,
    pub sqlite_databases: Vec<String>,
    /// Variable name -> template (`"{{ admin_token }}"` or a literal).
    pub variables: BTreeMap<String, String>,
    pub dependencies: Vec<Dependency>,
    /// Models the component may use through `fermyon:spin/llm` (Spin's `ai_models`).
    pub ai_models: Vec<String>,
}

/// An HTTP route: `/exact` or `/prefix/...` (wildcard).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRoute {
    pub route: String,
    pub component: String,
}

#[derive(Debug, Clone)]
pub struct CronSchedule {
    pub component: String,
    pub cron_expression: String,
}

/// The parts of `spin.toml` the host uses.
#[derive(Debug, Clone)]
pub struct AppManifest {
    pub name: String,
    pub dir: PathBuf,
    pub variables: BTreeMap<String, VariableDecl>,
    pub http_routes: Vec<HttpRoute>,
    pub cron: Vec<CronSchedule>,
    pub components: BTreeMap<String, ComponentDecl>,
}

fn source_path(dir: &Path, v: &toml::Value, what: &str) -> Result<PathBuf> {
    match v {
        toml::Value::String(s) => Ok(dir.join(s)),
        toml::Value::Table(t) => match t.get("path").and_then(|p| p.as_str()) {
            Some(p) => Ok(dir.join(p)),
            None => bail!("{what}: only local sources (`path`) are supported by cairn; got {t:?}"),
        },
        other => bail!("{what}: unsupported source {other:?}"),
    }
}

impl AppManifest {
    /// Reads and checks a manifest file.
    pub fn load(path: &Path) -> Result<AppManifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading app manifest {}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, &dir).with_context(|| format!("in app manifest {}", path.display()))
    }

    pub fn parse(text: &str, dir: &Path) -> Result<AppManifest> {
        let raw: RawManifest = toml::from_str(text)?;
        if raw.spin_manifest_version.as_integer() != Some(2) && raw.spin_manifest_version.as_str() != Some("2") {
            bail!("spin_manifest_version must be 2");
        }
        for name in raw.variables.keys() {
            check_variable_name(name)?;
        }
        let variables = raw
            .variables
            .into_iter()
            .map(|(k, v)| (k, VariableDecl { default: v.default, required: v.required, secret: v.secret }))
            .collect();
        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            let mut deps = Vec::new();
            for (name, spec) in c.dependencies {
                let export = spec.get("export").and_then(|e| e.as_str()).map(str::to_string);
                let inherit = match spec.get("inherit_configuration") {
                    Some(toml::Value::Boolean(b)) => *b,
                    Some(toml::Value::Array(a)) => !a.is_empty(),
                    _ => c.dependencies_inherit_configuration,
                };
                deps.push(Dependency {
                    source: source_path(dir, &spec, &format!("component.{id}.dependencies.\"{name}\""))?,
                    name,
                    export,
                    inherit_configuration: inherit,
                });
            }
            for v in c.variables.keys() {
                check_variable_name(v)?;
            }
            components.insert(
                id.clone(),
                ComponentDecl {
                    source: source_path(dir, &c.source, &format!("component.{id}.source"))?,
                    id,
                    sqlite_databases: c.sqlite_databases,
                    variables: c.variables,
                    dependencies: deps,
                    ai_models: c.ai_models,
                },
            );
        }
        let mut http_routes = Vec::new();
        for t in raw.trigger.http {
            let route = match &t.route {
                toml::Value::String(s) => s.clone(),
                toml::Value::Table(tb) if tb.get("private").is_some() => continue,
                other => bail!("trigger.http route {other:?} is not supported"),
            };
            if !components.contains_key(&t.component) {
                bail!("trigger.http route {route} names unknown component {}", t.component);
            }
            http_routes.push(HttpRoute { route, component: t.component });
        }
        let mut cron = Vec::new();
        for c in raw.trigger.cron {
            if !components.contains_key(&c.component) {
                bail!("trigger.cron names unknown component {}", c.component);
            }
            cron.push(CronSchedule { component: c.component, cron_expression: c.cron_expression });
        }
        Ok(AppManifest { name: raw.application.name, dir: dir.to_path_buf(), variables, http_routes, cron, components })
    }

    /// The component serving `path`: an exact route wins, then the longest
    /// wildcard prefix (Spin's rule).
    pub fn route_for(&self, path: &str) -> Option<&HttpRoute> {
        let mut best: Option<(&HttpRoute, usize, bool)> = None;
        for r in &self.http_routes {
            let (hit, len, exact) = match r.route.strip_suffix("/...") {
                Some(prefix) => {
                    let ok = prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"));
                    (ok, prefix.len(), false)
                }
                None => (path == r.route || path == format!("{}/", r.route.trim_end_matches('/')), r.route.len(), true),
            };
            if hit {
                let better = match best {
                    None => true,
                    Some((_, bl, bexact)) => (exact && !bexact) || (exact == bexact && len > bl),
                };
                if better {
                    best = Some((r, len, exact));
                }
            }
        }
        best.map(|(r, _, _)| r)
    }
}

/// Spin's variable name rule: `[a-z0-9_]`, starts with a letter, ends with
/// a letter or digit, no `__`.
pub fn check_variable_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name.as_bytes()[0].is_ascii_lowercase()
        && !name.ends_with('_')
        && !name.contains("__");
    if ok { Ok(()) } else { bail!("invalid variable name '{name}'") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "cairn"
[variables]
admin_token = { default = "", secret = true }
tier_profiles = { required = true }
[[trigger.http]]
route = "/..."
component = "gateway"
[[trigger.http]]
route = "/v1/admin/derive/..."
component = "derive"
[[trigger.cron]]
component = "derive"
cron_expression = "*/2 * * * * *"
[component.gateway]
source = "gw.wasm"
sqlite_databases = ["default"]
dependencies_inherit_configuration = true
[component.gateway.variables]
admin_token = "{{ admin_token }}"
[component.gateway.dependencies]
"cairn:kernel/memory@0.1.0" = { path = "kernel.wasm" }
[component.derive]
source = "derive.wasm"
"#;

    #[test]
    fn parses_routes_components_and_dependencies() {
        let m = AppManifest::parse(MANIFEST, Path::new("/app")).unwrap();
        assert_eq!(m.name, "cairn");
        assert!(m.variables["tier_profiles"].required);
        let gw = &m.components["gateway"];
        assert_eq!(gw.source, PathBuf::from("/app/gw.wasm"));
        assert_eq!(gw.dependencies[0].name, "cairn:kernel/memory@0.1.0");
        assert!(gw.dependencies[0].inherit_configuration);
        assert_eq!(m.cron[0].component, "derive");
        assert_eq!(m.route_for("/v1/memory/write").unwrap().component, "gateway");
        assert_eq!(m.route_for("/v1/admin/derive/status").unwrap().component, "derive");
        assert_eq!(m.route_for("/v1/admin/derive").unwrap().component, "derive");
        assert_eq!(m.route_for("/v1/admin/derivex").unwrap().component, "gateway");
    }

    #[test]
    fn rejects_bad_names_and_versions() {
        assert!(check_variable_name("admin_token").is_ok());
        for bad in ["Admin", "_x", "x_", "a__b", "1a", ""] {
            assert!(check_variable_name(bad).is_err(), "{bad}");
        }
        assert!(AppManifest::parse("spin_manifest_version = 1", Path::new(".")).is_err());
    }
}

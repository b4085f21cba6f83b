//! Reading `spin.toml` (Spin manifest v2) as our app manifest, so Spin and
//! `cairn up` serve the same routes, components, dependencies and variables.
//!
//! The file is checked the way Spin 4.0 checks it (schema with unknown
//! fields refused, identifier rules, variables `required` xor `default`,
//! dependency normalization and validation, HTTP routes with the app's
//! `base`): a manifest Spin refuses is refused here, with an equivalent
//! message. Where Spin accepts something `cairn` does not do (registry or
//! URL sources, inline components, files, key-value stores, static
//! responses, wagi), `cairn` refuses it by name rather than ignore it.
//! docs/spin.md lists both.
//!
//! Template expressions (`"{{ name }}"`) in component variables are
//! expanded against the application variables (crate::variables).

mod dependencies;
mod ids;
mod schema;

pub use dependencies::{Dependency, DependencyName, Inherit};
use dependencies::{DependencyTarget, TargetSource};
use ids::{check_kebab, check_kebab_or_snake, check_lower_snake};
use schema::{RawComponent, RawCronTrigger, RawHttpTrigger, RawManifest};

use anyhow::{Context, Result, anyhow, bail, ensure};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An application variable declared in `[variables]`.
#[derive(Debug, Clone)]
pub struct VariableDecl {
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
}

#[derive(Debug, Clone)]
pub struct ComponentDecl {
    pub id: String,
    pub source: PathBuf,
    pub sqlite_databases: Vec<String>,
    /// `allowed_outbound_hosts`, `postgres://host:port` entries whose
    /// variable templates (`postgres://{{ database_host }}`) are expanded at
    /// load ([`ComponentDecl::postgres_hosts`]): what the component may open
    /// through `spin:postgres`.
    pub allowed_outbound_hosts: Vec<String>,
    /// Variable name -> template (`"{{ admin_token }}"` or a literal).
    pub variables: BTreeMap<String, String>,
    /// In manifest order (Spin composes them in that order).
    pub dependencies: Vec<Dependency>,
    /// Models the component may use through `fermyon:spin/llm` (Spin's `ai_models`).
    pub ai_models: Vec<String>,
}

/// An HTTP route, with the app's `base` applied: `/exact` or `/prefix/...`
/// (wildcard).
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

/// The SQLite labels that exist without runtime configuration (Spin's
/// default database, `.spin/sqlite_db.db` under Spin, `<data-dir>/cairn.db`
/// under cairn).
const SQLITE_LABELS: &[&str] = &["default"];

impl AppManifest {
    /// Reads and checks a manifest file.
    pub fn load(path: &Path) -> Result<AppManifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading app manifest {}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, &dir).with_context(|| format!("in app manifest {}", path.display()))
    }

    pub fn parse(text: &str, dir: &Path) -> Result<AppManifest> {
        let probe: toml::Table = toml::from_str(text)?;
        let version = probe.get("spin_manifest_version");
        if version.and_then(toml::Value::as_integer) != Some(2) {
            bail!(
                "spin_manifest_version must be 2 (got {}); cairn reads manifest v2 only",
                version.map(ToString::to_string).unwrap_or_else(|| "nothing".into())
            );
        }
        let raw: RawManifest = toml::from_str(text)?;

        let mut variables = BTreeMap::new();
        for (name, v) in raw.variables {
            check_lower_snake(&name).map_err(|e| anyhow!("invalid variable name {name:?}: {e}"))?;
            ensure!(v.required ^ v.default.is_some(), "variable {name:?}: must be `required` OR have a `default`");
            variables.insert(name, VariableDecl { default: v.default, required: v.required, secret: v.secret });
        }

        for id in raw.components.keys() {
            check_kebab(id).map_err(|e| anyhow!("invalid component id {id:?}: {e}"))?;
        }
        let targets: BTreeMap<String, DependencyTarget> = raw
            .components
            .iter()
            .map(|(id, c)| Ok((id.clone(), dependency_target(dir, id, c)?)))
            .collect::<Result<_>>()?;

        let mut components = BTreeMap::new();
        for (id, c) in raw.components {
            let decl = component_decl(dir, &id, c, &targets).with_context(|| format!("component `{id}`"))?;
            components.insert(id, decl);
        }

        let base = match raw.application.trigger_global_configs.get("http").and_then(|t| t.get("base")) {
            None => "/".to_string(),
            Some(toml::Value::String(b)) => b.clone(),
            Some(other) => bail!("application.trigger.http.base must be a string, got {other}"),
        };
        let mut http_routes: Vec<HttpRoute> = Vec::new();
        let mut cron = Vec::new();
        for (kind, triggers) in raw.triggers {
            for t in triggers {
                match kind.as_str() {
                    "http" => {
                        let t: RawHttpTrigger = toml::Value::Table(t).try_into().context("invalid [[trigger.http]]")?;
                        let Some(route) = http_route(&base, &t, &components)? else { continue };
                        // Spin keeps the last of two triggers on one route (and warns).
                        if let Some(old) = http_routes.iter().position(|r| r.route == route.route) {
                            tracing::warn!(route = %route.route, replaced = %http_routes[old].component, effective = %route.component, "duplicate route");
                            http_routes.remove(old);
                        }
                        http_routes.push(route);
                    }
                    "cron" => {
                        let t: RawCronTrigger = toml::Value::Table(t).try_into().context("invalid [[trigger.cron]]")?;
                        let component = trigger_component(&t.component, &components, "trigger.cron")?;
                        cron.push(CronSchedule { component, cron_expression: t.cron_expression });
                    }
                    other => bail!("trigger type `{other}` is not served by cairn (it serves `http` and `cron`)"),
                }
            }
        }
        Ok(AppManifest { name: raw.application.name, dir: dir.to_path_buf(), variables, http_routes, cron, components })
    }

    /// The component serving `path`: an exact route wins, then the longest
    /// wildcard prefix (what Spin's router picks among these route forms).
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

/// What a component would bring as someone's `{ component = "id" }` dependency.
fn dependency_target(dir: &Path, id: &str, c: &RawComponent) -> Result<DependencyTarget> {
    let source = match &c.source {
        toml::Value::String(path) => TargetSource::Local(dir.join(path)),
        toml::Value::Table(t) => {
            let s = |k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_string);
            match (s("url"), s("digest"), s("package"), s("version")) {
                (Some(url), Some(digest), None, None) if t.len() == 2 => TargetSource::Remote { url, digest },
                (None, None, Some(package), Some(version)) => {
                    TargetSource::Registry { registry: s("registry"), package, version }
                }
                _ => bail!(
                    "component `{id}`: `source` must be a path, {{ url, digest }} or {{ registry?, package, version }}"
                ),
            }
        }
        other => bail!("component `{id}`: `source` must be a path or a table, got {other}"),
    };
    #[rustfmt::skip]
    let resources: Vec<&'static str> = [
        ("ai_models", !c.ai_models.is_empty()),
        ("allowed_http_hosts", !c.allowed_http_hosts.is_empty()),
        ("allowed_outbound_hosts", !c.allowed_outbound_hosts.is_empty()),
        ("dependencies", !c.dependencies.is_empty()),
        ("environment", !c.environment.is_empty()),
        ("files", !c.files.is_empty()),
        ("key_value_stores", !c.key_value_stores.is_empty()),
        ("sqlite_databases", !c.sqlite_databases.is_empty()),
        ("variables", !c.variables.is_empty()),
    ].into_iter().filter(|(_, set)| *set).map(|(name, _)| name).collect();
    Ok(DependencyTarget { source, resources })
}

impl ComponentDecl {
    /// The `postgres://host:port` addresses the component may open, its
    /// `allowed_outbound_hosts` with templates expanded by `expand` (Spin
    /// substitutes application variables there at load time too).
    pub fn postgres_hosts(&self, expand: impl Fn(&str) -> Result<String>) -> Result<Vec<String>> {
        self.allowed_outbound_hosts
            .iter()
            .map(|entry| {
                let expanded = expand(entry)
                    .with_context(|| format!("component `{}`: allowed_outbound_hosts entry {entry:?}", self.id))?;
                postgres_host(&expanded)
                    .with_context(|| format!("component `{}`: allowed_outbound_hosts entry {entry:?}", self.id))
            })
            .collect()
    }
}

/// An `allowed_outbound_hosts` entry cairn serves: `postgres://host:port`
/// (the only outbound connection its host makes for a component). A
/// template is checked for its scheme here and in full once expanded.
fn postgres_host(entry: &str) -> Result<String> {
    let Some(rest) = entry.strip_prefix("postgres://") else {
        bail!("allowed_outbound_hosts entry {entry:?}: cairn serves only postgres://host:port (docs/spin.md)");
    };
    if rest.contains("{{") {
        return Ok(entry.to_string());
    }
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(entry.to_string()),
        _ => bail!("allowed_outbound_hosts entry {entry:?}: expected postgres://host:port"),
    }
}

fn component_decl(
    dir: &Path,
    id: &str,
    c: RawComponent,
    targets: &BTreeMap<String, DependencyTarget>,
) -> Result<ComponentDecl> {
    for name in c.variables.keys() {
        check_lower_snake(name).map_err(|e| anyhow!("invalid variable name {name:?}: {e}"))?;
    }
    for label in c.sqlite_databases.iter().chain(&c.key_value_stores) {
        check_kebab_or_snake(label).map_err(|e| anyhow!("invalid store label {label:?}: {e}"))?;
    }
    if let Some(label) = c.sqlite_databases.iter().find(|l| !SQLITE_LABELS.contains(&l.as_str())) {
        bail!("uses SQLite database '{label}', which is not defined (cairn serves only 'default')");
    }
    // Resources Spin grants that cairn's host does not serve: refuse them
    // by name instead of starting an app that cannot work.
    for (field, set) in [
        ("files", !c.files.is_empty()),
        ("environment", !c.environment.is_empty()),
        ("key_value_stores", !c.key_value_stores.is_empty()),
        ("allowed_http_hosts", !c.allowed_http_hosts.is_empty()),
    ] {
        if set {
            bail!("`{field}` is not supported by cairn (docs/spin.md)");
        }
    }
    let allowed_outbound_hosts =
        c.allowed_outbound_hosts.iter().map(|h| postgres_host(h)).collect::<Result<Vec<_>>>()?;
    let source = match &c.source {
        toml::Value::String(path) => dir.join(path),
        _ => bail!("only local `source` paths are loaded by cairn; got {}", c.source),
    };
    let mut raw_deps: Vec<(String, dependencies::RawDependency)> = c.dependencies.into_iter().collect();
    dependencies::normalize_inherit(id, c.dependencies_inherit_configuration, &mut raw_deps)?;
    let dependencies = dependencies::resolve(id, dir, raw_deps, |t| targets.get(t).cloned())?;
    Ok(ComponentDecl {
        id: id.to_string(),
        source,
        sqlite_databases: c.sqlite_databases,
        allowed_outbound_hosts,
        variables: c.variables.into_iter().collect(),
        dependencies,
        ai_models: c.ai_models,
    })
}

/// The component a trigger names (a reference; Spin also takes an inline
/// component table, cairn does not).
fn trigger_component(v: &toml::Value, components: &BTreeMap<String, ComponentDecl>, what: &str) -> Result<String> {
    let toml::Value::String(id) = v else {
        bail!("{what}: inline components are not supported by cairn; declare [component.<id>] and name it");
    };
    ensure!(components.contains_key(id), "{what} names unknown component `{id}`");
    Ok(id.clone())
}

/// One `[[trigger.http]]` as a route with the app's base; `None` for a
/// private endpoint (`route = { private = true }`), which has no route.
fn http_route(
    base: &str,
    t: &RawHttpTrigger,
    components: &BTreeMap<String, ComponentDecl>,
) -> Result<Option<HttpRoute>> {
    let component = match (&t.component, &t.static_response) {
        (None, None) => bail!("Triggers must specify either component or static_response - {} has neither", t.id),
        (Some(_), Some(_)) => bail!("Triggers must specify either component or static_response - {} has both", t.id),
        (None, Some(_)) => bail!("trigger.http `static_response` is not supported by cairn"),
        (Some(c), None) => trigger_component(c, components, "trigger.http")?,
    };
    if let Some(executor) = &t.executor {
        let kind = executor.get("type").and_then(toml::Value::as_str).unwrap_or("http");
        ensure!(kind == "http" || kind == "spin", "trigger.http executor `{kind}` is not supported by cairn");
    }
    let raw = match &t.route {
        toml::Value::String(s) => s.clone(),
        toml::Value::Table(tb) => match tb.get("private") {
            Some(toml::Value::Boolean(true)) if tb.len() == 1 => return Ok(None),
            _ => bail!("route must be a string pattern or '{{ private = true }}': '{component}' has {tb}"),
        },
        other => bail!("route must be a string pattern or '{{ private = true }}': '{component}' has {other}"),
    };
    Ok(Some(HttpRoute { route: with_base(base, &raw), component }))
}

/// Spin's `sanitize_with_base`: the route made absolute, one trailing `/`
/// stripped from base and route, then joined (`/` + `/...` = `/...`).
fn with_base(base: &str, route: &str) -> String {
    let route = if route.starts_with('/') { route.to_string() } else { format!("/{route}") };
    let strip = |s: &str| s.strip_suffix('/').unwrap_or(s).to_string();
    let joined = format!("{}{}", strip(base), strip(&route));
    if joined.is_empty() { "/".into() } else { joined }
}

/// Spin's variable name rule (`LowerSnakeId`).
pub fn check_variable_name(name: &str) -> Result<()> {
    check_lower_snake(name).map_err(|e| anyhow!("invalid variable name '{name}': {e}"))
}

#[cfg(test)]
mod tests;

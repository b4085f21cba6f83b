//! The variables capability (`fermyon:spin/variables@2.0.0`).
//!
//! Application variables (`[variables]` in spin.toml) are resolved once at
//! start-up, lowest precedence first: the manifest's defaults, the tier
//! profiles file (`tier_profiles`, `default_tier`), `SPIN_VARIABLE_<NAME>`
//! environment variables (as Spin reads them), then CLI flags. Each
//! component then sees exactly the variables its `[component.x.variables]`
//! table lists, with `{{ name }}` templates expanded — dependencies that
//! inherit configuration see their parent's.

pub mod host;

use crate::app_manifest::{AppManifest, ComponentDecl, check_variable_name};
use anyhow::{Result, bail};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Resolved application variables.
#[derive(Debug, Clone, Default)]
pub struct AppVariables {
    values: BTreeMap<String, String>,
}

impl AppVariables {
    /// Resolves the app's variables from their sources (see the module docs).
    /// `env` yields `(NAME, value)` pairs of the process environment.
    pub fn resolve(
        manifest: &AppManifest,
        tier_values: &BTreeMap<String, String>,
        env: impl Iterator<Item = (String, String)>,
        cli: &BTreeMap<String, String>,
    ) -> Result<AppVariables> {
        let mut values = BTreeMap::new();
        for (name, decl) in &manifest.variables {
            if let Some(d) = &decl.default {
                values.insert(name.clone(), d.clone());
            }
        }
        for (k, v) in tier_values {
            if manifest.variables.contains_key(k) {
                values.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in env {
            if let Some(name) = k.strip_prefix("SPIN_VARIABLE_") {
                let name = name.to_ascii_lowercase();
                if manifest.variables.contains_key(&name) {
                    values.insert(name, v);
                }
            }
        }
        for (k, v) in cli {
            check_variable_name(k)?;
            if !manifest.variables.contains_key(k) {
                bail!("variable '{k}' is not declared in the manifest's [variables]");
            }
            values.insert(k.clone(), v.clone());
        }
        for (name, decl) in &manifest.variables {
            if decl.required && !values.contains_key(name) {
                bail!("required variable '{name}' has no value (set SPIN_VARIABLE_{})", name.to_ascii_uppercase());
            }
        }
        Ok(AppVariables { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Appends `items` to the comma-separated list variable `name` (a
    /// declared one only), after what the sources set and without repeats.
    pub fn extend_list(&mut self, name: &str, items: &[String]) {
        let Some(value) = self.values.get_mut(name) else { return };
        let mut list: Vec<String> =
            value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
        for item in items {
            if !list.iter().any(|l| l.eq_ignore_ascii_case(item)) {
                list.push(item.clone());
            }
        }
        *value = list.join(",");
    }

    /// The variables component `c` sees, templates expanded.
    pub fn for_component(&self, c: &ComponentDecl) -> Result<ComponentVariables> {
        let mut out = HashMap::new();
        for (name, template) in &c.variables {
            out.insert(
                name.clone(),
                self.expand(template).map_err(|e| anyhow::anyhow!("component '{}' variable '{name}': {e}", c.id))?,
            );
        }
        Ok(ComponentVariables(Arc::new(out)))
    }

    /// Expands `{{ name }}` references in `template`.
    pub fn expand(&self, template: &str) -> Result<String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find("}}") else { bail!("unterminated '{{{{' in template") };
            let name = rest[start + 2..start + end].trim();
            match self.values.get(name) {
                Some(v) => out.push_str(v),
                None => bail!("template names undefined variable '{name}'"),
            }
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The variables one component may read.
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables(pub Arc<HashMap<String, String>>);

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest() -> AppManifest {
        AppManifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
admin_token = { default = "" }
tier_profiles = { default = "{}" }
greeting = { default = "hi" }
[[trigger.http]]
route = "/..."
component = "gw"
[component.gw]
source = "gw.wasm"
[component.gw.variables]
admin_token = "{{ admin_token }}"
hello = "{{greeting}}, world"
"#,
            Path::new("."),
        )
        .unwrap()
    }

    #[test]
    fn precedence_and_templates() {
        let m = manifest();
        let tiers = BTreeMap::from([("tier_profiles".to_string(), "{\"tiers\":{}}".to_string())]);
        let env =
            vec![("SPIN_VARIABLE_ADMIN_TOKEN".to_string(), "from-env".to_string()), ("PATH".into(), "/bin".into())];
        let vars = AppVariables::resolve(&m, &tiers, env.clone().into_iter(), &BTreeMap::new()).unwrap();
        assert_eq!(vars.get("admin_token"), Some("from-env"));
        assert_eq!(vars.get("tier_profiles"), Some("{\"tiers\":{}}"));
        let cli = BTreeMap::from([("admin_token".to_string(), "from-cli".to_string())]);
        let vars = AppVariables::resolve(&m, &tiers, env.into_iter(), &cli).unwrap();
        let gw = vars.for_component(&m.components["gw"]).unwrap();
        assert_eq!(gw.0["admin_token"], "from-cli");
        assert_eq!(gw.0["hello"], "hi, world");
        let undeclared = BTreeMap::from([("nope".to_string(), "x".to_string())]);
        assert!(AppVariables::resolve(&m, &tiers, std::iter::empty(), &undeclared).is_err());
    }

    #[test]
    fn extend_list_appends_to_declared_lists() {
        let m = manifest();
        let cli = BTreeMap::from([("greeting".to_string(), "a, b".to_string())]);
        let mut vars = AppVariables::resolve(&m, &BTreeMap::new(), std::iter::empty(), &cli).unwrap();
        vars.extend_list("greeting", &["B".into(), "c".into()]);
        assert_eq!(vars.get("greeting"), Some("a,b,c"));
        vars.extend_list("admin_token", &["x".into()]);
        assert_eq!(vars.get("admin_token"), Some("x"), "an empty list gets the items");
        vars.extend_list("nope", &["x".into()]);
        assert_eq!(vars.get("nope"), None, "undeclared variables stay undeclared");
    }
}

//! Spin's manifest v2 schema as serde structs (`spin-manifest`
//! `schema::v2`, Spin 4.0): the same fields, and unknown fields refused
//! where Spin refuses them, so a typo that stops `spin up` stops `cairn up`.
//! Fields cairn has no use for are read and then ignored (or refused by
//! [`super`] when they ask for something cairn does not do).

// Many fields are only read so that the schema is Spin's (an unknown or
// misspelled field is refused); cairn does not use them.
#![allow(dead_code)]

use super::dependencies::RawDependency;
use indexmap::IndexMap;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    pub spin_manifest_version: toml::Value,
    pub application: RawApplication,
    #[serde(default)]
    pub variables: IndexMap<String, RawVariable>,
    /// Trigger type -> its triggers; each trigger's own fields are the
    /// trigger type's to define (read in [`super`]).
    #[serde(rename = "trigger", default)]
    pub triggers: IndexMap<String, Vec<toml::Table>>,
    #[serde(rename = "component", default)]
    pub components: IndexMap<String, RawComponent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApplication {
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub targets: Vec<toml::Value>,
    /// Trigger-wide settings, e.g. `[application.trigger.http] base = "/api"`.
    #[serde(rename = "trigger", default)]
    pub trigger_global_configs: IndexMap<String, toml::Table>,
    #[serde(default)]
    pub tool: IndexMap<String, toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariable {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawComponent {
    /// A path (string), `{ url, digest }` or `{ registry?, package, version }`.
    pub source: toml::Value,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub variables: IndexMap<String, String>,
    #[serde(default)]
    pub environment: IndexMap<String, String>,
    #[serde(default)]
    pub files: Vec<toml::Value>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub ai_models: Vec<String>,
    #[serde(default)]
    pub targets: Option<Vec<toml::Value>>,
    #[serde(default)]
    pub build: Option<RawBuild>,
    #[serde(default)]
    pub tool: IndexMap<String, toml::Table>,
    #[serde(default)]
    pub dependencies_inherit_configuration: Option<bool>,
    #[serde(default)]
    pub dependencies: IndexMap<String, RawDependency>,
    #[serde(default)]
    pub profile: IndexMap<String, toml::Table>,
}

/// `[component.x.build]`: what `spin build` runs (cairn does not build).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBuild {
    /// One command or several.
    pub command: toml::Value,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
}

/// The HTTP trigger's fields (`spin-http` `HttpTriggerConfig` plus the
/// trigger `id`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpTrigger {
    #[serde(default)]
    pub id: String,
    pub component: Option<toml::Value>,
    pub static_response: Option<toml::Table>,
    pub route: toml::Value,
    #[serde(default)]
    pub executor: Option<toml::Table>,
}

/// The cron trigger plugin's fields (`trigger-cron` 0.3/0.4
/// `CronTriggerConfig` plus the trigger `id`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCronTrigger {
    #[serde(default)]
    pub id: String,
    pub component: toml::Value,
    pub cron_expression: String,
}

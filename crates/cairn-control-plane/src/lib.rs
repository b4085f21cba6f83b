//! Cairn's control plane logic: tenants and projects ([`tenants`]), API
//! keys with hashed storage, rotation grace and uncached resolution
//! ([`api_keys`]), per-tenant quota profiles ([`quotas`]) and their token
//! buckets shared by every host process ([`quota_buckets`]), the storage
//! cap ([`storage`]), the tier
//! profiles ([`tiers`]) and where their tenants store ([`placement`]) and the provisioning verbs ([`provisioning`]), the hash-chained audit log every admin mutation
//! appends to ([`audit`]), the evidence registry anchored in it ([`evidence`]) and the weekly
//! governance reports archived there ([`governance_reports`]), the tenant dashboard and
//! diagnostics ([`dashboard`], [`diagnostics`]), the admin API's router ([`admin`]) and the
//! schema ([`schema`]). Used by the control and derive components.

pub mod admin;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod dashboard;
pub mod diagnostics;
pub mod evidence;
pub mod evidence_publish;
pub mod governance_reports;
pub mod key_usage;
pub mod latency;
pub mod page_cursor;
pub mod placement;
pub mod provisioning;
pub mod quota_buckets;
pub mod quotas;
pub mod releases;
pub mod schema;
pub mod schema_pg;
pub mod slo;
pub mod storage;
pub mod telemetry_retention;
pub mod tenants;
pub mod tiers;
pub mod upgrade_evidence;
pub mod timeseries;

//! Cairn's control plane logic (tenants, keys, quotas and tier profiles
//! land with the control-plane issue). So far: the hash-chained audit log
//! ([`audit`]) that operator actions append to, and its schema
//! ([`schema`]). Used by the control and derive components.

pub mod audit;
pub mod schema;

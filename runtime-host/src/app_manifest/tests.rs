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
"cairn:memory/memory@0.1.0" = { path = "kernel.wasm" }
"cairn:policy" = { component = "policy" }
[component.policy]
source = "policy.wasm"
[component.policy.build]
command = ["cargo build", "true"]
watch = ["src/**/*.rs"]
[component.derive]
source = "derive.wasm"
"#;

fn parse(text: &str) -> Result<AppManifest> {
    AppManifest::parse(text, Path::new("/app"))
}

fn err(text: &str) -> String {
    format!("{:#}", parse(text).expect_err("should be refused"))
}

/// MANIFEST with `from` replaced by `to` (which must occur).
fn edited(from: &str, to: &str) -> String {
    assert!(MANIFEST.contains(from), "{from}");
    MANIFEST.replacen(from, to, 1)
}

#[test]
fn parses_routes_components_and_dependencies() {
    let m = parse(MANIFEST).unwrap();
    assert_eq!(m.name, "cairn");
    assert!(m.variables["tier_profiles"].required);
    let gw = &m.components["gateway"];
    assert_eq!(gw.source, PathBuf::from("/app/gw.wasm"));
    let names: Vec<String> = gw.dependencies.iter().map(|d| d.name.to_string()).collect();
    assert_eq!(names, ["cairn:memory/memory@0.1.0", "cairn:policy"], "manifest order");
    assert_eq!(gw.dependencies[0].inherit, Inherit::All);
    assert_eq!(gw.dependencies[1].source, PathBuf::from("/app/policy.wasm"), "component reference -> its source");
    assert_eq!(m.cron[0].component, "derive");
    assert_eq!(m.route_for("/v1/memory/write").unwrap().component, "gateway");
    assert_eq!(m.route_for("/v1/admin/derive/status").unwrap().component, "derive");
    assert_eq!(m.route_for("/v1/admin/derive").unwrap().component, "derive");
    assert_eq!(m.route_for("/v1/admin/derivex").unwrap().component, "gateway");
}

#[test]
fn the_shipped_manifest_parses() {
    let dir = crate::repo_root();
    let m = AppManifest::load(&dir.join("spin.toml")).unwrap();
    let gw = &m.components["gateway"];
    let packages: Vec<&str> = gw.dependencies.iter().map(|d| d.name.registration_name()).collect();
    assert_eq!(packages, ["cairn:memory", "cairn:policy", "cairn:control"], "one package per dependency");
    for d in &gw.dependencies {
        assert_eq!(d.inherit, Inherit::All, "{}", d.name);
    }
}

#[test]
fn refuses_what_spin_refuses() {
    assert!(err("spin_manifest_version = 1").contains("must be 2"));
    // Unknown fields, as Spin's deny_unknown_fields.
    assert!(
        err(&edited("sqlite_databases = [\"default\"]", "sqlite_database = [\"default\"]")).contains("unknown field")
    );
    assert!(err(&edited("[application]", "[application]\nnmae = \"x\"")).contains("unknown field"));
    assert!(err(&edited("secret = true }", "secret = true, hidden = 1 }")).contains("unknown field"));
    assert!(err(&edited("cron_expression", "schedule = \"x\"\ncron_expression")).contains("unknown field"));
    // Variables: required xor default, lower snake_case names.
    assert!(err(&edited("{ required = true }", "{ }")).contains("must be `required` OR have a `default`"));
    assert!(err(&edited("{ required = true }", "{ required = true, default = \"x\" }")).contains("OR"));
    assert!(err(&edited("tier_profiles = {", "Tier_profiles = {")).contains("invalid variable name"));
    assert!(err(&edited("admin_token = \"{{", "admin-token = \"{{")).contains("invalid variable name"));
    // Component ids are kebab-case.
    assert!(err(&edited("[component.derive]", "[component.derive_x]")).contains("invalid component id"));
    // Dependencies: mutually exclusive inheritance switches, names, refs.
    let both = edited("{ path = \"kernel.wasm\" }", "{ path = \"kernel.wasm\", inherit_configuration = true }");
    assert!(err(&both).contains("mutually exclusive"));
    assert!(err(&edited("\"cairn:policy\"", "\"cairn:policy@0.1\"")).contains("invalid dependency name"));
    assert!(
        err(&edited("{ component = \"policy\" }", "{ component = \"nope\" }"))
            .contains("dependency ID nope does not exist")
    );
    let policy_with_vars = edited("source = \"policy.wasm\"", "source = \"policy.wasm\"\nvariables = { a = \"b\" }");
    assert!(
        err(&policy_with_vars).contains("cannot be used as a dependency of gateway because it specifies: variables")
    );
    let conflict = edited("\"cairn:policy\" =", "\"cairn:memory\" =");
    assert!(err(&conflict).contains("dependency conflicts with"), "{}", err(&conflict));
    // Routes: a table route must be exactly { private = true }.
    assert!(err(&edited("route = \"/...\"", "route = { private = false }")).contains("route must be a string pattern"));
    assert!(err(&edited("component = \"gateway\"\n[[trigger.http]]", "[[trigger.http]]")).contains("has neither"));
    assert!(
        err(&edited("[[trigger.cron]]\ncomponent = \"derive\"", "[[trigger.cron]]\ncomponent = \"nope\""))
            .contains("unknown component")
    );
}

#[test]
fn refuses_what_cairn_does_not_serve_by_name() {
    assert!(
        err(&edited("[component.derive]", "[component.derive]\nfiles = [\"x\"]")).contains("`files` is not supported")
    );
    assert!(
        err(&edited("[component.derive]", "[component.derive]\nkey_value_stores = [\"default\"]"))
            .contains("key_value_stores")
    );
    assert!(
        err(&edited("sqlite_databases = [\"default\"]", "sqlite_databases = [\"other\"]"))
            .contains("'other', which is not defined")
    );
    assert!(err(&edited("{ component = \"policy\" }", "\"1.0\"")).contains("cairn loads only local files"));
    assert!(
        err(&edited("source = \"derive.wasm\"", "source = { url = \"https://x/d.wasm\", digest = \"sha256:0\" }"))
            .contains("only local `source`")
    );
    assert!(
        err(&edited("[[trigger.cron]]", "[[trigger.redis]]\ncomponent = \"derive\"\n[[trigger.cron]]"))
            .contains("`redis` is not served")
    );
}

#[test]
fn outbound_hosts_are_postgres_addresses_only() {
    let granted =
        |hosts: &str| edited("[component.derive]", &format!("[component.derive]\nallowed_outbound_hosts = {hosts}"));
    let literal = |t: &str| Ok(t.to_string());
    let m = parse(&granted(r#"["postgres://db.internal:5432"]"#)).unwrap();
    assert_eq!(m.components["derive"].postgres_hosts(literal).unwrap(), ["postgres://db.internal:5432"]);
    assert!(m.components["gateway"].postgres_hosts(literal).unwrap().is_empty());
    assert!(err(&granted(r#"["https://api.example.com"]"#)).contains("only postgres://host:port"));
    assert!(err(&granted(r#"["postgres://db.internal"]"#)).contains("expected postgres://host:port"));
    // A template is expanded at load, then checked in full.
    let templated = parse(&granted(r#"["postgres://{{ db_host }}"]"#)).unwrap();
    let derive = &templated.components["derive"];
    let expanded = derive.postgres_hosts(|t| Ok(t.replace("{{ db_host }}", "10.0.0.5:6432"))).unwrap();
    assert_eq!(expanded, ["postgres://10.0.0.5:6432"]);
    let no_port = derive.postgres_hosts(|t| Ok(t.replace("{{ db_host }}", "10.0.0.5"))).unwrap_err();
    assert!(format!("{no_port:#}").contains("expected postgres://host:port"), "{no_port:#}");
    assert!(
        err(&edited("[component.derive]", "[component.derive]\nallowed_http_hosts = [\"x\"]"))
            .contains("`allowed_http_hosts` is not supported")
    );
}

#[test]
fn private_routes_base_and_duplicates() {
    let m = parse(&edited(
        "[[trigger.http]]\nroute = \"/v1/admin/derive/...\"",
        "[[trigger.http]]\nroute = { private = true }",
    ))
    .unwrap();
    assert_eq!(m.http_routes.len(), 1, "a private endpoint has no route");
    let based =
        parse(&edited("name = \"cairn\"", "name = \"cairn\"\n[application.trigger.http]\nbase = \"/api/\"")).unwrap();
    assert_eq!(based.route_for("/api/v1/admin/derive/tick").unwrap().component, "derive");
    assert_eq!(based.route_for("/api/v1/memory/write").unwrap().component, "gateway");
    assert!(based.route_for("/v1/memory/write").is_none());
    // Two triggers on one route: the later wins, as in Spin.
    let dup = parse(&edited(
        "route = \"/v1/admin/derive/...\"\ncomponent = \"derive\"",
        "route = \"/...\"\ncomponent = \"derive\"",
    ))
    .unwrap();
    assert_eq!(dup.route_for("/anything").unwrap().component, "derive");
    assert_eq!(with_base("/", "/..."), "/...");
    assert_eq!(with_base("/", "foo"), "/foo");
    assert_eq!(with_base("/base/", "/foo/"), "/base/foo");
}

#[test]
fn variable_names_follow_spin() {
    assert!(check_variable_name("admin_token").is_ok());
    for bad in ["Admin", "_x", "x_", "a__b", "1a", "", "x_2"] {
        assert!(check_variable_name(bad).is_err(), "{bad}");
    }
}

use std::time::Duration;

use mesh_core::compile::compile;
use mesh_core::snapshot::Snapshot;

use super::*;

/// The idle timeout for `db:5432` (subset `subset`) under `policy` (the cluster's
/// trafficPolicy) and `subset_policy` (subset `a`'s).
fn timeout_with(policy: &str, subset_policy: &str, subset: Option<&str>) -> Option<Duration> {
    let text = format!(
        r#"
clusters:
- host: db
  port: 5432
  endpoints: [{{address: "127.0.0.1:5432", labels: {{v: a}}}}]
  trafficPolicy: {policy}
  subsets: [{{name: a, labels: {{v: a}}, trafficPolicy: {subset_policy}}}]
"#
    );
    let snapshot = Snapshot::from_yaml(&text).expect("parses");
    let config = compile(&snapshot).expect("compiles");
    let cluster = config.cluster("db", 5432).expect("cluster");
    idle_timeout(&snapshot, cluster, subset)
}

#[test]
fn the_default_is_istios_hour() {
    assert_eq!(timeout_with("{}", "{}", None), Some(DEFAULT_IDLE_TIMEOUT));
    assert_eq!(DEFAULT_IDLE_TIMEOUT, Duration::from_secs(3600));
}

#[test]
fn the_cluster_setting_applies_and_zero_disables() {
    let policy = "{connectionPool: {tcp: {idleTimeout: 30s}}}";
    assert_eq!(
        timeout_with(policy, "{}", None),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        timeout_with(policy, "{}", Some("a")),
        Some(Duration::from_secs(30)),
        "a subset without its own pool inherits"
    );
    let off = "{connectionPool: {tcp: {idleTimeout: 0s}}}";
    assert_eq!(timeout_with(off, "{}", None), None);
}

#[test]
fn port_level_settings_and_subsets_take_precedence_by_whole_section() {
    let policy = "{connectionPool: {tcp: {idleTimeout: 30s}}, portLevelSettings: [{port: {number: 5432}, connectionPool: {tcp: {idleTimeout: 5s}}}]}";
    assert_eq!(
        timeout_with(policy, "{}", None),
        Some(Duration::from_secs(5))
    );
    let other_port = "{connectionPool: {tcp: {idleTimeout: 30s}}, portLevelSettings: [{port: {number: 9}, connectionPool: {tcp: {idleTimeout: 5s}}}]}";
    assert_eq!(
        timeout_with(other_port, "{}", None),
        Some(Duration::from_secs(30))
    );
    let subset = "{connectionPool: {tcp: {idleTimeout: 2s}}}";
    assert_eq!(
        timeout_with(policy, subset, Some("a")),
        Some(Duration::from_secs(2))
    );
    let subset_pool_without_idle = "{connectionPool: {tcp: {maxConnections: 5}}}";
    assert_eq!(
        timeout_with(policy, subset_pool_without_idle, Some("a")),
        Some(DEFAULT_IDLE_TIMEOUT),
        "the subset's pool replaces the cluster's whole section"
    );
}

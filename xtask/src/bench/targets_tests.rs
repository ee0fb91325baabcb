#![allow(clippy::unwrap_used)]

use super::*;

fn upstream() -> SocketAddr {
    "127.0.0.1:9000".parse().unwrap()
}

#[test]
fn the_mesh_snapshot_routes_everything_to_the_upstream() {
    let snapshot = mesh_snapshot(15001, upstream());
    let value: serde_yaml::Value = serde_yaml::from_str(&snapshot).unwrap();
    assert_eq!(
        value["listeners"][0]["address"].as_str(),
        Some("127.0.0.1:15001")
    );
    assert_eq!(
        value["clusters"][0]["endpoints"][0]["address"].as_str(),
        Some("127.0.0.1:9000")
    );
    assert_eq!(
        value["routeConfigs"][0]["virtualHosts"][0]["domains"][0].as_str(),
        Some("*")
    );
}

#[test]
fn nginx_keeps_a_keep_alive_pool_and_one_worker() {
    let config = nginx_config(Path::new("/tmp/b"), 8001, 8002, upstream());
    for expected in [
        "worker_processes 1;",
        "keepalive 64;",
        "proxy_http_version 1.1;",
        "proxy_set_header Connection \"\";",
        "server 127.0.0.1:9000;",
        "listen 127.0.0.1:8001;",
        "listen 127.0.0.1:8002 http2;",
        "access_log off;",
        "pid /tmp/b/nginx.pid;",
    ] {
        assert!(config.contains(expected), "missing {expected}:\n{config}");
    }
}

#[test]
fn haproxy_reuses_upstream_connections_on_one_thread() {
    let config = haproxy_config(8001, 8002, upstream());
    for expected in [
        "nbthread 1",
        "mode http",
        "http-reuse always",
        "bind 127.0.0.1:8002 proto h2",
        "server echo 127.0.0.1:9000",
    ] {
        assert!(config.contains(expected), "missing {expected}:\n{config}");
    }
}

#[test]
fn the_metrics_address_comes_from_the_ready_line() {
    let line = "mesh-proxy ready admin=127.0.0.1:1 health=127.0.0.1:2 metrics=127.0.0.1:3\n";
    assert_eq!(
        ready_line_addr(line, "metrics"),
        Some("127.0.0.1:3".parse().unwrap())
    );
    assert_eq!(
        ready_line_addr(line, "health"),
        Some("127.0.0.1:2".parse().unwrap())
    );
    assert_eq!(ready_line_addr("mesh-proxy ready", "metrics"), None);
}

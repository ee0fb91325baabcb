//! `to`: hosts, ports, methods and paths.

use super::Want::*;
use super::*;

/// An ALLOW policy `foo/p` with one rule whose only operation is `operation` (flow YAML).
fn allow_to(operation: &str) -> [(&'static str, String); 1] {
    [(
        "foo/p",
        format!("{{rules: [{{to: [{{operation: {operation}}}]}}]}}"),
    )]
}

#[test]
fn methods_and_ports() {
    check(vec![
        row(
            "method",
            &allow_to("{methods: [GET]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "method, other",
            &allow_to("{methods: [GET]}"),
            get().method("POST"),
            NotAllowed,
        ),
        row(
            "methods are case-sensitive",
            &allow_to("{methods: [get]}"),
            get(),
            NotAllowed,
        ),
        row(
            "notMethods excludes",
            &allow_to("{notMethods: [DELETE]}"),
            get().method("DELETE"),
            NotAllowed,
        ),
        row(
            "notMethods admits others",
            &allow_to("{notMethods: [DELETE]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "port",
            &allow_to("{ports: ['8080']}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "port, other",
            &allow_to("{ports: ['9090']}"),
            get(),
            NotAllowed,
        ),
        row(
            "notPorts",
            &allow_to("{notPorts: ['8080']}"),
            get(),
            NotAllowed,
        ),
        row(
            "operation fields are ANDed",
            &allow_to("{methods: [GET], ports: ['9090']}"),
            get(),
            NotAllowed,
        ),
        row(
            "operations are ORed",
            &[(
                "foo/p",
                "{rules: [{to: [{operation: {methods: [POST]}}, {operation: {ports: ['8080']}}]}]}",
            )],
            get(),
            AllowedBy("foo/p"),
        ),
    ]);
}

#[test]
fn hosts() {
    check(vec![
        row(
            "host, any case",
            &allow_to("{hosts: [Web.Default.SVC.cluster.local]}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "host suffix",
            &allow_to("{hosts: ['*.example.com']}"),
            get().host("api.example.com"),
            AllowedBy("foo/p"),
        ),
        row(
            "host suffix, port sent",
            &allow_to("{hosts: ['*.example.com']}"),
            get().host("api.example.com:8080"),
            NotAllowed,
        ),
        row(
            "host prefix covers the port",
            &allow_to("{hosts: ['api.example.com*']}"),
            get().host("api.example.com:8080"),
            AllowedBy("foo/p"),
        ),
        row(
            "host presence, no host sent",
            &allow_to("{hosts: ['*']}"),
            get().host(""),
            NotAllowed,
        ),
        row(
            "notHosts",
            &allow_to("{notHosts: ['*.internal']}"),
            get().host("db.internal"),
            NotAllowed,
        ),
    ]);
}

#[test]
fn paths() {
    check(vec![
        row(
            "path exact",
            &allow_to("{paths: [/data]}"),
            get().path("/data"),
            AllowedBy("foo/p"),
        ),
        row(
            "path exact, trailing slash",
            &allow_to("{paths: [/data]}"),
            get().path("/data/"),
            NotAllowed,
        ),
        row(
            "path exact ignores the query",
            &allow_to("{paths: [/data]}"),
            get().path("/data?x=1"),
            AllowedBy("foo/p"),
        ),
        row(
            "path prefix",
            &allow_to("{paths: [/api/*]}"),
            get().path("/api/v1/users"),
            AllowedBy("foo/p"),
        ),
        row(
            "path prefix is not a segment match",
            &allow_to("{paths: [/api/*]}"),
            get().path("/apiv1"),
            NotAllowed,
        ),
        row(
            "path suffix",
            &allow_to("{paths: ['*.png']}"),
            get().path("/img/logo.png"),
            AllowedBy("foo/p"),
        ),
        row(
            "path suffix before the query",
            &allow_to("{paths: ['*.png']}"),
            get().path("/img/logo.png?v=2"),
            AllowedBy("foo/p"),
        ),
        row(
            "path presence",
            &allow_to("{paths: ['*']}"),
            get(),
            AllowedBy("foo/p"),
        ),
        row(
            "notPaths excludes",
            &allow_to("{notPaths: [/admin*]}"),
            get().path("/admin/users"),
            NotAllowed,
        ),
        row(
            "notPaths admits others",
            &allow_to("{notPaths: [/admin*]}"),
            get().path("/home"),
            AllowedBy("foo/p"),
        ),
        row(
            "template {*}: one segment",
            &allow_to("{paths: ['/users/{*}/profile']}"),
            get().path("/users/42/profile"),
            AllowedBy("foo/p"),
        ),
        row(
            "template {*}: not two segments",
            &allow_to("{paths: ['/users/{*}/profile']}"),
            get().path("/users/4/2/profile"),
            NotAllowed,
        ),
        row(
            "template {**}: any depth",
            &allow_to("{paths: ['/static/{**}']}"),
            get().path("/static/css/a/site.css"),
            AllowedBy("foo/p"),
        ),
        row(
            "template {**}: other root",
            &allow_to("{paths: ['/static/{**}']}"),
            get().path("/api/x"),
            NotAllowed,
        ),
        row(
            "a * in the middle is literal",
            &allow_to("{paths: ['/a/*/b']}"),
            get().path("/a/x/b"),
            NotAllowed,
        ),
    ]);
}

use super::*;

#[test]
fn accepts_what_istio_accepts() {
    for host in [
        "reviews",
        "reviews.default.svc.cluster.local",
        "*.example.com",
        "*",
        "*-api.example.com",
        "Example.COM",
        "example.com.",
    ] {
        assert_eq!(check_wildcard_domain(host), Ok(()), "{host}");
    }
    assert_eq!(check_domain("api.example.com"), Ok(()));
}

#[test]
fn names_the_problem() {
    let cases = [
        ("", "must not be empty"),
        ("re views", "contains whitespace"),
        ("reviews:9080", "must not include a port"),
        ("example.com/api", "must not include a path"),
        ("https://example.com", "must not include a scheme"),
        ("foo.*.com", "wildcard out of place"),
        ("f*o.com", "wildcard out of place"),
        ("foo_bar.com", "label \"foo_bar\""),
        ("a..b", "label \"\""),
        ("10.0.0.1", "all digits"),
    ];
    for (host, expected) in cases {
        let err = check_wildcard_domain(host).expect_err(host);
        assert!(err.contains(expected), "{host}: {err}");
    }
    assert!(check_domain("*.example.com").is_err());
}

#[test]
fn namespaced_hosts() {
    for (entry, scope) in [
        ("./*", Scope::Sidecar),
        ("istio-system/*", Scope::Sidecar),
        ("*/reviews.default.svc.cluster.local", Scope::Sidecar),
        ("~/*", Scope::Sidecar),
        ("*", Scope::Gateway),
        ("bookinfo.example.com", Scope::Gateway),
        ("prod/*.example.com", Scope::Gateway),
        ("10.1.2.3", Scope::Gateway),
    ] {
        assert_eq!(check_namespaced_host(entry, scope), Ok(()), "{entry}");
    }
    let cases = [
        (
            "reviews.default.svc.cluster.local",
            Scope::Sidecar,
            "namespace/dnsName",
        ),
        ("./reviews", Scope::Sidecar, "short name"),
        ("Prod/*", Scope::Sidecar, "invalid namespace"),
        ("~/*", Scope::Gateway, "invalid namespace"),
        ("/*", Scope::Gateway, "both a namespace and a DNS name"),
        ("*/*foo.com", Scope::Gateway, "partial wildcard"),
        ("reviews", Scope::Gateway, "short name"),
    ];
    for (entry, scope, expected) in cases {
        let err = check_namespaced_host(entry, scope).expect_err(entry);
        assert!(err.contains(expected), "{entry}: {err}");
    }
}

#[test]
fn resolves_short_names_in_the_namespace() {
    assert_eq!(
        resolve("reviews", "default"),
        "reviews.default.svc.cluster.local"
    );
    assert_eq!(
        resolve("Reviews.prod.svc.cluster.local.", "x"),
        "reviews.prod.svc.cluster.local"
    );
    assert_eq!(resolve("*.example.com", "x"), "*.example.com");
}

#[test]
fn wildcards_cover_hosts() {
    assert!(covers("*", "anything.com"));
    assert!(covers("*.example.com", "api.example.com"));
    assert!(!covers("*.example.com", "example.com"));
    assert!(covers("*.example.com", "*.api.example.com"));
    assert!(!covers("*.api.example.com", "*.example.com"));
    assert!(covers(
        "reviews.default.svc.cluster.local",
        "reviews.default.svc.cluster.local"
    ));
    assert!(!covers("api.example.com", "*.example.com"));
}

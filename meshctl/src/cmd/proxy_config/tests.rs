//! The tables from documents a real proxy served: productpage-v1 of examples/bookinfo with
//! a reviews VirtualService (a header match) and outlier detection on ratings, after
//! ratings-v2's 500 had it ejected.

use serde_json::Value;

use super::*;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/proxy-config/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn documents() -> Documents {
    Documents {
        config_dump: fixture("productpage-config_dump.json"),
        listeners: fixture("productpage-listeners.json"),
        clusters: fixture("productpage-clusters.json"),
        certs: Some(fixture("productpage-certs.json")),
    }
}

fn table(kind: Kind) -> String {
    let mut out = Vec::new();
    documents()
        .write_table(kind, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8(out).unwrap_or_default()
}

/// The cells of the line whose first cell is `first`, split on runs of 2+ spaces.
fn rows<'a>(text: &'a str, first: &str) -> Vec<Vec<&'a str>> {
    text.lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|cells| cells.first() == Some(&first))
        .collect()
}

#[test]
fn routes_show_each_route_of_each_virtual_host() {
    let text = table(Kind::Routes);
    let header = rows(&text, "NAME");
    assert_eq!(
        header,
        vec![vec![
            "NAME",
            "VHOST NAME",
            "DOMAINS",
            "MATCH",
            "VIRTUAL SERVICE"
        ]],
        "{text}"
    );
    let outbound = rows(&text, "outbound");
    // details, productpage, ratings: a default route each; reviews: the VirtualService's two.
    assert_eq!(outbound.len(), 5, "{text}");
    let reviews: Vec<&Vec<&str>> = outbound
        .iter()
        .filter(|r| r[1] == "reviews.default.svc.cluster.local:9080")
        .collect();
    assert_eq!(reviews.len(), 2, "{text}");
    assert_eq!(reviews[0][2], "reviews, reviews.default + 2 more...");
    assert_eq!(reviews[0][3], "/reviews* end-user=jason");
    assert_eq!(reviews[1][3], "/*");
    assert_eq!(
        reviews[1][4], "default/reviews",
        "the VirtualService the routes come from"
    );
    let details: Vec<&Vec<&str>> = outbound
        .iter()
        .filter(|r| r[1] == "details.default.svc.cluster.local:9080")
        .collect();
    assert_eq!(details[0][4], "-", "a default route has no VirtualService");
    let inbound = rows(&text, "inbound|9080");
    assert_eq!(
        inbound,
        vec![vec!["inbound|9080", "inbound|9080", "*", "/*", "-"]]
    );
}

#[test]
fn clusters_have_a_row_per_subset() {
    let text = table(Kind::Clusters);
    let reviews = rows(&text, "reviews.default.svc.cluster.local");
    let subsets: Vec<&str> = reviews.iter().map(|r| r[2]).collect();
    assert_eq!(subsets, ["-", "v1", "v2", "v3"], "{text}");
    assert_eq!(
        reviews[1],
        [
            "reviews.default.svc.cluster.local",
            "9080",
            "v1",
            "outbound",
            "EDS",
            "default/reviews"
        ]
    );
    assert_eq!(
        rows(&text, "inbound|9080"),
        vec![vec!["inbound|9080", "27000", "-", "inbound", "STATIC", "-"]]
    );
}

#[test]
fn listeners_show_where_they_are_bound_and_where_they_send() {
    let text = table(Kind::Listeners);
    assert_eq!(
        rows(&text, "127.55.0.2"),
        vec![
            vec![
                "127.55.0.2",
                "9080",
                "HTTP; mTLS PERMISSIVE",
                "Route: inbound|9080"
            ],
            vec!["127.55.0.2", "15001", "HTTP", "Route: outbound"],
        ],
        "{text}"
    );
}

#[test]
fn a_listener_that_is_not_bound_says_so() {
    let mut documents = documents();
    documents.listeners = serde_json::json!([]);
    let mut out = Vec::new();
    documents
        .write_table(Kind::Listeners, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8(out).unwrap_or_default();
    assert!(text.contains("Route: outbound (NOT BOUND)"), "{text}");
}

#[test]
fn endpoints_show_the_ejected_one() {
    let text = table(Kind::Endpoints);
    let ratings = "outbound|9080||ratings.default.svc.cluster.local";
    assert_eq!(
        rows(&text, "127.55.0.8:9080"),
        vec![vec!["127.55.0.8:9080", "EJECTED", "FAILED", ratings]],
        "{text}"
    );
    assert_eq!(
        rows(&text, "127.55.0.7:9080"),
        vec![vec!["127.55.0.7:9080", "HEALTHY", "OK", ratings]]
    );
    // No outlier detection on details: nothing checked.
    assert_eq!(rows(&text, "127.55.0.3:9080")[0][2], "-");
}

#[test]
fn secret_shows_the_certificate_and_the_root() {
    let certs: view::Certs = view::read(&fixture("productpage-certs.json"));
    let inside = tables::unix_time("2026-11-21T12:00:00Z").unwrap_or_default();
    let rows = tables::secret(&certs, inside);
    assert_eq!(
        rows[0],
        [
            "default",
            "Cert Chain",
            "ACTIVE",
            "true",
            "0d2478add7a8c05449d6dbace2ae3094",
            "2026-11-22T08:38:54Z",
            "2026-11-21T08:37:54Z"
        ]
    );
    assert_eq!(rows[1][0], "ROOTCA");
    assert_eq!(rows[1][3], "true");
    let after = tables::unix_time("2026-11-23T00:00:00Z").unwrap_or_default();
    assert_eq!(tables::secret(&certs, after)[0][3], "false", "expired");
}

#[test]
fn unix_time_reads_what_the_proxy_writes() {
    assert_eq!(tables::unix_time("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(tables::unix_time("2000-03-01T00:00:01Z"), Some(951_868_801));
    assert_eq!(
        tables::unix_time("2024-02-29T23:59:59Z"),
        Some(1_709_251_199)
    );
    assert_eq!(tables::unix_time("not a time"), None);
    assert_eq!(tables::unix_time("2024-02-29T23:59:59+01:00"), None);
}

#[test]
fn all_as_json_has_every_part() {
    let value = documents().json(Kind::All);
    for key in ["listeners", "routes", "clusters", "endpoints", "secret"] {
        assert!(!value[key].is_null(), "{key}");
    }
    assert_eq!(value["listeners"][1]["bound"], "127.55.0.2:15001");
    assert_eq!(
        value["secret"]["serial"],
        "0d2478add7a8c05449d6dbace2ae3094"
    );
}

#[test]
fn documents_of_another_shape_render_empty_not_fail() {
    let documents = Documents {
        config_dump: serde_json::json!({"snapshot": "unexpected"}),
        listeners: serde_json::json!(42),
        clusters: serde_json::json!([{"name": 3}]),
        certs: Some(serde_json::json!(null)),
    };
    let mut out = Vec::new();
    documents
        .write_table(Kind::All, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(String::from_utf8(out).unwrap_or_default().contains("NAME"));
}

#[test]
fn endpoints_of_a_dns_cluster_name_their_hostname() {
    let documents = Documents {
        clusters: serde_json::json!([{
            "name": "outbound|80||api.external.com",
            "endpoints": [{"address": "127.0.20.1:8080", "hostname": "api.external.com", "health": "healthy"}],
        }]),
        ..documents()
    };
    let mut out = Vec::new();
    documents
        .write_table(Kind::Endpoints, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8(out).unwrap_or_default();
    assert_eq!(
        rows(&text, "127.0.20.1:8080 (api.external.com)"),
        vec![vec![
            "127.0.20.1:8080 (api.external.com)",
            "HEALTHY",
            "-",
            "outbound|80||api.external.com"
        ]],
        "{text}"
    );
}

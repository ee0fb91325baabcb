#![allow(clippy::unwrap_used)]

use super::*;
use crate::observe::text::parse;

fn workload(name: &str, service: &str, version: &str, sa: &str) -> Workload {
    Workload {
        name: name.to_owned(),
        namespace: "default".to_owned(),
        service: service.to_owned(),
        version: version.to_owned(),
        identity: format!("spiffe://cluster.local/ns/default/sa/{sa}"),
        meshed: (1, 1),
    }
}

fn mesh() -> Vec<Workload> {
    vec![
        workload("productpage-v1", "productpage", "v1", "productpage"),
        workload("details-v1", "details", "v1", "details"),
        workload("reviews-v1", "reviews", "v1", "reviews"),
        workload("reviews-v2", "reviews", "v2", "reviews"),
    ]
}

const SRC: &str = r#"reporter="source",source_workload="productpage-v1",source_workload_namespace="default",source_principal="spiffe://cluster.local/ns/default/sa/productpage""#;

/// 10 s apart. productpage -> details (workload unknown: the only details workload), 20
/// requests, 1 of them 503, over mTLS; productpage -> reviews (unknown, two workloads: the
/// service) 10 requests, without mTLS; productpage -> reviews subset v2 (the v2 workload)
/// named by the sidecar, 5. details' own sidecar saw 19 from productpage (skipped: a
/// scraped caller) and 4 from a plaintext client outside the mesh, and holds 2 TCP
/// connections (3 opened, 1 closed).
fn window() -> Window {
    let before = format!(
        r#"
mesh_requests_total{{{SRC},destination_workload="unknown",destination_service_name="details",destination_version="unknown",response_code="200",connection_security_policy="mutual_tls"}} 100
mesh_requests_total{{{SRC},destination_workload="unknown",destination_service_name="reviews",destination_version="unknown",response_code="200",connection_security_policy="unknown"}} 50
"#
    );
    let after = format!(
        r#"
mesh_requests_total{{{SRC},destination_workload="unknown",destination_service_name="details",destination_version="unknown",response_code="200",connection_security_policy="mutual_tls"}} 119
mesh_requests_total{{{SRC},destination_workload="unknown",destination_service_name="details",destination_version="unknown",response_code="503",connection_security_policy="mutual_tls"}} 1
mesh_request_duration_milliseconds_bucket{{{SRC},destination_service_name="details",le="10"}} 10
mesh_request_duration_milliseconds_bucket{{{SRC},destination_service_name="details",le="25"}} 20
mesh_request_duration_milliseconds_bucket{{{SRC},destination_service_name="details",le="+Inf"}} 20
mesh_requests_total{{{SRC},destination_workload="unknown",destination_service_name="reviews",destination_version="unknown",response_code="200",connection_security_policy="unknown"}} 60
mesh_requests_total{{{SRC},destination_workload="reviews-v2",destination_workload_namespace="default",destination_service_name="reviews",destination_version="v2",response_code="200",connection_security_policy="mutual_tls"}} 5
mesh_requests_total{{reporter="destination",destination_workload="details-v1",destination_workload_namespace="default",destination_service_name="details",source_workload="unknown",source_principal="spiffe://cluster.local/ns/default/sa/productpage",response_code="200",connection_security_policy="mutual_tls"}} 19
mesh_requests_total{{reporter="destination",destination_workload="details-v1",destination_workload_namespace="default",destination_service_name="details",source_workload="unknown",source_principal="unknown",response_code="500",connection_security_policy="none"}} 4
mesh_request_duration_milliseconds_bucket{{reporter="destination",destination_workload="details-v1",destination_workload_namespace="default",le="5"}} 23
mesh_request_duration_milliseconds_bucket{{reporter="destination",destination_workload="details-v1",destination_workload_namespace="default",le="+Inf"}} 23
mesh_tcp_connections_opened_total{{reporter="destination",destination_workload="details-v1",destination_workload_namespace="default"}} 3
mesh_tcp_connections_closed_total{{reporter="destination",destination_workload="details-v1",destination_workload_namespace="default"}} 1
"#
    );
    Window::between(&parse(&before).unwrap(), &parse(&after).unwrap(), 10.0)
}

fn assert_close(value: Option<f64>, expected: f64) {
    let value = value.unwrap_or(f64::NAN);
    assert!((value - expected).abs() < 1e-9, "{value} != {expected}");
}

fn edge<'a>(stats: &'a Stats, source: &str, target: &str) -> &'a Edge {
    stats
        .edges
        .iter()
        .find(|e| e.source == source && e.target == target)
        .unwrap_or_else(|| panic!("no edge {source} -> {target} in {:#?}", stats.edges))
}

#[test]
fn edges_name_the_called_workload_or_its_service() {
    let stats = compute(&window(), &mesh());
    let details = edge(&stats, "productpage-v1.default", "details-v1.default");
    assert_eq!(details.golden.requests, 20.0);
    assert_eq!(details.golden.rps, 2.0);
    assert_eq!(details.golden.success, Some(0.95));
    assert_eq!(details.golden.p50, Some(10.0));
    assert_close(details.golden.p99, 24.7);
    assert_eq!(details.total_requests, 120.0);
    assert!(details.mtls);

    let reviews = edge(&stats, "productpage-v1.default", "reviews.default");
    assert_eq!(reviews.golden.rps, 1.0);
    assert!(!reviews.mtls);
    let v2 = edge(&stats, "productpage-v1.default", "reviews-v2.default");
    assert_eq!(v2.golden.requests, 5.0);
    assert!(v2.mtls);

    // details' sidecar: the plaintext client is an edge from `unknown`; productpage's
    // requests are not counted twice.
    let outside = edge(&stats, "unknown", "details-v1.default");
    assert_eq!(outside.golden.requests, 4.0);
    assert_eq!(outside.golden.success, Some(0.0));
    assert!(!outside.mtls);
    assert_eq!(stats.edges.len(), 4, "{:#?}", stats.edges);

    let kind = |id: &str| stats.nodes.iter().find(|n| n.id == id).map(|n| &n.kind);
    assert_eq!(kind("reviews-v1.default"), Some(&NodeKind::Workload));
    assert_eq!(kind("reviews.default"), Some(&NodeKind::Service));
    assert_eq!(kind("unknown"), Some(&NodeKind::External));
    assert_eq!(stats.nodes.len(), 6);
}

#[test]
fn workloads_show_their_inbound_requests_and_open_connections() {
    let stats = compute(&window(), &mesh());
    let details = &stats.workloads[1];
    assert_eq!(details.workload.name, "details-v1");
    assert_eq!(details.golden.requests, 23.0);
    assert_eq!(details.golden.rps, 2.3);
    assert_eq!(details.golden.success, Some(19.0 / 23.0));
    assert_close(details.golden.p99, 4.95);
    assert_eq!(details.tcp_conn, 2.0);
    // Nobody calls productpage here: it shows what it sent (20 + 10 + 5, one 503).
    let productpage = &stats.workloads[0];
    assert_eq!(productpage.golden.requests, 35.0);
    assert_eq!(productpage.golden.success, Some(34.0 / 35.0));
    assert_eq!(productpage.tcp_conn, 0.0);
    // reviews-v1 neither received nor sent anything.
    assert_eq!(stats.workloads[2].golden.requests, 0.0);
    assert_eq!(stats.workloads[2].golden.success, None);
}

#[test]
fn services_sum_their_workloads() {
    let stats = compute(&window(), &mesh());
    let names: Vec<&str> = stats.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["details", "productpage", "reviews"]);
    assert_eq!(stats.services[0].golden.requests, 23.0);
    assert_close(stats.services[0].golden.p99, 4.95);
    // productpage, called by nobody here, sums what its workload sent.
    assert_eq!(stats.services[1].golden.requests, 35.0);
    assert_eq!(stats.services[2].workloads, ["reviews-v1", "reviews-v2"]);
    assert_eq!(stats.services[2].golden.requests, 0.0);
}

#[test]
fn a_caller_whose_sidecar_did_not_answer_is_drawn_from_the_called_side() {
    let mut workloads = mesh();
    workloads[0].meshed = (0, 1);
    let stats = compute(&window(), &workloads);
    // productpage's own report is gone from the scrape in real life; here its principal
    // no longer marks the called side's report as counted elsewhere.
    let by_account = edge(&stats, "productpage.default", "details-v1.default");
    assert_eq!(by_account.golden.requests, 19.0);
}

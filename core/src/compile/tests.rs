use std::time::Duration;

use http::StatusCode;

use super::route::decode_for_test;
use super::*;
use crate::balance::{HashPolicy, LbPolicy};
use crate::model::{Abort, Fraction, GrpcCode, RouteAction, ValueMatch};

const SNAPSHOT: &str = r#"
version: "7"
listeners:
- name: outbound
  address: 127.0.0.1:15001
  routeConfig: outbound
- name: mysql
  address: 127.0.0.1:13306
  protocol: TCP
  tcpRoute:
  - destination: {host: mysql.db.svc.cluster.local}
routeConfigs:
- name: outbound
  virtualHosts:
  - name: reviews
    domains: [reviews, reviews.default.svc.cluster.local]
    routes:
    - name: jason
      match:
      - headers: {end-user: {exact: jason}, x-canary: {}}
        uri: {regex: "/reviews/[0-9]+"}
      route:
      - destination: {host: reviews.default.svc.cluster.local, subset: v2}
      timeout: 1.5s
      retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,gateway-error,503,unavailable"}
    - name: split
      route:
      - destination: {host: reviews.default.svc.cluster.local, subset: v1}
        weight: 90
      - destination: {host: reviews.default.svc.cluster.local, subset: v2}
        weight: 10
      fault:
        delay: {fixedDelay: 2s, percent: 10}
        abort: {grpcStatus: UNAVAILABLE, percentage: {value: 0.5}}
      rewrite: {uriRegexRewrite: {match: "^/old/(.*)$", rewrite: '/new/\1'}}
      headers:
        request: {set: {x-route: split}, remove: [x-debug]}
      mirror: {host: reviews.default.svc.cluster.local, subset: v1}
      mirrorPercentage: {value: 25}
clusters:
- host: reviews.default.svc.cluster.local
  port: 9080
  endpoints:
  - {address: "127.0.0.1:9081", labels: {version: v1}}
  - {address: "127.0.0.1:9082", labels: {version: v2}, weight: 3}
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {connectTimeout: 250ms}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: X-User}}}
- host: mysql.db.svc.cluster.local
  port: 3306
  endpoints: [{address: "127.0.0.1:3306"}]
"#;

fn compiled() -> ProxyConfig {
    let snapshot = Snapshot::from_yaml(SNAPSHOT).expect("parses");
    compile(&snapshot).expect("compiles")
}

#[test]
fn compiles_routes_with_istio_semantics() {
    let config = compiled();
    assert_eq!(config.version, "7");
    let table = config.route_configs["outbound"]
        .table_for("reviews:9080")
        .expect("virtual host by short name and port");
    let jason = &table.routes[0];
    assert_eq!(jason.name, "jason");
    let m = &jason.matches[0];
    assert!(
        m.uri
            .as_ref()
            .is_some_and(|u| u.matches("/reviews/42") && !u.matches("/reviews/42/x"))
    );
    let present = m
        .headers
        .iter()
        .find(|(n, _)| n == "x-canary")
        .map(|(_, v)| v);
    assert_eq!(present, Some(&ValueMatch::Present), "{{}} means present");
    assert_eq!(jason.policy.timeout, Some(Duration::from_millis(1500)));
    let retry = jason.policy.retry.as_ref().expect("retries");
    assert_eq!(
        (retry.attempts, retry.per_try_timeout),
        (3, Some(Duration::from_millis(500)))
    );
    assert!(retry.retry_on.server_error && retry.retry_on.gateway_error);
    assert_eq!(
        retry.retry_on.retriable_status_codes,
        [StatusCode::SERVICE_UNAVAILABLE]
    );
    assert_eq!(retry.retry_on.grpc, [GrpcCode::Unavailable]);

    let split = &table.routes[1];
    let RouteAction::Route(destinations) = &split.action else {
        panic!("a route action")
    };
    let weights: Vec<_> = destinations
        .iter()
        .map(|d| (d.destination.subset.as_deref(), d.weight))
        .collect();
    assert_eq!(weights, [(Some("v1"), 90), (Some("v2"), 10)]);
    assert_eq!(
        split.policy.retry,
        Some(crate::model::RetryPolicy::istio_default()),
        "Istio's default retries"
    );
    let fault = split.policy.fault.as_ref().expect("fault");
    assert_eq!(
        fault.delay,
        Some((Duration::from_secs(2), Fraction::from_percent(10.0))),
        "legacy percent"
    );
    assert_eq!(
        fault.abort,
        Some((
            Abort::Grpc(GrpcCode::Unavailable),
            Fraction::from_percent(0.5)
        ))
    );
    let (regex, with) = split
        .policy
        .rewrite
        .as_ref()
        .and_then(|r| r.uri_regex.as_ref())
        .expect("regex rewrite");
    assert_eq!(regex.replace("/old/a/b", with.as_str()), "/new/a/b");
    assert_eq!(split.policy.request_headers.set.len(), 1);
    assert_eq!(
        split.policy.mirrors[0].fraction,
        Fraction::from_percent(25.0)
    );
}

#[test]
fn compiles_clusters_subsets_and_tcp_listeners() {
    let config = compiled();
    let reviews = config
        .cluster("reviews.default.svc.cluster.local", 9080)
        .expect("cluster");
    assert_eq!(reviews.lb, LbPolicy::RoundRobin);
    assert_eq!(reviews.connect_timeout, Duration::from_millis(250));
    assert_eq!(reviews.endpoints[1].weight, 3);
    assert_eq!(
        reviews.subset("v1").map(|s| &s.lb),
        Some(&LbPolicy::RoundRobin),
        "inherits"
    );
    let LbPolicy::ConsistentHash(hash) = &reviews.subset("v2").expect("v2").lb else {
        panic!("v2 overrides with a consistent hash")
    };
    assert!(matches!(&hash.key, HashPolicy::Header(h) if h == "x-user"));
    assert_eq!(
        reviews.name(Some("v2")),
        "outbound|9080|v2|reviews.default.svc.cluster.local"
    );
    let mysql = &config.listeners[1];
    let crate::model::ListenerKind::Tcp { routes } = &mysql.kind else {
        panic!("tcp")
    };
    let cluster = resolve(&config, &routes[0].destination).expect("resolves to the only port");
    assert_eq!(cluster.port, 3306);
}

#[test]
fn every_error_is_named_by_its_path() {
    let broken = SNAPSHOT
        .replace("/reviews/[0-9]+", "/reviews/[0-9")
        .replace(
            "subset: v1}\n        weight: 90",
            "subset: v9}\n        weight: 90",
        )
        .replace("routeConfig: outbound", "routeConfig: inbound");
    let errors = compile(&Snapshot::from_yaml(&broken).expect("parses"))
        .expect_err("refused")
        .0;
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert!(
        paths.contains(&"routeConfigs[0].virtualHosts[0].routes[0].match[0].uri.regex"),
        "{errors:?}"
    );
    assert!(paths.contains(&"listeners[0].routeConfig"), "{errors:?}");
    let subset = errors
        .iter()
        .find(|e| e.message.contains("no subset \"v9\""))
        .expect("subset error");
    assert!(subset.path.contains("routes[0] (\"split\")"), "{subset:?}");
}

#[test]
fn parse_errors_name_the_field() {
    let err = Snapshot::from_yaml(
        "clusters:\n- host: a\n  port: 80\n  endpoints: [{adress: '1.2.3.4:5'}]\n",
    )
    .expect_err("typo");
    assert_eq!(err.path, "clusters[0].endpoints[0].adress");
    assert!(err.message.contains("unknown field `adress`"), "{err}");
}

#[test]
fn weights_follow_istio() {
    let d = |s: &str| (crate::model::Destination::new(s), None);
    let even = route::weighted(&[d("a"), d("b"), d("c")]);
    assert!(
        even.iter().all(|w| w.weight == 1),
        "none weighted: even split"
    );
    assert_eq!(
        route::weighted(&[(crate::model::Destination::new("a"), Some(7))])[0].weight,
        100
    );
    let partial = route::weighted(&[(crate::model::Destination::new("a"), Some(100)), d("b")]);
    assert_eq!(
        partial.iter().map(|w| w.weight).collect::<Vec<_>>(),
        [100, 0]
    );
}

#[test]
fn retry_on_conditions() {
    let on = retry_on("connect-failure, refused-stream,retriable-status-codes").expect("valid");
    assert!(on.connect_failure && on.refused_stream);
    assert_eq!(
        on.retriable_status_codes,
        [StatusCode::SERVICE_UNAVAILABLE],
        "Istio's implied 503"
    );
    assert!(
        retry_on("5xx,bogus")
            .expect_err("unknown")
            .contains("bogus")
    );
    assert_eq!(
        retry_on("deadline-exceeded").expect("grpc").grpc,
        [GrpcCode::DeadlineExceeded]
    );
}

#[test]
fn base64_bodies() {
    assert_eq!(decode_for_test("aGVsbG8=").expect("valid"), b"hello");
    assert_eq!(decode_for_test("aGVsbG8").expect("unpadded"), b"hello");
    assert!(decode_for_test("a$==").is_err());
}

#[test]
fn connection_pool_and_outlier_detection_with_istio_defaults() {
    let text = SNAPSHOT.replace(
        "connectionPool: {tcp: {connectTimeout: 250ms}}",
        "connectionPool: {tcp: {connectTimeout: 250ms, maxConnections: 0}, http: {http1MaxPendingRequests: 1, maxRetries: 3, idleTimeout: 30s}}\n    outlierDetection: {consecutiveGatewayErrors: 2, baseEjectionTime: 1m}",
    );
    let config = compile(&Snapshot::from_yaml(&text).expect("parses")).expect("compiles");
    let reviews = config
        .cluster("reviews.default.svc.cluster.local", 9080)
        .expect("cluster");
    assert_eq!(
        reviews.limits.max_connections,
        u32::MAX,
        "0 means unset, as in Istio"
    );
    assert_eq!(reviews.limits.max_pending_requests, 1);
    assert_eq!(reviews.limits.max_retries, 3);
    assert_eq!(reviews.limits.idle_timeout, Some(Duration::from_secs(30)));
    let outlier = reviews.outlier.as_ref().expect("outlier detection");
    assert_eq!(outlier.consecutive_gateway_errors, Some(2));
    assert_eq!(outlier.consecutive_5xx, Some(5), "Istio's default stays on");
    assert_eq!(outlier.base_ejection_time, Duration::from_secs(60));
    assert_eq!(outlier.interval, Duration::from_secs(10));
    assert_eq!(outlier.max_ejection_percent, 10);
    let mysql = config
        .cluster("mysql.db.svc.cluster.local", 3306)
        .expect("cluster");
    assert_eq!(mysql.outlier, None, "off unless configured");
    assert_eq!(mysql.limits, crate::model::ConnectionLimits::default());
}

#[test]
fn local_origin_failures_counted_apart_only_when_split() {
    let with = |detection: &str| {
        let text = SNAPSHOT.replace(
            "connectionPool: {tcp: {connectTimeout: 250ms}}",
            &format!("connectionPool: {{tcp: {{connectTimeout: 250ms}}}}\n    outlierDetection: {detection}"),
        );
        let config = compile(&Snapshot::from_yaml(&text).expect("parses")).expect("compiles");
        let cluster = config
            .cluster("reviews.default.svc.cluster.local", 9080)
            .expect("cluster");
        cluster
            .outlier
            .as_ref()
            .expect("outlier")
            .consecutive_local_origin_failures
    };
    assert_eq!(
        with("{consecutiveLocalOriginFailures: 3}"),
        None,
        "ignored unless split, as in Istio"
    );
    assert_eq!(
        with("{splitExternalLocalOriginErrors: true}"),
        Some(5),
        "Envoy's default"
    );
    assert_eq!(
        with("{splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2}"),
        Some(2)
    );
}

#[test]
fn retry_budget_defaults_to_envoys_and_follows_istio() {
    let default = compiled();
    let limits = &default
        .cluster("reviews.default.svc.cluster.local", 9080)
        .expect("cluster")
        .limits;
    assert_eq!(
        (limits.retry_budget, limits.min_retry_concurrency),
        (Fraction::from_percent(20.0), 3)
    );
    let text = SNAPSHOT.replace(
        "connectionPool: {tcp: {connectTimeout: 250ms}}",
        "connectionPool: {tcp: {connectTimeout: 250ms}}\n    retryBudget: {percent: {value: 5}, minRetryConcurrency: 1}",
    );
    let config = compile(&Snapshot::from_yaml(&text).expect("parses")).expect("compiles");
    let limits = &config
        .cluster("reviews.default.svc.cluster.local", 9080)
        .expect("cluster")
        .limits;
    assert_eq!(
        (limits.retry_budget, limits.min_retry_concurrency),
        (Fraction::from_percent(5.0), 1)
    );
}

#[test]
fn inbound_listeners_carry_their_mode_and_policies_compile_or_name_the_field() {
    let yaml = r#"
version: "1"
listeners:
- name: inbound|9080
  address: 127.0.0.2:9080
  protocol: TCP
  tcpRoute: [{destination: {host: app, port: {number: 8080}}}]
  inbound: {mtls: STRICT}
clusters:
- host: app
  port: 8080
  endpoints: [{address: 127.0.0.1:8080}]
authorizationPolicies:
- name: shop/deny-admin
  spec:
    action: DENY
    rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
"#;
    let config = compile(&Snapshot::from_yaml(yaml).expect("parses")).expect("compiles");
    assert_eq!(
        config.listeners[0].inbound.map(|i| i.mtls),
        Some(crate::snapshot::PeerMode::Strict)
    );
    assert!(!config.authz.is_empty());

    let broken = yaml.replace(r#"paths: ["/admin*"]"#, r#"ports: ["http"]"#);
    let errors = compile(&Snapshot::from_yaml(&broken).expect("parses"))
        .expect_err("a port must be a number")
        .0;
    assert!(
        errors[0]
            .path
            .starts_with("authorizationPolicies[0] (shop/deny-admin).spec.rules[0].to[0]"),
        "{errors:?}"
    );
}

#[test]
fn request_authentications_compile_or_name_the_field() {
    let yaml = r#"
version: "1"
requestAuthentications:
- name: shop/jwt
  spec:
    jwtRules:
    - issuer: https://accounts.example.com
      fromHeaders: [{name: x-jwt}]
"#;
    let config = compile(&Snapshot::from_yaml(yaml).expect("parses")).expect("compiles");
    assert!(!config.authn.is_empty());
    let broken = yaml.replace("name: x-jwt", "name: 'bad header'");
    let errors = compile(&Snapshot::from_yaml(&broken).expect("parses"))
        .expect_err("a header name cannot hold a space")
        .0;
    assert_eq!(
        errors[0].path, "requestAuthentications[0] (shop/jwt).spec.jwtRules[0].fromHeaders[0].name",
        "{errors:?}"
    );
}

#[test]
fn upstream_tls_per_cluster_and_subset_never_refuses_the_snapshot() {
    use crate::model::{TlsDecision, TlsRefusal, UpstreamTls, UpstreamTlsMode};
    let tls_snapshot = |tls: &str| {
        SNAPSHOT
            .replace(
                "  - {address: \"127.0.0.1:9081\", labels: {version: v1}}",
                "  - {address: \"127.0.0.1:9081\", labels: {version: v1, security.istio.io/tlsMode: istio}, identity: spiffe://cluster.local/ns/default/sa/reviews}",
            )
            .replace(
                "    connectionPool: {tcp: {connectTimeout: 250ms}}",
                &format!("    connectionPool: {{tcp: {{connectTimeout: 250ms}}}}\n    {tls}"),
            )
    };
    let reviews_of = |config: &ProxyConfig| {
        config
            .cluster("reviews.default.svc.cluster.local", 9080)
            .expect("cluster")
            .clone()
    };
    let text = tls_snapshot("tls: {mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://td/ns/a/sa/b]}");
    let reviews =
        reviews_of(&compile(&Snapshot::from_yaml(&text).expect("parses")).expect("compiles"));
    assert_eq!(reviews.tls.mode, Some(UpstreamTlsMode::IstioMutual));
    assert_eq!(reviews.tls.subject_alt_names, ["spiffe://td/ns/a/sa/b"]);
    assert_eq!(reviews.tls_of(Some("v1")), &reviews.tls, "subsets inherit");

    // ISTIO_MUTUAL to an endpoint without identity: compiles, and that endpoint is refused.
    let text = tls_snapshot("tls: {mode: ISTIO_MUTUAL}");
    let reviews =
        reviews_of(&compile(&Snapshot::from_yaml(&text).expect("parses")).expect("compiles"));
    assert_eq!(
        reviews.tls.decide(&reviews.endpoints[0]),
        Ok(TlsDecision::Mutual {
            identities: vec!["spiffe://cluster.local/ns/default/sa/reviews".into()]
        })
    );
    assert!(matches!(
        reviews.tls.decide(&reviews.endpoints[1]),
        Err(TlsRefusal::UnknownIdentity(_))
    ));

    // SIMPLE originates TLS to every endpoint; credentialName compiles, and is refused.
    let text = tls_snapshot("tls: {mode: SIMPLE, sni: reviews.example.com}");
    let reviews =
        reviews_of(&compile(&Snapshot::from_yaml(&text).expect("parses")).expect("compiles"));
    assert_eq!(reviews.tls.mode, Some(UpstreamTlsMode::Simple));
    assert_eq!(reviews.tls.sni.as_deref(), Some("reviews.example.com"));
    assert_eq!(
        reviews.tls.decide(&reviews.endpoints[0]),
        Ok(TlsDecision::Originate)
    );
    let text = tls_snapshot("tls: {mode: SIMPLE, credentialName: reviews-ca}");
    let reviews =
        reviews_of(&compile(&Snapshot::from_yaml(&text).expect("parses")).expect("compiles"));
    assert!(matches!(
        reviews.tls.decide(&reviews.endpoints[0]),
        Err(TlsRefusal::CredentialName(_))
    ));

    let reviews = reviews_of(
        &compile(&Snapshot::from_yaml(&tls_snapshot("")).expect("parses")).expect("compiles"),
    );
    assert_eq!(reviews.tls, UpstreamTls::default(), "unset: auto-mTLS");
    assert!(
        reviews
            .tls
            .decide(&reviews.endpoints[0])
            .is_ok_and(|d| d.is_mutual())
    );
    assert_eq!(
        reviews.tls.decide(&reviews.endpoints[1]),
        Ok(TlsDecision::Plaintext)
    );
}

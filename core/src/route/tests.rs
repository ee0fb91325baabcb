#![allow(clippy::unwrap_used)]

use http::request::Parts;
use http::{HeaderName, StatusCode};

use super::*;
use crate::model::{
    Destination, Downstream, HttpRoute, Labels, Redirect, RedirectPort, RequestInfo, RequestMatch,
    RouteAction, StringMatch, ValueMatch, WeightedDestination,
};

/// A request as the proxy would see it: parts from `http`, plus the connection it came on.
struct Req {
    parts: Parts,
    downstream: Downstream,
}

impl Req {
    fn get(uri: &str) -> Self {
        Self::new(http::Request::get(uri).header("host", "reviews:9080"))
    }

    fn new(builder: http::request::Builder) -> Self {
        Self {
            parts: builder.body(()).unwrap().into_parts().0,
            downstream: Downstream::sidecar(9080),
        }
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.parts.headers.append(
            HeaderName::from_static(name),
            http::HeaderValue::from_static(value),
        );
        self
    }

    fn info(&self) -> RequestInfo<'_> {
        RequestInfo::new(&self.parts, &self.downstream)
    }
}

fn route(name: &str, matches: Vec<RequestMatch>) -> HttpRoute {
    HttpRoute {
        name: name.to_owned(),
        matches,
        action: RouteAction::Route(vec![WeightedDestination {
            destination: Destination::new(format!("{name}.default.svc.cluster.local")),
            weight: 100,
            ..Default::default()
        }]),
        policy: Default::default(),
    }
}

fn admits(m: RequestMatch, req: &Req) -> bool {
    matches(&m, &req.info())
}

fn uri(m: StringMatch) -> RequestMatch {
    RequestMatch {
        uri: Some(m),
        ..RequestMatch::default()
    }
}

fn header(name: &'static str, m: ValueMatch) -> RequestMatch {
    RequestMatch {
        headers: vec![(HeaderName::from_static(name), m)],
        ..RequestMatch::default()
    }
}

fn without_header(name: &'static str, m: ValueMatch) -> RequestMatch {
    RequestMatch {
        without_headers: vec![(HeaderName::from_static(name), m)],
        ..RequestMatch::default()
    }
}

fn query(name: &str, m: ValueMatch) -> RequestMatch {
    RequestMatch {
        query_params: vec![(name.to_owned(), m)],
        ..RequestMatch::default()
    }
}

fn value(m: StringMatch) -> ValueMatch {
    ValueMatch::Value(m)
}

fn regex(pattern: &str) -> StringMatch {
    StringMatch::regex(pattern).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn empty_match_list_takes_everything() {
    let routes = [route("all", vec![])];
    let (chosen, index) = select(&routes, &Req::get("/anything").info()).unwrap();
    assert_eq!((chosen.name.as_str(), index), ("all", 0));
    assert!(chosen.matches.get(index).is_none());
    assert!(select(&[], &Req::get("/").info()).is_none());
}

#[test]
fn first_matching_route_wins_and_reports_its_match() {
    let routes = [
        route("api", vec![uri(StringMatch::prefix("/api"))]),
        route(
            "v1",
            vec![
                uri(StringMatch::exact("/nope")),
                uri(StringMatch::prefix("/v1")),
            ],
        ),
        route("shadowed", vec![uri(StringMatch::prefix("/v1/users"))]),
        route("rest", vec![]),
    ];
    let name_and_index = |path: &str| {
        let req = Req::get(path);
        let (r, i) = select(&routes, &req.info()).unwrap();
        (r.name.clone(), i)
    };
    assert_eq!(name_and_index("/api/x"), ("api".to_owned(), 0));
    assert_eq!(name_and_index("/v1/users"), ("v1".to_owned(), 1));
    assert_eq!(name_and_index("/other"), ("rest".to_owned(), 0));
}

#[test]
fn no_route_matches() {
    let routes = [route("api", vec![uri(StringMatch::prefix("/api"))])];
    assert!(select(&routes, &Req::get("/web").info()).is_none());
}

#[test]
fn conditions_in_one_match_all_hold() {
    let m = RequestMatch {
        uri: Some(StringMatch::prefix("/api")),
        method: Some(StringMatch::exact("POST")),
        ..RequestMatch::default()
    };
    assert!(!admits(m.clone(), &Req::get("/api")));
    let post = Req::new(http::Request::post("/api/x"));
    assert!(admits(m.clone(), &post));
    let post_elsewhere = Req::new(http::Request::post("/web"));
    assert_eq!(
        first_mismatch(&m, &post_elsewhere.info()),
        Some(Mismatch::Uri)
    );
}

#[test]
fn uri_exact_prefix_regex_ignore_the_query() {
    let req = Req::get("/reviews/7?page=2");
    assert!(admits(uri(StringMatch::exact("/reviews/7")), &req));
    assert!(!admits(uri(StringMatch::exact("/reviews/7?page=2")), &req));
    assert!(!admits(uri(StringMatch::exact("/reviews")), &req));
    assert!(admits(uri(StringMatch::prefix("/reviews/")), &req));
    assert!(!admits(uri(StringMatch::prefix("/ratings")), &req));
    assert!(admits(uri(regex("/reviews/[0-9]+")), &req));
    assert!(!admits(uri(regex("/reviews")), &req), "regex is anchored");
    assert!(!admits(uri(regex("/reviews/[a-z]+")), &req));
}

#[test]
fn ignore_uri_case_for_exact_and_prefix() {
    let req = Req::get("/API/Users");
    let ignoring = |m: StringMatch| RequestMatch {
        uri: Some(m),
        ignore_uri_case: true,
        ..RequestMatch::default()
    };
    assert!(!admits(uri(StringMatch::exact("/api/users")), &req));
    assert!(admits(ignoring(StringMatch::exact("/api/users")), &req));
    assert!(!admits(uri(StringMatch::prefix("/api")), &req));
    assert!(admits(ignoring(StringMatch::prefix("/api")), &req));
    assert!(!admits(ignoring(StringMatch::prefix("/web")), &req));
    // Istio: "only applies to exact and prefix URI matches".
    assert!(!admits(ignoring(regex("/api/users")), &req));
    assert!(admits(ignoring(regex("(?i)/api/users")), &req));
}

#[test]
fn method_scheme_authority() {
    let req = Req::get("/");
    let method = |m| RequestMatch {
        method: Some(m),
        ..RequestMatch::default()
    };
    assert!(admits(method(StringMatch::exact("GET")), &req));
    assert!(!admits(method(StringMatch::exact("get")), &req));
    assert!(!admits(method(regex("POST|PUT")), &req));

    let scheme = |m| RequestMatch {
        scheme: Some(m),
        ..RequestMatch::default()
    };
    assert!(admits(scheme(StringMatch::exact("http")), &req));
    assert!(!admits(scheme(StringMatch::exact("https")), &req));

    // The authority is matched as sent, port included, as Envoy matches `:authority`.
    let authority = |m| RequestMatch {
        authority: Some(m),
        ..RequestMatch::default()
    };
    assert!(admits(authority(StringMatch::exact("reviews:9080")), &req));
    assert!(!admits(authority(StringMatch::exact("reviews")), &req));
    assert!(admits(authority(StringMatch::prefix("reviews")), &req));
    assert!(admits(authority(regex("reviews(:[0-9]+)?")), &req));
    assert!(!admits(authority(StringMatch::prefix("ratings")), &req));
}

#[test]
fn header_exact_prefix_regex() {
    let req = Req::get("/").header("end-user", "jason");
    let m = |sm| header("end-user", value(sm));
    assert!(admits(m(StringMatch::exact("jason")), &req));
    assert!(!admits(m(StringMatch::exact("Jason")), &req));
    assert!(admits(m(StringMatch::prefix("ja")), &req));
    assert!(!admits(m(StringMatch::prefix("jo")), &req));
    assert!(admits(m(regex("j.*n")), &req));
    assert!(!admits(m(regex("j")), &req));
    // A missing header fails a value match, even one that would accept anything.
    assert!(!admits(m(StringMatch::prefix("")), &Req::get("/")));
    assert_eq!(
        first_mismatch(&m(StringMatch::exact("x")), &req.info()).map(|m| m.to_string()),
        Some("headers.end-user".to_owned())
    );
}

#[test]
fn header_repeated_values_are_joined() {
    let req = Req::get("/").header("x-tag", "a").header("x-tag", "b");
    assert!(admits(
        header("x-tag", value(StringMatch::exact("a,b"))),
        &req
    ));
    assert!(!admits(
        header("x-tag", value(StringMatch::exact("a"))),
        &req
    ));
}

#[test]
fn empty_header_match_means_present() {
    let present = || header("x-canary", ValueMatch::Present);
    assert!(admits(present(), &Req::get("/").header("x-canary", "")));
    assert!(admits(present(), &Req::get("/").header("x-canary", "1")));
    assert!(!admits(present(), &Req::get("/")));
}

#[test]
fn without_headers_value() {
    let m = || without_header("end-user", value(StringMatch::exact("admin")));
    assert!(!admits(m(), &Req::get("/").header("end-user", "admin")));
    assert!(admits(m(), &Req::get("/").header("end-user", "jason")));
    // A missing header is the empty string, which is not "admin": admitted.
    assert!(admits(m(), &Req::get("/")));
    // ...and the empty string is refused when the refused value is "".
    let empty = without_header("end-user", value(StringMatch::exact("")));
    assert_eq!(
        first_mismatch(&empty, &Req::get("/").info()),
        Some(Mismatch::WithoutHeader(&HeaderName::from_static(
            "end-user"
        )))
    );
}

#[test]
fn without_headers_present_means_absent() {
    let absent = || without_header("x-debug", ValueMatch::Present);
    assert!(admits(absent(), &Req::get("/")));
    assert!(!admits(absent(), &Req::get("/").header("x-debug", "")));
    assert!(!admits(absent(), &Req::get("/").header("x-debug", "1")));
}

#[test]
fn query_params() {
    let req = Req::get("/search?q=rust%20mesh&page=2&page=3&debug");
    assert!(admits(
        query("q", value(StringMatch::exact("rust mesh"))),
        &req
    ));
    assert!(!admits(query("q", value(StringMatch::exact("rust"))), &req));
    assert!(admits(query("q", value(StringMatch::prefix("rust"))), &req));
    assert!(admits(query("page", value(regex("[0-9]"))), &req));
    assert!(
        !admits(query("page", value(StringMatch::exact("3"))), &req),
        "the first occurrence decides"
    );
    assert!(admits(query("debug", ValueMatch::Present), &req));
    assert!(admits(query("debug", value(StringMatch::exact(""))), &req));
    assert!(!admits(query("missing", ValueMatch::Present), &req));
    assert!(!admits(
        query("q", value(StringMatch::exact("x"))),
        &Req::get("/search")
    ));
}

#[test]
fn port() {
    let m = |port| RequestMatch {
        port: Some(port),
        ..RequestMatch::default()
    };
    assert!(admits(m(9080), &Req::get("/")));
    assert!(!admits(m(80), &Req::get("/")));
}

#[test]
fn source_labels_and_namespace() {
    let mut req = Req::get("/");
    req.downstream.source_labels = labels(&[("app", "productpage"), ("version", "v2")]);
    req.downstream.source_namespace = Some("default".to_owned());
    let m = |pairs: &[(&str, &str)], ns: Option<&str>| RequestMatch {
        source_labels: labels(pairs),
        source_namespace: ns.map(str::to_owned),
        ..RequestMatch::default()
    };
    assert!(admits(m(&[("app", "productpage")], None), &req));
    assert!(admits(
        m(&[("app", "productpage"), ("version", "v2")], None),
        &req
    ));
    assert!(!admits(
        m(&[("app", "productpage"), ("version", "v1")], None),
        &req
    ));
    assert!(!admits(m(&[("team", "x")], None), &req));
    assert!(admits(m(&[], Some("default")), &req));
    assert_eq!(
        first_mismatch(&m(&[], Some("prod")), &req.info()),
        Some(Mismatch::SourceNamespace)
    );
    assert!(!admits(m(&[], Some("default")), &Req::get("/")));
}

#[test]
fn gateways_decide_alone_when_set() {
    let mut req = Req::get("/");
    req.downstream.gateway = "istio-system/ingress".to_owned();
    let m = |gateways: &[&str]| RequestMatch {
        gateways: gateways.iter().map(|g| (*g).to_owned()).collect(),
        source_labels: labels(&[("app", "nobody-has-this")]),
        ..RequestMatch::default()
    };
    // Istio's sourceMatchHTTP ignores sourceLabels when gateways are named.
    assert!(admits(m(&["istio-system/ingress"]), &req));
    assert!(admits(m(&["mesh", "istio-system/ingress"]), &req));
    assert!(!admits(m(&["mesh"]), &req));
    assert!(admits(m(&["mesh"]), &Req::get("/")));
}

#[test]
fn route_table_select_delegates() {
    let table = crate::model::RouteTable {
        name: "reviews".to_owned(),
        domains: vec!["reviews".to_owned()],
        routes: vec![route("a", vec![uri(StringMatch::prefix("/a"))])],
    };
    assert!(table.select(&Req::get("/a").info()).is_some());
    assert!(table.select(&Req::get("/b").info()).is_none());
}

fn redirect() -> Redirect {
    Redirect {
        uri: None,
        authority: None,
        scheme: None,
        port: None,
        status: StatusCode::MOVED_PERMANENTLY,
    }
}

#[test]
fn redirect_replaces_path_and_keeps_query() {
    let req = Req::get("/old?x=1");
    let to = |r: Redirect| redirect_location(&r, &req.info());
    assert_eq!(to(redirect()), "http://reviews:9080/old?x=1");
    let new_path = Redirect {
        uri: Some("/new".to_owned()),
        ..redirect()
    };
    assert_eq!(to(new_path), "http://reviews:9080/new?x=1");
    let new_query = Redirect {
        uri: Some("/new?y=2".to_owned()),
        ..redirect()
    };
    assert_eq!(to(new_query), "http://reviews:9080/new?y=2");
}

#[test]
fn redirect_host_scheme_and_port() {
    let req = Req::get("/p");
    let to = |r: Redirect| redirect_location(&r, &req.info());
    let https = Redirect {
        scheme: Some("https".to_owned()),
        ..redirect()
    };
    assert_eq!(to(https.clone()), "https://reviews/p");
    let https_443 = Redirect {
        port: Some(RedirectPort::Port(443)),
        ..https.clone()
    };
    assert_eq!(to(https_443), "https://reviews/p");
    let https_8443 = Redirect {
        port: Some(RedirectPort::Port(8443)),
        authority: Some("secure.example.com:1".to_owned()),
        ..https
    };
    assert_eq!(to(https_8443), "https://secure.example.com:8443/p");
    let from_request = Redirect {
        authority: Some("other".to_owned()),
        port: Some(RedirectPort::FromRequest),
        ..redirect()
    };
    assert_eq!(to(from_request), "http://other:9080/p");
    let host_only = Redirect {
        authority: Some("other".to_owned()),
        ..redirect()
    };
    assert_eq!(to(host_only), "http://other/p");
}

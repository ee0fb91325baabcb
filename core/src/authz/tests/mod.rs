//! The authorization matrix: each row a policy set, a request and the decision Istio makes.

#![allow(clippy::unwrap_used)]

mod actions;
mod compile_errors;
mod conditions;
mod operation;
mod properties;
mod source;
mod tcp;

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::*;

/// A request with owned data, built up row by row; `request()` lends it as a [`Request`].
#[derive(Clone, Debug)]
pub(super) struct Req {
    peer: Option<String>,
    claims: Option<Value>,
    source: IpAddr,
    remote: Option<IpAddr>,
    destination: SocketAddr,
    sni: Option<String>,
    http: Option<Http>,
}

#[derive(Clone, Debug)]
struct Http {
    authority: String,
    method: String,
    path: String,
    headers: HeaderMap,
}

/// `GET /` to `web.default:8080` from `default/sleep` over mTLS.
pub(super) fn get() -> Req {
    Req {
        http: Some(Http {
            authority: "web.default.svc.cluster.local".into(),
            method: "GET".into(),
            path: "/".into(),
            headers: HeaderMap::new(),
        }),
        ..tcp()
    }
}

/// A TCP connection to port 8080 from `default/sleep` over mTLS.
pub(super) fn tcp() -> Req {
    Req {
        peer: Some("spiffe://cluster.local/ns/default/sa/sleep".into()),
        claims: None,
        source: "10.0.0.5".parse().unwrap(),
        remote: None,
        destination: "10.0.1.1:8080".parse().unwrap(),
        sni: None,
        http: None,
    }
}

impl Req {
    pub(super) fn peer(mut self, id: &str) -> Self {
        self.peer = Some(id.into());
        self
    }

    pub(super) fn plaintext(mut self) -> Self {
        self.peer = None;
        self
    }

    pub(super) fn jwt(mut self, claims: Value) -> Self {
        self.claims = Some(claims);
        self
    }

    pub(super) fn source_ip(mut self, ip: &str) -> Self {
        self.source = ip.parse().unwrap();
        self
    }

    pub(super) fn remote(mut self, ip: &str) -> Self {
        self.remote = Some(ip.parse().unwrap());
        self
    }

    pub(super) fn to(mut self, address: &str) -> Self {
        self.destination = address.parse().unwrap();
        self
    }

    pub(super) fn sni(mut self, name: &str) -> Self {
        self.sni = Some(name.into());
        self
    }

    fn http_mut(&mut self) -> &mut Http {
        self.http.as_mut().expect("an HTTP request")
    }

    pub(super) fn method(mut self, method: &str) -> Self {
        self.http_mut().method = method.into();
        self
    }

    pub(super) fn path(mut self, path: &str) -> Self {
        self.http_mut().path = path.into();
        self
    }

    pub(super) fn host(mut self, authority: &str) -> Self {
        self.http_mut().authority = authority.into();
        self
    }

    pub(super) fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        let value = HeaderValue::from_str(value).unwrap();
        self.http_mut().headers.append(name, value);
        self
    }

    pub(super) fn request(&self) -> Request<'_> {
        Request {
            peer_identity: self.peer.as_deref(),
            jwt_claims: self.claims.as_ref(),
            source_ip: self.source,
            remote_ip: self.remote,
            destination: self.destination,
            sni: self.sni.as_deref(),
            http: self.http.as_ref().map(|h| HttpRequest {
                authority: &h.authority,
                method: &h.method,
                path: &h.path,
                headers: &h.headers,
            }),
        }
    }
}

/// What a row expects; the names are those the row's policies were given.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Want {
    /// Allowed with no ALLOW policy applying.
    Open,
    AllowedBy(&'static str),
    DeniedBy(&'static str),
    /// ALLOW policies apply and none matched.
    NotAllowed,
}

pub(super) struct Row {
    name: &'static str,
    policies: Vec<(String, String)>,
    request: Req,
    want: Want,
    audit: Option<&'static str>,
}

/// No policy at all.
pub(super) const NONE: &[(&str, &str)] = &[];

/// A row: `policies` are `(namespace/name, spec in YAML)`.
pub(super) fn row(
    name: &'static str,
    policies: &[(&str, impl AsRef<str>)],
    request: Req,
    want: Want,
) -> Row {
    Row {
        name,
        policies: (policies.iter())
            .map(|(name, yaml)| ((*name).to_owned(), yaml.as_ref().to_owned()))
            .collect(),
        request,
        want,
        audit: None,
    }
}

impl Row {
    pub(super) fn audited_by(mut self, policy: &'static str) -> Self {
        self.audit = Some(policy);
        self
    }
}

pub(super) fn compile(
    policies: &[(impl AsRef<str>, impl AsRef<str>)],
) -> Result<Policies, AuthzError> {
    let specs: Vec<(String, AuthorizationPolicySpec)> = (policies.iter())
        .map(|(name, yaml)| {
            let spec = serde_yaml::from_str(yaml.as_ref()).unwrap();
            (name.as_ref().to_owned(), spec)
        })
        .collect();
    Policies::compile(&specs)
}

impl Want {
    fn text(&self) -> String {
        match self {
            Want::Open => "open".into(),
            Want::AllowedBy(p) => format!("allowed by {p}"),
            Want::DeniedBy(p) => format!("denied by {p}"),
            Want::NotAllowed => "not allowed".into(),
        }
    }
}

/// The decision in [`Want::text`]'s words.
fn outcome(decision: &Decision) -> String {
    match decision {
        Decision::Allow { policy: None, .. } => Want::Open.text(),
        Decision::Allow {
            policy: Some(m), ..
        } => format!("allowed by {}", m.policy),
        Decision::Deny {
            reason: DenyReason::Denied(m),
            ..
        } => format!("denied by {}", m.policy),
        Decision::Deny {
            reason: DenyReason::NotAllowed,
            ..
        } => Want::NotAllowed.text(),
    }
}

/// Runs every row and reports all the failures at once, by name.
pub(super) fn check(rows: Vec<Row>) {
    let mut failures = Vec::new();
    for row in &rows {
        let policies = match compile(&row.policies) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{}: does not compile: {e}", row.name));
                continue;
            }
        };
        let decision = policies.evaluate(&row.request.request());
        let audit = decision.audit().map(|m| m.policy.to_string());
        if outcome(&decision) != row.want.text() || audit.as_deref() != row.audit {
            failures.push(format!(
                "{}: want {:?} (audit {:?}), got {decision}",
                row.name, row.want, row.audit
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

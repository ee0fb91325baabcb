//! A gateway's TLS port: the servers sharing it, each chosen by the SNI of the client's
//! ClientHello, and what a connection becomes once its server is known — terminated and
//! routed as HTTP (or forwarded as TCP), or passed through untouched and routed by SNI.

use crate::config::ServerTlsSettings;
use crate::model::WeightedDestination;

#[derive(Debug, Clone)]
pub struct GatewayTls {
    /// In the order written; [`GatewayTls::server_for`] picks the most specific.
    pub servers: Vec<TlsServer>,
    /// PASSTHROUGH: a VirtualService's `tls` routes, the first whose SNI hosts match wins.
    pub sni_routes: Vec<SniRoute>,
    /// After termination: HTTP routed by this route config...
    pub route_config: Option<String>,
    /// ...or, without one, the decrypted stream forwarded as TCP.
    pub tcp_routes: Vec<WeightedDestination>,
}

/// One Gateway server on this port: the SNI names it answers and its TLS settings (the
/// certificate files already resolved, `credentialName` included).
#[derive(Debug, Clone, PartialEq)]
pub struct TlsServer {
    /// `host`, `*.example.com` or `*`, lower case.
    pub hosts: Vec<String>,
    pub tls: ServerTlsSettings,
    /// The routes of the connections it terminates, when not the listener's.
    pub route_config: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SniRoute {
    pub sni_hosts: Vec<String>,
    pub routes: Vec<WeightedDestination>,
}

impl GatewayTls {
    /// The server for a ClientHello's SNI, as Envoy picks a filter chain: an exact name,
    /// else the longest wildcard suffix, else `*`. Without SNI only `*` serves. Ties go to
    /// the first written.
    pub fn server_for(&self, sni: Option<&str>) -> Option<usize> {
        let sni = sni.map(str::to_ascii_lowercase);
        let mut found: Option<(usize, usize)> = None;
        for (index, server) in self.servers.iter().enumerate() {
            let score = server
                .hosts
                .iter()
                .filter_map(|p| specificity(p, sni.as_deref()))
                .max();
            if let Some(score) = score
                && found.is_none_or(|(best, _)| score > best)
            {
                found = Some((score, index));
            }
        }
        found.map(|(_, index)| index)
    }

    /// PASSTHROUGH: the first SNI route whose hosts match.
    pub fn route_for(&self, sni: Option<&str>) -> Option<usize> {
        let sni = sni.map(str::to_ascii_lowercase);
        self.sni_routes.iter().position(|r| {
            r.sni_hosts
                .iter()
                .any(|p| specificity(p, sni.as_deref()).is_some())
        })
    }
}

/// How specifically `pattern` matches `sni`: `*` least, a longer wildcard suffix more, the
/// exact name most; `None` if it does not match. Both lower case: compile lowers the
/// patterns once, so no connection pays for it.
pub fn specificity(pattern: &str, sni: Option<&str>) -> Option<usize> {
    if pattern == "*" {
        return Some(0);
    }
    let sni = sni?;
    match pattern.strip_prefix('*') {
        None => (pattern == sni).then_some(usize::MAX),
        Some(suffix) => {
            (sni.len() > suffix.len() && sni.ends_with(suffix)).then_some(1 + suffix.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(hosts: &[&str], cert: &str) -> TlsServer {
        TlsServer {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            tls: ServerTlsSettings {
                server_certificate: Some(cert.to_owned()),
                ..Default::default()
            },
            route_config: None,
        }
    }

    fn cert_for(gateway: &GatewayTls, sni: Option<&str>) -> Option<String> {
        gateway
            .server_for(sni)
            .and_then(|i| gateway.servers[i].tls.server_certificate.clone())
    }

    #[test]
    fn the_most_specific_server_wins_whatever_the_order() {
        let gateway = GatewayTls {
            servers: vec![
                server(&["*"], "any"),
                server(&["*.example.com"], "wide"),
                server(&["*.api.example.com"], "narrow"),
                server(&["a.example.com"], "exact"),
            ],
            sni_routes: vec![],
            route_config: None,
            tcp_routes: vec![],
        };
        assert_eq!(
            cert_for(&gateway, Some("a.example.com")).as_deref(),
            Some("exact")
        );
        assert_eq!(
            cert_for(&gateway, Some("A.Example.COM")).as_deref(),
            Some("exact")
        );
        assert_eq!(
            cert_for(&gateway, Some("b.example.com")).as_deref(),
            Some("wide")
        );
        assert_eq!(
            cert_for(&gateway, Some("x.api.example.com")).as_deref(),
            Some("narrow")
        );
        assert_eq!(
            cert_for(&gateway, Some("other.org")).as_deref(),
            Some("any")
        );
        assert_eq!(cert_for(&gateway, None).as_deref(), Some("any"));
    }

    #[test]
    fn without_a_catch_all_unknown_names_and_no_sni_find_nothing() {
        let gateway = GatewayTls {
            servers: vec![server(&["*.example.com"], "wide")],
            sni_routes: vec![],
            route_config: None,
            tcp_routes: vec![],
        };
        assert!(gateway.server_for(Some("example.com")).is_none());
        assert!(gateway.server_for(Some("example.org")).is_none());
        assert!(gateway.server_for(None).is_none());
    }

    #[test]
    fn sni_routes_go_in_order() {
        let route = |hosts: &[&str], weight| SniRoute {
            sni_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            routes: vec![WeightedDestination {
                destination: crate::model::Destination {
                    host: "h".into(),
                    subset: None,
                    port: None,
                },
                request_headers: Default::default(),
                response_headers: Default::default(),
                weight,
            }],
        };
        let gateway = GatewayTls {
            servers: vec![],
            sni_routes: vec![route(&["a.example.com"], 1), route(&["*.example.com"], 2)],
            route_config: None,
            tcp_routes: vec![],
        };
        let weight = |sni| {
            gateway
                .route_for(sni)
                .map(|i| gateway.sni_routes[i].routes[0].weight)
        };
        assert_eq!(weight(Some("a.example.com")), Some(1));
        assert_eq!(weight(Some("b.example.com")), Some(2));
        assert_eq!(weight(Some("b.example.org")), None);
        assert_eq!(weight(None), None);
    }
}

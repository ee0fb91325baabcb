//! The `Location` of a redirect route.

use crate::model::{Redirect, RedirectPort, RequestInfo, split_port};

/// The URL a [`Redirect`] sends `req` to, following Envoy's `RedirectAction` as Istio
/// configures it:
///
/// - scheme and host are replaced when set, else kept from the request;
/// - an explicit port (or the request's, for `FromRequest`) replaces the host's port and is
///   omitted when it is the scheme's default, as Istio omits `:80` for http and `:443` for
///   https;
/// - without one, a port in the request's authority is kept, unless the scheme changes
///   (the old scheme's port would be wrong for the new one);
/// - `uri` replaces the path, and the query too if it has one; otherwise the request's query
///   string is kept.
pub fn redirect_location(redirect: &Redirect, req: &RequestInfo) -> String {
    let scheme = redirect.scheme.as_deref().unwrap_or(req.scheme);
    let scheme_changed = !scheme.eq_ignore_ascii_case(req.scheme);
    let authority = match (&redirect.authority, redirect.port) {
        (Some(authority), None) => authority.clone(),
        (None, None) if scheme_changed => req.host().to_owned(),
        (None, None) => req.authority.to_owned(),
        (authority, Some(port)) => {
            let host = split_port(authority.as_deref().unwrap_or(req.authority)).0;
            let port = match port {
                RedirectPort::Port(port) => port,
                RedirectPort::FromRequest => req.port,
            };
            with_port(host, scheme, port)
        }
    };
    let path = match (&redirect.uri, req.query()) {
        (Some(uri), _) if uri.contains('?') => uri.clone(),
        (Some(uri), Some(query)) => format!("{uri}?{query}"),
        (Some(uri), None) => uri.clone(),
        (None, _) if req.path.is_empty() => "/".to_owned(),
        (None, _) => req.path.to_owned(),
    };
    format!("{scheme}://{authority}{path}")
}

fn with_port(host: &str, scheme: &str, port: u16) -> String {
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    if default == Some(port) {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

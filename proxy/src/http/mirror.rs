//! Traffic mirroring (Istio `mirror`/`mirrors`): a copy of the request goes to another
//! destination, its answer is ignored, and it never slows or fails the real request.

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, header};
use http_body_util::Full;
use mesh_core::model::{Downstream, Fraction};
use rand::RngExt;

use super::body::boxed;
use super::forward::{Target, endpoint_tls, pick_endpoint, upstream_request};
use super::upstream::{Dial, Upstreams};

/// A mirror destination, resolved, and its share of requests.
pub struct Mirror<'r> {
    pub target: Target<'r>,
    pub fraction: Fraction,
}

/// Sends a copy of the request to each mirror whose share includes it. Only bodies the
/// proxy already holds are mirrored; a streamed body cannot be read twice.
pub fn send_copies(
    upstreams: &std::sync::Arc<Upstreams>,
    mirrors: &[Mirror<'_>],
    parts: &Parts,
    body: &Bytes,
    downstream: &Downstream,
) {
    for mirror in mirrors {
        if !mirror
            .fraction
            .includes(rand::rng().random_range(0..1_000_000))
        {
            continue;
        }
        let Some((index, endpoint)) = pick_endpoint(&mirror.target, parts, downstream, &[], false)
        else {
            continue;
        };
        let dial = Dial {
            endpoint,
            connect_timeout: mirror.target.cluster.connect_timeout,
            idle_timeout: mirror.target.cluster.limits.idle_timeout,
            http2: parts.version == http::Version::HTTP_2,
            keep_alive: mirror.target.cluster.limits.max_requests_per_connection != Some(1),
            tls: endpoint_tls(&mirror.target, index),
        };
        let mut request = upstream_request(parts, &dial, boxed(Full::new(body.clone())));
        shadow_authority(&mut request, dial.http2);
        let upstreams = upstreams.clone();
        let cluster = mirror.target.cluster.host.clone();
        tokio::spawn(async move {
            match upstreams.send(&dial, request).await {
                Ok(response) => tracing::debug!(%cluster, status = %response.status(), "mirrored"),
                Err(error) => tracing::debug!(%cluster, %error, "mirror failed"),
            }
        });
    }
}

/// Envoy marks mirrored requests by appending `-shadow` to the host.
fn shadow_authority<B>(request: &mut http::Request<B>, http2: bool) {
    if http2 {
        let uri = request.uri();
        let shadowed = uri.authority().map(|a| {
            format!(
                "{}://{}-shadow{}",
                uri.scheme_str().unwrap_or("http"),
                a,
                uri.path_and_query().map_or("/", |p| p.as_str())
            )
        });
        if let Some(uri) = shadowed.and_then(|u| u.parse().ok()) {
            *request.uri_mut() = uri;
        }
    } else if let Some(host) = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        && let Ok(value) = HeaderValue::from_str(&format!("{host}-shadow"))
    {
        request.headers_mut().insert(header::HOST, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_requests_say_shadow_in_their_host() {
        let mut h1 = http::Request::get("http://127.0.0.1:1/x")
            .header("host", "reviews:9080")
            .body(())
            .expect("request");
        shadow_authority(&mut h1, false);
        assert_eq!(h1.headers()["host"], "reviews:9080-shadow");
        let mut h2 = http::Request::get("http://reviews:9080/x?y=1")
            .body(())
            .expect("request");
        shadow_authority(&mut h2, true);
        assert_eq!(h2.uri().to_string(), "http://reviews:9080-shadow/x?y=1");
    }
}

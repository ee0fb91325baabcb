//! CORS (Istio `corsPolicy`), answered by the proxy as Envoy's CORS filter does: a matching
//! preflight is answered here, a matching request gets the CORS headers on its response.

use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use mesh_core::model::Cors;

use super::body::{Body, local_reply};

pub enum Decision {
    /// Answer now: a preflight whose origin is allowed, or one that must not go upstream.
    Answer(Response<Body>),
    /// Forward, then add these headers to the response.
    Decorate(HeaderMap),
    /// Not a CORS request, or an origin not allowed: forward untouched.
    Pass,
}

pub fn evaluate(cors: &Cors, parts: &Parts) -> Decision {
    let Some(origin) = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return Decision::Pass;
    };
    let preflight = parts.method == Method::OPTIONS
        && parts
            .headers
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let allowed = cors.allow_origins.iter().any(|m| m.matches(origin));
    match (preflight, allowed) {
        (true, true) => Decision::Answer(preflight_reply(cors, origin)),
        (true, false) if !cors.forward_unmatched_preflights => {
            Decision::Answer(local_reply(StatusCode::OK, "", None))
        }
        (false, true) => Decision::Decorate(simple_headers(cors, origin)),
        _ => Decision::Pass,
    }
}

fn preflight_reply(cors: &Cors, origin: &str) -> Response<Body> {
    let mut reply = local_reply(StatusCode::OK, "", None);
    let headers = reply.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    headers.extend(simple_headers(cors, origin));
    let mut set = |name, value: &str| {
        if !value.is_empty()
            && let Ok(value) = HeaderValue::from_str(value)
        {
            headers.insert(name, value);
        }
    };
    set(header::ACCESS_CONTROL_ALLOW_METHODS, &cors.allow_methods);
    set(header::ACCESS_CONTROL_ALLOW_HEADERS, &cors.allow_headers);
    if let Some(max_age) = cors.max_age {
        set(
            header::ACCESS_CONTROL_MAX_AGE,
            &max_age.as_secs().to_string(),
        );
    }
    reply
}

fn simple_headers(cors: &Cors, origin: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(origin) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    if cors.allow_credentials {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if !cors.expose_headers.is_empty()
        && let Ok(value) = HeaderValue::from_str(&cors.expose_headers)
    {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value);
    }
    headers
}

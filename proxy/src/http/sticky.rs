//! Consistent hashing on a cookie (DestinationRule `consistentHash.httpCookie` with a `ttl`):
//! a request without the cookie gets one made up, is hashed on it, and the response sets
//! it, so the client sticks to the same endpoint from its next request on.

use http::request::Parts;
use http::{HeaderValue, header};
use mesh_core::balance::{HashPolicy, LbPolicy};
use rand::RngExt;

use super::forward::Target;

/// Issues the cookie when the target balances on one with a ttl and the request lacks it:
/// adds it to the request (so this request is hashed on it too) and returns the
/// `Set-Cookie` value for the response.
pub fn issue_cookie(target: &Target<'_>, parts: &mut Parts) -> Option<HeaderValue> {
    let policy = match target.subset.and_then(|s| target.cluster.subset(s)) {
        Some(subset) => &subset.lb,
        None => &target.cluster.lb,
    };
    let LbPolicy::ConsistentHash(hash) = policy else {
        return None;
    };
    let HashPolicy::Cookie(cookie) = &hash.key else {
        return None;
    };
    let ttl = cookie.ttl?;
    if has_cookie(&parts.headers, &cookie.name) {
        return None;
    }
    let value = format!("{:016x}", rand::rng().random::<u64>());
    let pair = format!("{}={value}", cookie.name);
    parts
        .headers
        .append(header::COOKIE, HeaderValue::from_str(&pair).ok()?);
    let path = cookie.path.as_deref().unwrap_or("/");
    HeaderValue::from_str(&format!(
        "{pair}; Path={path}; Max-Age={}; HttpOnly",
        ttl.as_secs().max(1)
    ))
    .ok()
}

fn has_cookie(headers: &http::HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|pair| pair.trim().split_once('=').is_some_and(|(n, _)| n == name))
}

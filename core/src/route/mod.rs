//! Route selection: which route of a virtual host a request takes, and why.
//!
//! Istio semantics: routes are tried in order and the first whose match list matches wins;
//! the conditions inside one [`RequestMatch`](crate::model::RequestMatch) all hold (AND); a
//! route's matches are alternatives (OR); a route with no matches takes everything.

mod matcher;
mod redirect;

#[cfg(test)]
mod tests;

pub use matcher::{Mismatch, first_mismatch, matches};
pub use redirect::redirect_location;

use crate::model::{HttpRoute, RequestInfo, RouteTable};

/// The first route that matches `req`, with the index of the match that admitted it.
///
/// The pair is what a log line needs to say why the request went where it did:
/// `route.matches.get(index)` is the condition that matched, or `None` when the route has no
/// matches (and takes everything; the index is then 0).
pub fn select<'r>(routes: &'r [HttpRoute], req: &RequestInfo) -> Option<(&'r HttpRoute, usize)> {
    routes.iter().find_map(|route| {
        if route.matches.is_empty() {
            return Some((route, 0));
        }
        let index = route.matches.iter().position(|m| matches(m, req))?;
        Some((route, index))
    })
}

impl RouteTable {
    /// [`select`] over this table's routes.
    pub fn select(&self, req: &RequestInfo) -> Option<(&HttpRoute, usize)> {
        select(&self.routes, req)
    }
}

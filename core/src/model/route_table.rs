//! Virtual hosts: which ordered list of routes applies to a request's host.

use std::borrow::Cow;
use std::collections::HashMap;

use super::HttpRoute;
use super::request::split_port;

/// The ordered routes of one virtual host, and the domains it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    /// For logs, e.g. `reviews.default.svc.cluster.local:9080`.
    pub name: String,
    /// Envoy-style domains: `reviews`, `reviews:9080`, `*.example.com`, `example.*` or `*`.
    pub domains: Vec<String>,
    /// Tried in order; the first that matches wins ([`crate::route::select`]).
    pub routes: Vec<HttpRoute>,
}

/// All virtual hosts of one listener, indexed for lookup by the request's authority.
#[derive(Debug, Clone, Default)]
pub struct RouteConfig {
    tables: Vec<RouteTable>,
    exact: HashMap<String, usize>,
    /// `*.example.com` stored as `.example.com`, longest first.
    suffixes: Vec<(String, usize)>,
    /// `example.*` stored as `example.`, longest first.
    prefixes: Vec<(String, usize)>,
    any: Option<usize>,
}

impl RouteConfig {
    /// Indexes the tables' domains. When two tables claim the same domain, the first keeps it
    /// (Envoy would reject the config; the conversion from Istio config never produces this).
    pub fn new(tables: Vec<RouteTable>) -> Self {
        let mut config = Self::default();
        for (index, table) in tables.iter().enumerate() {
            for domain in &table.domains {
                config.index_domain(&domain.to_ascii_lowercase(), index);
            }
        }
        // Stable sorts keep the first table's claim ahead of later equal-length ones.
        config
            .suffixes
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        config
            .prefixes
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        config.tables = tables;
        config
    }

    fn index_domain(&mut self, domain: &str, index: usize) {
        if domain == "*" {
            self.any.get_or_insert(index);
        } else if let Some(suffix) = domain.strip_prefix('*') {
            self.suffixes.push((suffix.to_owned(), index));
        } else if let Some(prefix) = domain.strip_suffix('*') {
            self.prefixes.push((prefix.to_owned(), index));
        } else {
            self.exact.entry(domain.to_owned()).or_insert(index);
        }
    }

    pub fn tables(&self) -> &[RouteTable] {
        &self.tables
    }

    /// The virtual host for a request's authority, chosen as Envoy does: an exact domain,
    /// else the longest `*.suffix`, else the longest `prefix.*`, else `*`. Hosts compare
    /// case-insensitively. If the authority carries a port and nothing matches it, its host
    /// alone is tried, so `reviews:9080` finds a table that only lists `reviews`.
    pub fn table_for(&self, authority: &str) -> Option<&RouteTable> {
        let authority = lowercase(authority);
        let found = self
            .lookup(&authority)
            .or_else(|| match split_port(&authority) {
                (host, Some(_)) => self.lookup(host),
                (_, None) => None,
            });
        found.and_then(|index| self.tables.get(index))
    }

    fn lookup(&self, host: &str) -> Option<usize> {
        if let Some(&index) = self.exact.get(host) {
            return Some(index);
        }
        // A wildcard stands for at least one character, so `*.a.com` does not match `.a.com`.
        let suffix = self
            .suffixes
            .iter()
            .find(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()));
        let prefix = || {
            self.prefixes
                .iter()
                .find(|(prefix, _)| host.len() > prefix.len() && host.starts_with(prefix.as_str()))
        };
        suffix.or_else(prefix).map(|&(_, index)| index).or(self.any)
    }
}

fn lowercase(value: &str) -> Cow<'_, str> {
    if value.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(value.to_ascii_lowercase())
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, domains: &[&str]) -> RouteTable {
        RouteTable {
            name: name.to_owned(),
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            routes: Vec::new(),
        }
    }

    fn found<'c>(config: &'c RouteConfig, authority: &str) -> Option<&'c str> {
        config.table_for(authority).map(|t| t.name.as_str())
    }

    #[test]
    fn exact_then_suffix_then_prefix_then_any() {
        let config = RouteConfig::new(vec![
            table("any", &["*"]),
            table("prefix", &["api.*"]),
            table("short-suffix", &["*.com"]),
            table("suffix", &["*.example.com"]),
            table("exact", &["api.example.com", "reviews", "reviews:9080"]),
        ]);
        assert_eq!(found(&config, "api.example.com"), Some("exact"));
        assert_eq!(found(&config, "API.Example.com"), Some("exact"));
        assert_eq!(found(&config, "www.example.com"), Some("suffix"));
        assert_eq!(found(&config, "www.other.com"), Some("short-suffix"));
        assert_eq!(found(&config, "api.local"), Some("prefix"));
        assert_eq!(found(&config, "elsewhere"), Some("any"));
        assert_eq!(found(&config, "reviews:9080"), Some("exact"));
        // The wildcard must stand for at least one character.
        assert_eq!(found(&config, ".example.com"), Some("short-suffix"));
    }

    #[test]
    fn port_is_dropped_only_when_nothing_matches_with_it() {
        let config = RouteConfig::new(vec![
            table("plain", &["reviews"]),
            table("with-port", &["ratings:9080"]),
        ]);
        assert_eq!(found(&config, "reviews:9080"), Some("plain"));
        assert_eq!(found(&config, "ratings:9080"), Some("with-port"));
        assert_eq!(found(&config, "ratings"), None);
        assert_eq!(found(&config, ""), None);
    }

    #[test]
    fn first_table_keeps_a_duplicate_domain() {
        let config = RouteConfig::new(vec![
            table("first", &["a", "*.b"]),
            table("second", &["a", "*.b"]),
        ]);
        assert_eq!(found(&config, "a"), Some("first"));
        assert_eq!(found(&config, "x.b"), Some("first"));
    }
}

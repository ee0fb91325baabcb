//! The routes in force: the VirtualServices the sidecars run, per host, read from each
//! sidecar's `/config_dump` as `meshctl proxy-config routes` reads it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cmd::proxy_config::tables::route_match;
use crate::cmd::proxy_config::view::{ConfigDump, RouteConfig, read};

/// One VirtualService's routes for one host, and the sidecars that run them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostRoutes {
    /// `namespace/name`.
    pub virtual_service: String,
    /// The virtual host, as the proxies name it (`reviews:9080`).
    pub host: String,
    pub routes: Vec<RouteRow>,
    pub proxies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRow {
    /// As `proxy-config routes` prints it: `/*`, `/api*`, `headers.end-user=jason`...
    #[serde(rename = "match")]
    pub matches: String,
    /// `host[|subset] weight%` for each destination; empty for a redirect or a direct
    /// response.
    pub destinations: Vec<String>,
}

/// The VirtualService routes of every `(workload, /config_dump)`, merged by
/// VirtualService and host; routes the mesh makes without one are left out.
pub fn in_force(dumps: &[(String, serde_json::Value)]) -> Vec<HostRoutes> {
    let mut found: BTreeMap<(String, String), HostRoutes> = BTreeMap::new();
    for (workload, dump) in dumps {
        let configs: Vec<RouteConfig> = read::<ConfigDump>(dump)
            .snapshot
            .map(|s| s.route_configs)
            .unwrap_or_default();
        for host in configs.iter().flat_map(|c| &c.virtual_hosts) {
            let Some(virtual_service) = &host.virtual_service else {
                continue;
            };
            let entry = found
                .entry((virtual_service.clone(), host.name.clone()))
                .or_insert_with(|| HostRoutes {
                    virtual_service: virtual_service.clone(),
                    host: host.name.clone(),
                    routes: host
                        .routes
                        .iter()
                        .map(|route| RouteRow {
                            matches: route_match(&route.matches),
                            destinations: route
                                .route
                                .iter()
                                .map(|d| {
                                    let subset = d.destination.subset.as_deref();
                                    format!(
                                        "{}{} {}%",
                                        d.destination.host,
                                        subset.map(|s| format!("|{s}")).unwrap_or_default(),
                                        d.weight.unwrap_or(100)
                                    )
                                })
                                .collect(),
                        })
                        .collect(),
                    proxies: Vec::new(),
                });
            if !entry.proxies.contains(workload) {
                entry.proxies.push(workload.clone());
            }
        }
    }
    found.into_values().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn virtual_service_routes_are_merged_across_sidecars() {
        let dump = json!({"snapshot": {"routeConfigs": [{
        "name": "9080",
        "virtualHosts": [
            {"name": "reviews:9080", "domains": ["reviews"], "virtualService": "default/reviews",
             "routes": [
                {"match": [{"headers": {"end-user": {"exact": "jason"}}}],
                 "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
                {"route": [{"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                           {"destination": {"host": "reviews", "subset": "v3"}, "weight": 10}]}]},
            {"name": "details:9080", "domains": ["details"],
             "routes": [{"route": [{"destination": {"host": "details"}}]}]}
        ]}]}});
        let dumps = [
            ("productpage-v1".to_owned(), dump.clone()),
            ("reviews-v1".to_owned(), dump),
            ("broken".to_owned(), json!("not a dump")),
        ];
        let routes = in_force(&dumps);
        assert_eq!(routes.len(), 1, "{routes:#?}");
        assert_eq!(routes[0].virtual_service, "default/reviews");
        assert_eq!(routes[0].host, "reviews:9080");
        assert_eq!(routes[0].proxies, ["productpage-v1", "reviews-v1"]);
        assert_eq!(routes[0].routes[0].destinations, ["reviews|v2 100%"]);
        assert!(routes[0].routes[0].matches.contains("jason"), "{routes:#?}");
        assert_eq!(
            routes[0].routes[1].destinations,
            ["reviews|v1 90%", "reviews|v3 10%"]
        );
    }
}

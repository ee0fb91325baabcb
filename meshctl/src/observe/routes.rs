//! The routes in force: the VirtualServices the sidecars run, per host, read from each
//! sidecar's `/config_dump` as `meshctl proxy-config routes` reads it; on Kubernetes, the
//! VirtualServices the cluster holds (as `meshctl analyze` reads them), per host.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cmd::proxy_config::tables::route_match;
use crate::cmd::proxy_config::view::{ConfigDump, Route, RouteConfig, read};
use mesh_core::config::ConfigObject;
use mesh_core::load::ConfigSet;

/// One VirtualService's routes for one host, and the sidecars that run them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostRoutes {
    /// `namespace/name`.
    pub virtual_service: String,
    /// The virtual host, as the proxies name it (`reviews:9080`).
    pub host: String,
    pub routes: Vec<RouteRow>,
    /// The sidecars that run it; empty when it was read from the cluster's config.
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
                    routes: host.routes.iter().map(row).collect(),
                    proxies: Vec::new(),
                });
            if !entry.proxies.contains(workload) {
                entry.proxies.push(workload.clone());
            }
        }
    }
    found.into_values().collect()
}

fn row(route: &Route) -> RouteRow {
    RouteRow {
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
    }
}

/// The HTTP routes of every VirtualService in `config`, one entry per host it names. Its
/// routes read as the proxies' admin port shows them (Istio's field names in both).
pub fn from_config(config: &ConfigSet) -> Vec<HostRoutes> {
    let mut found = Vec::new();
    for located in &config.objects {
        let ConfigObject::VirtualService(vs) = &located.object else {
            continue;
        };
        let routes: Vec<RouteRow> = vs
            .spec
            .http
            .iter()
            .map(|http| row(&read(&serde_json::to_value(http).unwrap_or_default())))
            .collect();
        for host in &vs.spec.hosts {
            found.push(HostRoutes {
                virtual_service: format!("{}/{}", vs.metadata.namespace, vs.metadata.name),
                host: host.clone(),
                routes: routes.clone(),
                proxies: Vec::new(),
            });
        }
    }
    found.sort_by(|a, b| (&a.virtual_service, &a.host).cmp(&(&b.virtual_service, &b.host)));
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn virtual_services_of_the_cluster_per_host() {
        let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews, reviews.shop.svc.cluster.local]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v3}, weight: 10}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec: {host: reviews}
"#;
        let config = mesh_core::load::load_str(yaml, "routes.yaml");
        let routes = from_config(&config);
        let hosts: Vec<&str> = routes.iter().map(|r| r.host.as_str()).collect();
        assert_eq!(
            hosts,
            ["reviews", "reviews.shop.svc.cluster.local"],
            "{routes:#?}"
        );
        assert_eq!(routes[0].virtual_service, "shop/reviews");
        assert!(
            routes[0].routes[0].matches.contains("end-user=jason"),
            "{routes:#?}"
        );
        assert_eq!(routes[0].routes[0].destinations, ["reviews|v2 100%"]);
        assert_eq!(
            routes[0].routes[1].destinations,
            ["reviews|v1 90%", "reviews|v3 10%"]
        );
        assert!(routes[0].proxies.is_empty());
    }

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

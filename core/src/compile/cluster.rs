//! A snapshot's cluster (service port, endpoints, DestinationRule) -> [`model::Cluster`].

use std::str::FromStr;

use http::HeaderName;

use super::Errors;
use super::upstream_tls;
use crate::balance::{ConsistentHash, HashCookie, HashPolicy, LbPolicy, Maglev};
use crate::config::{self, LoadBalancerSettings, SimpleLb, TrafficPolicy};
use crate::model::{
    self, ClusterSubset, ConnectionLimits, DEFAULT_CONNECT_TIMEOUT, Endpoint, Fraction,
    OutlierPolicy, Subset,
};
use crate::snapshot::ClusterSpec;

pub(crate) fn cluster(
    spec: &ClusterSpec,
    path: &str,
    errors: &mut Errors,
) -> Option<model::Cluster> {
    let before = errors.0.len();
    let policy = effective_policy(spec.traffic_policy.as_ref(), spec.port);
    let lb = lb_policy(
        policy.load_balancer.as_ref(),
        &format!("{path}.trafficPolicy.loadBalancer"),
        errors,
    );
    let tls = upstream_tls::destination(spec.traffic_policy.as_ref(), spec.port);
    let subsets: Vec<ClusterSubset> = spec
        .subsets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let subset_policy = s
                .traffic_policy
                .as_ref()
                .map(|p| effective_policy(Some(p), spec.port));
            let lb = match subset_policy
                .as_ref()
                .and_then(|p| p.load_balancer.as_ref())
            {
                Some(settings) => lb_policy(
                    Some(settings),
                    &format!("{path}.subsets[{i}].trafficPolicy.loadBalancer"),
                    errors,
                ),
                None => lb.clone(),
            };
            let subset_tls = upstream_tls::subset(&tls, s.traffic_policy.as_ref(), spec.port);
            ClusterSubset {
                subset: Subset {
                    name: s.name.clone(),
                    labels: s.labels.clone(),
                },
                lb,
                tls: subset_tls,
            }
        })
        .collect();
    let connect_timeout = policy
        .connection_pool
        .as_ref()
        .and_then(|p| p.tcp.as_ref())
        .and_then(|t| t.connect_timeout)
        .and_then(|t| t.to_std())
        .filter(|t| !t.is_zero())
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let endpoints: Vec<Endpoint> = spec
        .endpoints
        .iter()
        .map(|e| Endpoint {
            address: e.address,
            labels: e.labels.clone(),
            weight: e.weight.unwrap_or(1),
            identity: e.identity.clone(),
            workload: e.workload.as_deref().map(|name| {
                std::sync::Arc::new(model::WorkloadMeta::of_endpoint(
                    name,
                    e.identity.as_deref(),
                    &e.labels,
                ))
            }),
        })
        .collect();
    (errors.0.len() == before).then(|| model::Cluster {
        host: spec.host.clone(),
        port: spec.port,
        endpoints,
        lb,
        connect_timeout,
        subsets,
        limits: limits(
            policy.connection_pool.as_ref(),
            policy.retry_budget.as_ref(),
        ),
        outlier: policy.outlier_detection.as_ref().map(outlier),
        tls,
        dns: spec.dns.clone(),
    })
}

fn limits(
    pool: Option<&config::ConnectionPoolSettings>,
    budget: Option<&config::RetryBudget>,
) -> ConnectionLimits {
    let defaults = ConnectionLimits::default();
    let tcp = pool.and_then(|p| p.tcp.as_ref());
    let http = pool.and_then(|p| p.http.as_ref());
    // Istio reads 0 as "unset".
    let limit = |v: Option<u32>, default: u32| v.filter(|n| *n > 0).unwrap_or(default);
    let duration =
        |d: Option<config::Duration>| d.and_then(|d| d.to_std()).filter(|d| !d.is_zero());
    ConnectionLimits {
        max_connections: limit(
            tcp.and_then(|t| t.max_connections),
            defaults.max_connections,
        ),
        max_pending_requests: limit(
            http.and_then(|h| h.http1_max_pending_requests),
            defaults.max_pending_requests,
        ),
        max_requests: limit(
            http.and_then(|h| h.http2_max_requests),
            defaults.max_requests,
        ),
        max_retries: limit(http.and_then(|h| h.max_retries), defaults.max_retries),
        retry_budget: budget
            .and_then(|b| b.percent)
            .map_or(defaults.retry_budget, |p| Fraction::from_percent(p.value)),
        min_retry_concurrency: budget
            .and_then(|b| b.min_retry_concurrency)
            .unwrap_or(defaults.min_retry_concurrency),
        idle_timeout: duration(http.and_then(|h| h.idle_timeout))
            .or(duration(tcp.and_then(|t| t.idle_timeout))),
        max_requests_per_connection: http
            .and_then(|h| h.max_requests_per_connection)
            .filter(|n| *n > 0),
        upgrade_to_http2: http.and_then(|h| h.h2_upgrade_policy)
            == Some(config::H2UpgradePolicy::Upgrade),
    }
}

fn outlier(detection: &config::OutlierDetection) -> OutlierPolicy {
    let defaults = OutlierPolicy::default();
    let duration = |d: Option<config::Duration>, default| {
        d.and_then(|d| d.to_std())
            .filter(|d| !d.is_zero())
            .unwrap_or(default)
    };
    // The deprecated consecutiveErrors counts gateway errors, as Istio maps it.
    let gateway = detection
        .consecutive_gateway_errors
        .or(detection.consecutive_errors);
    OutlierPolicy {
        consecutive_5xx: match detection.consecutive_5xx_errors {
            Some(0) => None,
            Some(n) => Some(n),
            None if gateway.is_some() && detection.consecutive_errors.is_some() => None,
            None => defaults.consecutive_5xx,
        },
        consecutive_gateway_errors: gateway.filter(|n| *n > 0),
        consecutive_local_origin_failures: detection
            .split_external_local_origin_errors
            .unwrap_or(false)
            .then(|| detection.consecutive_local_origin_failures.unwrap_or(5))
            .filter(|n| *n > 0),
        interval: duration(detection.interval, defaults.interval),
        base_ejection_time: duration(detection.base_ejection_time, defaults.base_ejection_time),
        max_ejection_percent: detection
            .max_ejection_percent
            .unwrap_or(defaults.max_ejection_percent)
            .min(100),
        min_health_percent: detection
            .min_health_percent
            .unwrap_or(defaults.min_health_percent)
            .min(100),
    }
}

/// The rule's policy with the matching `portLevelSettings` entry in place of its sections,
/// as Istio merges them.
fn effective_policy(policy: Option<&TrafficPolicy>, port: u16) -> TrafficPolicy {
    let mut merged = policy.cloned().unwrap_or_default();
    let port_level = policy
        .into_iter()
        .flat_map(|p| &p.port_level_settings)
        .find(|s| s.port.number == u32::from(port));
    // Istio's MergeTrafficPolicy: a port's settings replace the policy's, section by
    // section, with no inheritance ("port level policies do not inherit and instead [fall
    // back] to defaults if not provided").
    if let Some(settings) = port_level {
        let settings = settings.clone();
        merged.load_balancer = settings.load_balancer;
        merged.connection_pool = settings.connection_pool;
        merged.outlier_detection = settings.outlier_detection;
        merged.tls = settings.tls;
    }
    merged
}

fn lb_policy(settings: Option<&LoadBalancerSettings>, path: &str, errors: &mut Errors) -> LbPolicy {
    let Some(settings) = settings else {
        return LbPolicy::default();
    };
    match (&settings.simple, &settings.consistent_hash) {
        (Some(simple), None) => match simple {
            SimpleLb::RoundRobin => LbPolicy::RoundRobin,
            SimpleLb::Random => LbPolicy::Random,
            // PASSTHROUGH needs the original destination; until then, balance as Istio's default.
            SimpleLb::LeastRequest
            | SimpleLb::LeastConn
            | SimpleLb::Unspecified
            | SimpleLb::Passthrough => LbPolicy::LeastRequest,
        },
        (None, Some(hash)) => consistent_hash(hash, &format!("{path}.consistentHash"), errors)
            .map(LbPolicy::ConsistentHash)
            .unwrap_or_default(),
        (None, None) => LbPolicy::default(),
        (Some(_), Some(_)) => {
            errors.push(path, "set one of simple or consistentHash, not both");
            LbPolicy::default()
        }
    }
}

fn consistent_hash(
    hash: &config::ConsistentHashLb,
    path: &str,
    errors: &mut Errors,
) -> Option<ConsistentHash> {
    let key = match (
        &hash.http_header_name,
        &hash.http_cookie,
        hash.use_source_ip.unwrap_or(false),
        &hash.http_query_parameter_name,
    ) {
        (Some(header), None, false, None) => HashPolicy::Header(errors.check(
            &format!("{path}.httpHeaderName"),
            HeaderName::from_str(&header.to_ascii_lowercase()),
        )?),
        (None, Some(cookie), false, None) => HashPolicy::Cookie(HashCookie {
            name: cookie.name.clone(),
            path: cookie.path.clone(),
            ttl: cookie.ttl.and_then(|t| t.to_std()).filter(|t| !t.is_zero()),
        }),
        (None, None, true, None) => HashPolicy::SourceIp,
        (None, None, false, Some(param)) => HashPolicy::QueryParameter(param.clone()),
        _ => {
            errors.push(path, "set exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName");
            return None;
        }
    };
    let table_size = match (&hash.maglev, &hash.ring_hash) {
        (Some(maglev), _) => maglev.table_size.and_then(|s| usize::try_from(s).ok()),
        _ => None,
    }
    .unwrap_or(Maglev::DEFAULT_TABLE_SIZE);
    Some(ConsistentHash { key, table_size })
}

#[cfg(test)]
mod port_level_tests {
    use super::*;

    #[test]
    fn a_port_entry_replaces_every_section_without_inheriting() {
        let policy: TrafficPolicy = serde_yaml::from_str(
            r#"
loadBalancer: {simple: RANDOM}
outlierDetection: {consecutive5xxErrors: 3}
connectionPool: {tcp: {maxConnections: 10}}
portLevelSettings:
- port: {number: 9080}
  connectionPool: {tcp: {maxConnections: 1}}
"#,
        )
        .expect("a traffic policy");
        let on_port = effective_policy(Some(&policy), 9080);
        assert!(on_port.load_balancer.is_none(), "not inherited");
        assert!(on_port.outlier_detection.is_none(), "not inherited");
        assert_eq!(
            on_port
                .connection_pool
                .and_then(|p| p.tcp)
                .and_then(|t| t.max_connections),
            Some(1)
        );
        let elsewhere = effective_policy(Some(&policy), 8080);
        assert!(elsewhere.outlier_detection.is_some());
        assert!(elsewhere.load_balancer.is_some());
    }
}

//! DestinationRule: host, subsets, and traffic policies (load balancing, connection pool,
//! outlier detection, TLS), at the top, per port and per subset.

use std::collections::BTreeMap;

use crate::config::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, ConsistentHashLb,
    DestinationRuleSpec, H2UpgradePolicy, LoadBalancerSettings, Object, OutlierDetection,
    PortTrafficPolicy, TrafficPolicy,
};

use super::hosts::check_wildcard_domain;
use super::meta::{ExportNone, check_export_to};
use super::names::{check_labels, is_istio_label};
use super::net::check_port;
use super::string_match::check_header_name;
use super::values::{Zero, check_duration, check_percent};
use super::{FieldPath, Report};

pub(super) fn check(dr: &Object<DestinationRuleSpec>, report: &mut Report) {
    let spec = &dr.spec;
    let at = FieldPath::spec();
    report.check(&at.field("host"), check_wildcard_domain(&spec.host));
    if let Some(policy) = &spec.traffic_policy {
        check_policy(policy, &at.field("trafficPolicy"), report);
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, subset) in spec.subsets.iter().enumerate() {
        let here = at.item("subsets", i);
        if subset.name.is_empty() {
            report.error(&here.field("name"), "subset name must not be empty");
        } else if !is_istio_label(&subset.name) {
            report.error(
                &here.field("name"),
                format!("subset name {:?} is invalid; use letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", subset.name),
            );
        }
        if let Some(first) = names.insert(&subset.name, i) {
            report.error(
                &here.field("name"),
                format!("duplicate subset name {:?} (also subsets[{first}]); subset names must be unique", subset.name),
            );
        }
        check_labels(&subset.labels, &here.field("labels"), report);
        if let Some(policy) = &subset.traffic_policy {
            check_policy(policy, &here.field("trafficPolicy"), report);
        }
    }
    check_export_to(
        &spec.export_to,
        &dr.metadata.namespace,
        ExportNone::Invalid,
        &at.field("exportTo"),
        report,
    );
}

fn check_policy(policy: &TrafficPolicy, at: &FieldPath, report: &mut Report) {
    let empty = policy.load_balancer.is_none()
        && policy.connection_pool.is_none()
        && policy.outlier_detection.is_none()
        && policy.tls.is_none()
        && policy.port_level_settings.is_empty();
    if empty {
        report.error(
            at,
            "trafficPolicy must set at least one field; add a policy or remove it",
        );
    }
    check_parts(
        policy.load_balancer.as_ref(),
        policy.connection_pool.as_ref(),
        policy.outlier_detection.as_ref(),
        policy.tls.as_ref(),
        at,
        report,
    );
    let mut ports: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, port_policy) in policy.port_level_settings.iter().enumerate() {
        let here = at.item("portLevelSettings", i);
        check_port_policy(port_policy, &here, report);
        if let Some(first) = ports.insert(port_policy.port.number, i) {
            report.warning(
                &here.field("port").field("number"),
                format!("port {} already has settings in portLevelSettings[{first}]; only one applies, merge them", port_policy.port.number),
            );
        }
    }
}

fn check_port_policy(policy: &PortTrafficPolicy, at: &FieldPath, report: &mut Report) {
    report.check(
        &at.field("port").field("number"),
        check_port(policy.port.number),
    );
    let empty = policy.load_balancer.is_none()
        && policy.connection_pool.is_none()
        && policy.outlier_detection.is_none()
        && policy.tls.is_none();
    if empty {
        report.error(at, "port traffic policy must set at least one of loadBalancer, connectionPool, outlierDetection or tls");
    }
    check_parts(
        policy.load_balancer.as_ref(),
        policy.connection_pool.as_ref(),
        policy.outlier_detection.as_ref(),
        policy.tls.as_ref(),
        at,
        report,
    );
}

fn check_parts(
    load_balancer: Option<&LoadBalancerSettings>,
    pool: Option<&ConnectionPoolSettings>,
    outlier: Option<&OutlierDetection>,
    tls: Option<&ClientTlsSettings>,
    at: &FieldPath,
    report: &mut Report,
) {
    if let Some(lb) = load_balancer {
        check_load_balancer(lb, &at.field("loadBalancer"), report);
    }
    if let Some(pool) = pool {
        check_connection_pool(pool, &at.field("connectionPool"), report);
    }
    if let Some(outlier) = outlier {
        check_outlier_detection(outlier, &at.field("outlierDetection"), report);
    }
    if let Some(tls) = tls {
        check_tls(tls, &at.field("tls"), report);
    }
}

fn check_load_balancer(lb: &LoadBalancerSettings, at: &FieldPath, report: &mut Report) {
    match (&lb.simple, &lb.consistent_hash) {
        (None, None) => report.error(at, "loadBalancer needs simple or consistentHash"),
        (Some(_), Some(_)) => report.error(at, "set only one of simple and consistentHash"),
        (None, Some(hash)) => check_consistent_hash(hash, &at.field("consistentHash"), report),
        (Some(_), None) => {}
    }
}

fn check_consistent_hash(hash: &ConsistentHashLb, at: &FieldPath, report: &mut Report) {
    let keys: Vec<&str> = [
        ("httpHeaderName", hash.http_header_name.is_some()),
        ("httpCookie", hash.http_cookie.is_some()),
        ("useSourceIp", hash.use_source_ip == Some(true)),
        (
            "httpQueryParameterName",
            hash.http_query_parameter_name.is_some(),
        ),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    match keys.len() {
        0 => report.error(at, "consistentHash needs one hash key: httpHeaderName, httpCookie, useSourceIp: true or httpQueryParameterName"),
        1 => {}
        _ => report.error(at, format!("set only one hash key (found {})", keys.join(" and "))),
    }
    if let Some(header) = &hash.http_header_name {
        check_header_name(header, &at.field("httpHeaderName"), report);
    }
    if let Some(name) = hash
        .http_query_parameter_name
        .as_ref()
        .filter(|n| n.is_empty())
    {
        report.error(
            &at.field("httpQueryParameterName"),
            format!("query parameter name {name:?} must not be empty"),
        );
    }
    if let Some(cookie) = &hash.http_cookie {
        let here = at.field("httpCookie");
        if cookie.name.is_empty() {
            report.error(&here.field("name"), "cookie name must not be empty");
        }
        if let Some(ttl) = &cookie.ttl {
            report.check(&here.field("ttl"), check_duration(ttl, Zero::Disables));
        }
    }
    if hash.ring_hash.is_some() && hash.maglev.is_some() {
        report.error(at, "set only one of ringHash and maglev");
    }
    if hash.minimum_ring_size.is_some() {
        let here = at.field("minimumRingSize");
        report.warning(
            &here,
            "minimumRingSize is deprecated; use ringHash: {minimumRingSize: ...}",
        );
        if hash.ring_hash.is_some() || hash.maglev.is_some() {
            report.error(
                &here,
                "set only one of minimumRingSize and ringHash or maglev",
            );
        }
    }
    if let Some(size) = hash.maglev.as_ref().and_then(|m| m.table_size) {
        report.check(
            &at.field("maglev").field("tableSize"),
            check_maglev_table_size(size),
        );
    }
}

/// Envoy requires a prime table size below 5000011.
fn check_maglev_table_size(size: u64) -> Result<(), String> {
    if size == 0 || size >= 5_000_011 {
        return Err(format!(
            "maglev tableSize {size} must be a prime below 5000011, e.g. 65537"
        ));
    }
    if !is_prime(size) {
        return Err(format!(
            "maglev tableSize {size} is not a prime number; use a prime such as 65537"
        ));
    }
    Ok(())
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    (2..)
        .take_while(|d| d * d <= n)
        .all(|d| !n.is_multiple_of(d))
}

/// In Istio's API 0 means "unset": the default (usually unlimited) applies, which is rarely
/// what someone writing 0 wants.
fn warn_zero(value: Option<u32>, at: &FieldPath, report: &mut Report) {
    if value == Some(0) {
        report.warning(at, "0 means unset here, so the default (unlimited) applies; set a positive limit or remove the field");
    }
}

pub(super) fn check_connection_pool(
    pool: &ConnectionPoolSettings,
    at: &FieldPath,
    report: &mut Report,
) {
    if pool.tcp.is_none() && pool.http.is_none() {
        report.error(at, "connectionPool must set tcp or http");
    }
    if let Some(tcp) = &pool.tcp {
        let at = at.field("tcp");
        warn_zero(tcp.max_connections, &at.field("maxConnections"), report);
        for (field, duration) in [
            ("connectTimeout", &tcp.connect_timeout),
            ("maxConnectionDuration", &tcp.max_connection_duration),
            ("idleTimeout", &tcp.idle_timeout),
        ] {
            if let Some(duration) = duration {
                report.check(&at.field(field), check_duration(duration, Zero::Invalid));
            }
        }
        if let Some(keepalive) = &tcp.tcp_keepalive {
            let at = at.field("tcpKeepalive");
            warn_zero(keepalive.probes, &at.field("probes"), report);
            for (field, duration) in [("time", &keepalive.time), ("interval", &keepalive.interval)]
            {
                if let Some(duration) = duration {
                    report.check(&at.field(field), check_duration(duration, Zero::Invalid));
                }
            }
        }
    }
    if let Some(http) = &pool.http {
        let at = at.field("http");
        for (field, value) in [
            ("http1MaxPendingRequests", http.http1_max_pending_requests),
            ("http2MaxRequests", http.http2_max_requests),
            ("maxRetries", http.max_retries),
            ("maxConcurrentStreams", http.max_concurrent_streams),
        ] {
            warn_zero(value, &at.field(field), report);
        }
        if let Some(idle) = &http.idle_timeout {
            report.check(
                &at.field("idleTimeout"),
                check_duration(idle, Zero::Invalid),
            );
        }
        if http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade)
            && http.use_client_protocol == Some(true)
        {
            report.error(
                &at.field("useClientProtocol"),
                "useClientProtocol cannot be true when h2UpgradePolicy is UPGRADE; keep one",
            );
        }
    }
}

fn check_outlier_detection(outlier: &OutlierDetection, at: &FieldPath, report: &mut Report) {
    if outlier.consecutive_errors.is_some() {
        report.warning(
            &at.field("consecutiveErrors"),
            "consecutiveErrors is deprecated; use consecutive5xxErrors or consecutiveGatewayErrors",
        );
    }
    for (field, duration) in [
        ("interval", &outlier.interval),
        ("baseEjectionTime", &outlier.base_ejection_time),
    ] {
        if let Some(duration) = duration {
            report.check(&at.field(field), check_duration(duration, Zero::Invalid));
        }
    }
    for (field, percent) in [
        ("maxEjectionPercent", outlier.max_ejection_percent),
        ("minHealthPercent", outlier.min_health_percent),
    ] {
        if let Some(percent) = percent {
            report.check(&at.field(field), check_percent(percent));
        }
    }
}

fn check_tls(tls: &ClientTlsSettings, at: &FieldPath, report: &mut Report) {
    let files: Vec<&str> = [
        ("clientCertificate", tls.client_certificate.is_some()),
        ("privateKey", tls.private_key.is_some()),
        ("caCertificates", tls.ca_certificates.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    let credential = tls.credential_name.is_some();
    let terminating = matches!(tls.mode, ClientTlsMode::Simple | ClientTlsMode::Mutual);
    if terminating && credential && !files.is_empty() {
        report.error(
            &at.field("credentialName"),
            format!(
                "credentialName holds the certificates; remove {}",
                files.join(" and ")
            ),
        );
    }
    if tls.mode == ClientTlsMode::Mutual && !credential {
        let missing: Vec<&str> = [
            ("clientCertificate", &tls.client_certificate),
            ("privateKey", &tls.private_key),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.is_none().then_some(name))
        .collect();
        if !missing.is_empty() {
            report.error(
                at,
                format!("MUTUAL TLS needs clientCertificate and privateKey, or credentialName (missing {})", missing.join(" and ")),
            );
        }
    }
    if terminating
        && files.is_empty()
        && let Some(name) = &tls.credential_name
    {
        report.warning(
            &at.field("credentialName"),
            format!("credentialName {name:?}: certificates from a Kubernetes Secret are not supported by mesh's proxies yet, which refuse connections to this host; mount the files and set caCertificates (and clientCertificate, privateKey for MUTUAL)"),
        );
    }
    let client_files = tls.client_certificate.is_some() || tls.private_key.is_some();
    if tls.mode == ClientTlsMode::Simple && client_files {
        report.warning(
            at,
            "SIMPLE presents no client certificate; use mode MUTUAL, or remove clientCertificate and privateKey",
        );
    }
    let unused = matches!(
        tls.mode,
        ClientTlsMode::IstioMutual | ClientTlsMode::Disable
    );
    if unused && (!files.is_empty() || credential) {
        report.warning(
            at,
            format!("mode {} does not use clientCertificate, privateKey, caCertificates or credentialName; remove them", mode_name(tls.mode)),
        );
    }
    if tls.insecure_skip_verify == Some(true) {
        let conflicts = tls.ca_certificates.is_some()
            || !tls.subject_alt_names.is_empty()
            || (tls.mode == ClientTlsMode::Simple && tls.credential_name.is_some());
        if conflicts {
            report.error(
                &at.field("insecureSkipVerify"),
                "insecureSkipVerify turns verification off; remove caCertificates, subjectAltNames (and credentialName in SIMPLE mode), or insecureSkipVerify",
            );
        }
    }
}

fn mode_name(mode: ClientTlsMode) -> &'static str {
    match mode {
        ClientTlsMode::Disable => "DISABLE",
        ClientTlsMode::Simple => "SIMPLE",
        ClientTlsMode::Mutual => "MUTUAL",
        ClientTlsMode::IstioMutual => "ISTIO_MUTUAL",
    }
}

//! The tables, as pure functions of the admin port's documents: the columns `istioctl
//! proxy-config` users know. Cells the proxy has no data for are `-` (a default route has
//! no VirtualService, a cluster without a rule no DestinationRule).

use std::net::SocketAddr;

use super::view::{
    BoundListener, Certs, Cluster, ClusterStatus, Listener, Match, RouteConfig, RouteDestination,
    StringMatch,
};

pub const ROUTES: [&str; 5] = ["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"];
pub const CLUSTERS: [&str; 6] = [
    "SERVICE FQDN",
    "PORT",
    "SUBSET",
    "DIRECTION",
    "TYPE",
    "DESTINATION RULE",
];
pub const LISTENERS: [&str; 4] = ["ADDRESSES", "PORT", "MATCH", "DESTINATION"];
pub const ENDPOINTS: [&str; 4] = ["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"];
pub const SECRET: [&str; 7] = [
    "RESOURCE NAME",
    "TYPE",
    "STATUS",
    "VALID CERT",
    "SERIAL NUMBER",
    "NOT AFTER",
    "NOT BEFORE",
];

const NONE: &str = "-";
/// pilot names the inbound cluster and route config of service port P `inbound|P`.
const INBOUND_PREFIX: &str = "inbound|";

/// One row per route of every virtual host.
pub fn routes(configs: &[RouteConfig]) -> Vec<[String; 5]> {
    let mut rows = Vec::new();
    for config in configs {
        for host in &config.virtual_hosts {
            for route in &host.routes {
                rows.push([
                    config.name.clone(),
                    host.name.clone(),
                    domains(&host.domains),
                    route_match(&route.matches),
                    host.virtual_service.as_deref().unwrap_or(NONE).to_owned(),
                ]);
            }
        }
    }
    rows
}

/// As istioctl: the two shortest names without a port, and how many more there are.
fn domains(all: &[String]) -> String {
    let has_port = |d: &&String| {
        d.rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    };
    let mut names: Vec<&String> = all.iter().filter(|d| !has_port(d)).collect();
    if names.is_empty() {
        names = all.iter().collect();
    }
    names.sort_by_key(|d| (d.len(), d.as_str()));
    let shown: Vec<&str> = names.iter().take(2).map(|d| d.as_str()).collect();
    match names.len().saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!("{} + {more} more...", shown.join(", ")),
    }
}

/// `/*` for every request; else each match (ORed) as its path and other conditions.
pub fn route_match(matches: &[Match]) -> String {
    if matches.is_empty() {
        return "/*".to_owned();
    }
    let each: Vec<String> = matches.iter().map(one_match).collect();
    each.join(" or ")
}

fn one_match(m: &Match) -> String {
    let mut parts = vec![match &m.uri {
        Some(uri) => path(uri),
        None => "/*".to_owned(),
    }];
    let mut condition = |name: &str, value: String| parts.push(format!("{name}{value}"));
    if let Some(method) = &m.method {
        condition("method", string_match(method));
    }
    if let Some(authority) = &m.authority {
        condition("authority", string_match(authority));
    }
    for (name, value) in &m.headers {
        condition(name, string_match(value));
    }
    for (name, value) in &m.without_headers {
        condition(&format!("!{name}"), string_match(value));
    }
    for (name, value) in &m.query_params {
        condition(&format!("?{name}"), string_match(value));
    }
    if let Some(port) = m.port {
        condition("port", format!("={port}"));
    }
    for (name, value) in &m.source_labels {
        condition(&format!("source.{name}"), format!("={value}"));
    }
    if let Some(namespace) = &m.source_namespace {
        condition("source.namespace", format!("={namespace}"));
    }
    parts.join(" ")
}

/// A path as istioctl writes it: `/api*` for a prefix, `/api` exact, `regex:...`.
fn path(uri: &StringMatch) -> String {
    match (&uri.exact, &uri.prefix, &uri.regex) {
        (Some(exact), _, _) => exact.clone(),
        (_, Some(prefix), _) => format!("{prefix}*"),
        (_, _, Some(regex)) => format!("regex:{regex}"),
        _ => "/*".to_owned(),
    }
}

/// `=v` exact, `=v*` prefix, `~v` regex, ` present` for `{}`.
fn string_match(m: &StringMatch) -> String {
    match (&m.exact, &m.prefix, &m.regex) {
        (Some(exact), _, _) => format!("={exact}"),
        (_, Some(prefix), _) => format!("={prefix}*"),
        (_, _, Some(regex)) => format!("~{regex}"),
        _ => " present".to_owned(),
    }
}

/// One row per cluster, then one per subset of it.
pub fn clusters(clusters: &[Cluster]) -> Vec<[String; 6]> {
    let mut rows = Vec::new();
    for cluster in clusters {
        let inbound = cluster.host.starts_with(INBOUND_PREFIX);
        let (direction, kind) = if inbound {
            ("inbound", "STATIC")
        } else {
            ("outbound", "EDS")
        };
        let rule = cluster.destination_rule.as_deref().unwrap_or(NONE);
        let subsets = std::iter::once(NONE).chain(cluster.subsets.iter().map(|s| s.name.as_str()));
        for subset in subsets {
            rows.push([
                cluster.host.clone(),
                cluster.port.to_string(),
                subset.to_owned(),
                direction.to_owned(),
                kind.to_owned(),
                rule.to_owned(),
            ]);
        }
    }
    rows
}

/// One row per configured listener, at the address it is bound to when it is.
pub fn listeners(listeners: &[Listener], bound: &[BoundListener]) -> Vec<[String; 4]> {
    listeners
        .iter()
        .map(|listener| {
            let bound_at = bound
                .iter()
                .find(|b| b.name == listener.name)
                .and_then(|b| b.bound.clone());
            let address = bound_at.as_deref().unwrap_or(&listener.address);
            let (ip, port) = match address.parse::<SocketAddr>() {
                Ok(addr) => (addr.ip().to_string(), addr.port().to_string()),
                Err(_) => (address.to_owned(), NONE.to_owned()),
            };
            let mut destination = listener_destination(listener);
            if bound_at.is_none() {
                destination.push_str(" (NOT BOUND)");
            }
            [ip, port, listener_match(listener), destination]
        })
        .collect()
}

fn listener_match(listener: &Listener) -> String {
    let mut text = match listener.protocol.as_deref().unwrap_or("HTTP") {
        "TCP" => "ALL".to_owned(),
        "AUTO" => "HTTP or TCP (sniffed)".to_owned(),
        other => other.to_owned(),
    };
    if let Some(app) = &listener.app_protocol {
        text.push_str(&format!(" ({app})"));
    }
    if let Some(inbound) = &listener.inbound {
        text.push_str(&format!(
            "; mTLS {}",
            inbound.mtls.as_deref().unwrap_or("PERMISSIVE")
        ));
    }
    text
}

fn listener_destination(listener: &Listener) -> String {
    let mut parts = Vec::new();
    if let Some(route) = &listener.route_config {
        parts.push(format!("Route: {route}"));
    }
    let clusters: Vec<String> = listener.tcp_route.iter().map(cluster_name).collect();
    if !clusters.is_empty() {
        parts.push(format!("Cluster: {}", clusters.join(", ")));
    }
    if parts.is_empty() {
        NONE.to_owned()
    } else {
        parts.join("; ")
    }
}

/// `outbound|PORT|SUBSET|HOST`, as the proxy names clusters, with the weight if any.
fn cluster_name(route: &RouteDestination) -> String {
    let d = &route.destination;
    let port = d.port.as_ref().map(|p| p.number.to_string());
    let name = format!(
        "outbound|{}|{}|{}",
        port.unwrap_or_default(),
        d.subset.as_deref().unwrap_or_default(),
        d.host
    );
    match route.weight {
        Some(weight) => format!("{name} ({weight}%)"),
        None => name,
    }
}

/// One row per endpoint of every cluster, with its outlier detection state; a resolved
/// address of a DNS cluster names its hostname.
pub fn endpoints(clusters: &[ClusterStatus]) -> Vec<[String; 4]> {
    let mut rows = Vec::new();
    for cluster in clusters {
        let detects = cluster
            .outlier_detection
            .as_ref()
            .is_some_and(|o| !o.is_null());
        for endpoint in &cluster.endpoints {
            let ejected = endpoint.health == "ejected";
            let check = match (detects, ejected) {
                (_, true) => "FAILED",
                (true, false) => "OK",
                (false, false) => NONE,
            };
            let address = match &endpoint.hostname {
                Some(name) => format!("{} ({name})", endpoint.address),
                None => endpoint.address.clone(),
            };
            rows.push([
                address,
                endpoint.health.to_uppercase(),
                check.to_owned(),
                cluster.name.clone(),
            ]);
        }
    }
    rows
}

/// The workload certificate (`default`) and each root of the trust bundle (`ROOTCA`), as
/// istioctl names them. `now` is seconds since the Unix epoch.
pub fn secret(certs: &Certs, now: i64) -> Vec<[String; 7]> {
    let mut rows = Vec::new();
    let valid = |before: &str, after: &str| match (unix_time(before), unix_time(after)) {
        (Some(before), Some(after)) => (before <= now && now < after).to_string(),
        _ => "false".to_owned(),
    };
    match &certs.serial {
        Some(serial) => {
            let before = certs.not_before.clone().unwrap_or_default();
            let after = certs.not_after.clone().unwrap_or_default();
            rows.push([
                "default".to_owned(),
                "Cert Chain".to_owned(),
                "ACTIVE".to_owned(),
                valid(&before, &after),
                serial.clone(),
                after,
                before,
            ]);
        }
        None => rows.push(
            [
                "default",
                "Cert Chain",
                "WARMING",
                "false",
                NONE,
                NONE,
                NONE,
            ]
            .map(str::to_owned),
        ),
    }
    for root in &certs.trust_bundle {
        rows.push([
            "ROOTCA".to_owned(),
            "CA".to_owned(),
            "ACTIVE".to_owned(),
            valid(&root.not_before, &root.not_after),
            root.serial.clone(),
            root.not_after.clone(),
            root.not_before.clone(),
        ]);
    }
    rows
}

/// `YYYY-MM-DDTHH:MM:SSZ` (what `/certs` writes) as seconds since the Unix epoch.
pub fn unix_time(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    if text.len() != 20 || !text.ends_with('Z') {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

//! Whether a variant is what it claims: how the sidecars labelled their requests
//! (`connection_security_policy` on `mesh_requests_total`), and how many TCP connections
//! were opened meanwhile (from /proc/net/snmp).

use super::mesh::Variant;

/// Requests one sidecar has recorded, by `connection_security_policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `mutual_tls`.
    pub mtls: u64,
    /// Every other value: `none` (inbound, plaintext) or `unknown` (outbound, plaintext).
    pub other: u64,
    /// Requests the client gave up on before the response (`response_code="0"`, the last
    /// ones in flight when h2load stops): the caller does not know their upstream's
    /// security, so they count in neither.
    pub dropped: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.mtls + self.other
    }

    fn since(&self, before: &Counts) -> Counts {
        Counts {
            mtls: self.mtls.saturating_sub(before.mtls),
            other: self.other.saturating_sub(before.other),
            dropped: self.dropped.saturating_sub(before.dropped),
        }
    }
}

/// Both sidecars' counts, and the connections to the callee's inbound port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Security {
    pub caller: Counts,
    pub callee: Counts,
    /// TCP connections opened in the network namespace (/proc/net/snmp `ActiveOpens`):
    /// between two readings, the sidecars' and the load generator's, and other work's.
    pub connections: u64,
}

impl Security {
    /// What happened between two readings.
    pub fn since(&self, before: &Security) -> Security {
        Security {
            caller: self.caller.since(&before.caller),
            callee: self.callee.since(&before.callee),
            connections: self.connections.saturating_sub(before.connections),
        }
    }

    /// Why these counts contradict `variant`, if they do: every request on both sidecars
    /// must be mutual TLS for mTLS and none of them for plaintext; and when each request
    /// is to open a new connection (`fresh`), at least as many must have been opened.
    pub fn contradiction(&self, variant: Variant, fresh: bool) -> Option<String> {
        let (caller, callee) = (self.caller, self.callee);
        if callee.total() == 0 {
            return Some("the callee recorded no requests".to_owned());
        }
        let wrong = match variant {
            Variant::Direct => return None,
            Variant::Mtls => caller.other + callee.other,
            Variant::Plaintext => caller.mtls + callee.mtls,
        };
        if wrong == 0 && fresh && self.connections < callee.total() {
            return Some(format!(
                "connections were reused: {} opened for {} requests",
                self.connections,
                callee.total()
            ));
        }
        (wrong > 0).then(|| {
            format!(
                "not {}: caller {} mutual_tls / {} other, callee {} mutual_tls / {} other",
                variant.label(),
                caller.mtls,
                caller.other,
                callee.mtls,
                callee.other
            )
        })
    }
}

/// Sums `mesh_requests_total` by `connection_security_policy` from a Prometheus text page,
/// dropped requests apart.
pub fn security_counts(page: &str) -> Counts {
    let mut counts = Counts::default();
    for line in page.lines() {
        let Some(rest) = line.strip_prefix("mesh_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let value = value as u64;
        if label(labels, "response_code") == Some("0") {
            counts.dropped += value;
            continue;
        }
        match label(labels, "connection_security_policy") {
            Some("mutual_tls") => counts.mtls += value,
            _ => counts.other += value,
        }
    }
    counts
}

/// The value of `name="..."` in a Prometheus label set (values here hold no quotes).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

/// `ActiveOpens` from /proc/net/snmp: TCP connections this network namespace has opened.
pub fn tcp_active_opens(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let column = names.split_whitespace().position(|n| n == "ActiveOpens")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;

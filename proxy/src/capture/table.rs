//! Which listener config serves a redirected connection: a pure lookup by original
//! destination, rebuilt from each snapshot.
//!
//! Inbound listeners are keyed by port (the pod's IPs all reach the same app). Outbound
//! listeners at a specific address (a service VIP and port) match that address exactly;
//! those at `0.0.0.0:port`/`[::]:port` match any address on the port. A listener at the
//! capture port itself is the non-capture entry point and is skipped: nothing is
//! redirected to it.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Where a snapshot listener goes in capture mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Inbound(u16),
    Outbound(SocketAddr),
    OutboundAnyAddress(u16),
    Skip,
}

/// `address` and whether the listener is inbound, seen by a proxy capturing outbound
/// traffic on `capture_port`.
pub fn slot(address: SocketAddr, inbound: bool, capture_port: u16) -> Slot {
    if inbound {
        Slot::Inbound(address.port())
    } else if address.port() == capture_port {
        Slot::Skip
    } else if address.ip().is_unspecified() {
        Slot::OutboundAnyAddress(address.port())
    } else {
        Slot::Outbound(address)
    }
}

pub struct Table<I, O> {
    inbound: HashMap<u16, I>,
    outbound: HashMap<SocketAddr, O>,
    outbound_any: HashMap<u16, O>,
    unknown: Unknown,
}

/// What happens to an outbound connection no listener serves: Istio's PassthroughCluster
/// (`outboundTrafficPolicy: ALLOW_ANY`) or BlackHoleCluster (`REGISTRY_ONLY`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unknown {
    #[default]
    Passthrough,
    Blackhole,
}

impl<I, O> Default for Table<I, O> {
    fn default() -> Self {
        Self {
            inbound: HashMap::new(),
            outbound: HashMap::new(),
            outbound_any: HashMap::new(),
            unknown: Unknown::default(),
        }
    }
}

impl<I, O> Table<I, O> {
    /// Places one listener's handler; the first listener for a slot wins.
    pub fn insert(
        &mut self,
        slot: Slot,
        inbound: impl FnOnce() -> I,
        outbound: impl FnOnce() -> O,
    ) {
        match slot {
            Slot::Inbound(port) => {
                self.inbound.entry(port).or_insert_with(inbound);
            }
            Slot::Outbound(address) => {
                self.outbound
                    .entry(normal(address))
                    .or_insert_with(outbound);
            }
            Slot::OutboundAnyAddress(port) => {
                self.outbound_any.entry(port).or_insert_with(outbound);
            }
            Slot::Skip => {}
        }
    }

    /// The inbound listener for a connection that was going to `original`.
    pub fn inbound(&self, original: SocketAddr) -> Option<&I> {
        self.inbound.get(&original.port())
    }

    /// The outbound listener for `original`: the exact address, then any address on its
    /// port; `None` means passthrough.
    pub fn outbound(&self, original: SocketAddr) -> Option<&O> {
        self.outbound
            .get(&normal(original))
            .or_else(|| self.outbound_any.get(&original.port()))
    }

    pub fn set_unknown(&mut self, unknown: Unknown) {
        self.unknown = unknown;
    }

    /// What to do with an outbound connection [`Table::outbound`] has nothing for.
    pub fn unknown(&self) -> Unknown {
        self.unknown
    }

    pub fn is_empty(&self) -> bool {
        self.inbound.is_empty() && self.outbound.is_empty() && self.outbound_any.is_empty()
    }
}

/// IPv4-mapped IPv6 addresses (from a dual-stack socket) compare as IPv4.
pub fn normal(address: SocketAddr) -> SocketAddr {
    match address {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => address,
        },
        SocketAddr::V4(_) => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("address")
    }

    fn table() -> Table<&'static str, &'static str> {
        let mut table = Table::default();
        let listeners = [
            ("0.0.0.0:15001", false, "catch-all"),
            ("10.96.0.10:8080", false, "reviews"),
            ("[fd00::10]:8080", false, "reviews-v6"),
            ("0.0.0.0:9090", false, "any-9090"),
            ("0.0.0.0:8080", true, "inbound-8080"),
            ("10.1.0.3:8080", true, "inbound-8080-again"),
        ];
        for (address, inbound, name) in listeners {
            table.insert(slot(addr(address), inbound, 15001), || name, || name);
        }
        table
    }

    #[test]
    fn outbound_matches_the_exact_address_then_the_port() {
        let table = table();
        assert_eq!(table.outbound(addr("10.96.0.10:8080")), Some(&"reviews"));
        assert_eq!(
            table.outbound(addr("[::ffff:10.96.0.10]:8080")),
            Some(&"reviews")
        );
        assert_eq!(table.outbound(addr("[fd00::10]:8080")), Some(&"reviews-v6"));
        assert_eq!(table.outbound(addr("10.96.0.11:9090")), Some(&"any-9090"));
        // Unknown to the mesh: passed through.
        assert_eq!(table.outbound(addr("10.96.0.11:8080")), None);
        assert_eq!(table.outbound(addr("93.184.216.34:443")), None);
        // The capture port's own listener is never a destination.
        assert_eq!(table.outbound(addr("10.0.0.1:15001")), None);
    }

    #[test]
    fn inbound_matches_by_port_only() {
        let table = table();
        assert_eq!(table.inbound(addr("10.1.0.3:8080")), Some(&"inbound-8080"));
        assert_eq!(table.inbound(addr("[fd00::3]:8080")), Some(&"inbound-8080"));
        assert_eq!(table.inbound(addr("10.1.0.3:9090")), None);
        assert!(!table.is_empty());
        assert!(Table::<(), ()>::default().is_empty());
    }
}

//! IP blocks: `ipBlocks`, `remoteIpBlocks`, `source.ip`, `remote.ip`, `destination.ip`.

use std::net::IpAddr;

/// An address block, parsed once. A bare address is a /32 (or /128); host bits beyond the
/// prefix are cleared, as Envoy's `CidrRange` does, so `10.0.0.1/8` is `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    pub(super) fn parse(text: &str) -> Option<Self> {
        let (address, bits) = match text.split_once('/') {
            Some((address, bits)) => (address, Some(bits)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().ok()?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            // `u8::from_str` takes a leading `+`, which no one means in a CIDR.
            Some(bits) if bits.starts_with('+') => return None,
            Some(bits) => bits.parse::<u8>().ok().filter(|b| *b <= max)?,
            None => max,
        };
        Some(Self {
            network: mask(address, bits),
            bits,
        })
    }

    /// Whether `ip` is in the block. An IPv4 block never holds an IPv6 address: callers pass
    /// canonical addresses (`::ffff:10.0.0.1` as `10.0.0.1`), see `IpAddr::to_canonical`.
    pub(super) fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.bits) == self.network
    }
}

fn mask(ip: IpAddr, bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & keep).into())
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & keep).into())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains(ip("10.1.255.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("203.0.113.9"))
        );
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("10.0.0.1").unwrap().contains(ip("10.0.0.1")));
        assert!(!Cidr::parse("10.0.0.1").unwrap().contains(ip("10.0.0.2")));
        assert_eq!(Cidr::parse("10.0.0.1/8"), Cidr::parse("10.0.0.0/8"));
        assert!(
            Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains(ip("2001:db8:1::7"))
        );
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        assert!(Cidr::parse("::1/128").unwrap().contains(ip("::1")));
    }

    #[test]
    fn rejects() {
        for bad in [
            "10.0.0",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "x",
            "10.0.0.0/+8",
            "",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }
}

//! Ports, IP addresses and CIDR blocks.

use std::net::IpAddr;

/// A TCP/UDP port: 1..=65535.
pub(super) fn check_port(port: u32) -> Result<(), String> {
    if (1..=65535).contains(&port) {
        Ok(())
    } else {
        Err(format!("port {port} is not in 1..65535"))
    }
}

/// A port written as a string (PeerAuthentication `portLevelMtls` keys, AuthorizationPolicy
/// `ports`).
pub(super) fn check_port_text(text: &str) -> Result<(), String> {
    match text.parse::<u32>() {
        Ok(port) => check_port(port),
        Err(_) => Err(format!(
            "port {text:?} is not a number; write a port in 1..65535"
        )),
    }
}

pub(super) fn is_ip(text: &str) -> bool {
    text.parse::<IpAddr>().is_ok()
}

/// An IP address (`10.0.0.1`, `2001:db8::1`) or a CIDR block (`10.0.0.0/8`).
pub(super) fn check_ip_or_cidr(text: &str) -> Result<(), String> {
    let invalid = || {
        Err(format!(
            "{text:?} is not an IP address or CIDR block; write e.g. 10.0.0.1 or 10.0.0.0/16"
        ))
    };
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let Ok(address) = address.parse::<IpAddr>() else {
        return invalid();
    };
    let Some(prefix) = prefix else {
        return Ok(());
    };
    let max = if address.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(bits) if bits <= max && !prefix.starts_with('+') => Ok(()),
        _ => invalid(),
    }
}

/// The path of a `unix://` address: absolute, or abstract (`@name`).
pub(super) fn check_unix_path(path: &str) -> Result<(), String> {
    if path.starts_with('@') || (path.starts_with('/') && !path.ends_with('/')) {
        Ok(())
    } else {
        Err(format!(
            "unix address {path:?} must be an absolute path to a file (or @name for an abstract socket)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert!(check_port(1).is_ok() && check_port(65535).is_ok());
        assert_eq!(check_port(0), Err("port 0 is not in 1..65535".into()));
        assert!(check_port(65536).is_err());
        assert!(check_port_text("8080").is_ok());
        assert!(
            check_port_text("http")
                .expect_err("name")
                .contains("not a number")
        );
        assert!(check_port_text("70000").is_err());
    }

    #[test]
    fn addresses_and_blocks() {
        for ok in [
            "10.0.0.1",
            "10.0.0.0/8",
            "::1",
            "2001:db8::/32",
            "0.0.0.0/0",
        ] {
            assert!(check_ip_or_cidr(ok).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0",
            "10.0.0.0/33",
            "::1/129",
            "10.0.0.0/",
            "example.com",
            "10.0.0.0/+8",
        ] {
            assert!(check_ip_or_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unix_paths() {
        assert!(check_unix_path("/var/run/app.sock").is_ok());
        assert!(check_unix_path("@abstract").is_ok());
        assert!(check_unix_path("relative.sock").is_err());
        assert!(check_unix_path("/var/run/").is_err());
    }
}

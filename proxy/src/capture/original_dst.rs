//! Where a redirected connection was going: iptables' REDIRECT rewrites the destination,
//! and the kernel keeps the original for `getsockopt(SO_ORIGINAL_DST)`. A trait, so that
//! tests (which cannot redirect without root) put a fake in its place.

use std::io;
use std::net::SocketAddr;

use nix::sys::socket::{SockaddrIn, SockaddrIn6, getsockopt, sockopt};
use tokio::net::TcpStream;

pub trait OriginalDst: Send + Sync + 'static {
    /// The destination the peer connected to before redirection; an error when the
    /// connection was not redirected.
    fn original_dst(&self, stream: &TcpStream) -> io::Result<SocketAddr>;
}

/// The kernel's answer: `SO_ORIGINAL_DST` for IPv4 (also IPv4 on a dual-stack socket),
/// `IP6T_SO_ORIGINAL_DST` for IPv6.
pub struct SoOriginalDst;

impl OriginalDst for SoOriginalDst {
    fn original_dst(&self, stream: &TcpStream) -> io::Result<SocketAddr> {
        let ipv6 = match stream.local_addr()? {
            SocketAddr::V4(_) => false,
            SocketAddr::V6(local) => local.ip().to_ipv4_mapped().is_none(),
        };
        if ipv6 {
            let address = getsockopt(stream, sockopt::Ip6tOriginalDst)?;
            Ok(SocketAddr::V6(SockaddrIn6::from(address).into()))
        } else {
            let address = getsockopt(stream, sockopt::OriginalDst)?;
            Ok(SocketAddr::V4(SockaddrIn::from(address).into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a redirect the kernel knows no other destination: an error (no conntrack
    /// entry) or the address connected to, never something else.
    #[tokio::test]
    async fn an_unredirected_connection_has_no_original_destination() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let (client, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
        let _client = client.expect("connect");
        let (server, _) = accepted.expect("accept");
        match SoOriginalDst.original_dst(&server) {
            Ok(original) => assert_eq!(original, address),
            Err(error) => assert_ne!(error.kind(), io::ErrorKind::InvalidInput, "{error}"),
        }
    }
}

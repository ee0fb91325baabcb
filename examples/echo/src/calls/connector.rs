//! Connections to an HTTP forward proxy (a sidecar's outbound listener): every target is
//! reached over a connection to the proxy, and the client then writes absolute-form request
//! lines (`GET http://reviews:9080/ HTTP/1.1`), as curl does with `HTTP_PROXY`.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tonic::codegen::Service;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Connects to `proxy` whatever the target; the pool still keeps connections per target, so
/// keep-alive works as it would without the proxy.
#[derive(Clone, Debug)]
pub struct ProxyConnector {
    proxy: Uri,
    http: HttpConnector,
}

impl ProxyConnector {
    pub fn new(proxy: Uri, http: HttpConnector) -> Self {
        Self { proxy, http }
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = Proxied;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Proxied, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, _target: Uri) -> Self::Future {
        let connecting = self.http.call(self.proxy.clone());
        let proxy = self.proxy.clone();
        Box::pin(async move {
            let io = connecting
                .await
                .map_err(|error| format!("failed to connect to the proxy {proxy}: {error}"))?;
            Ok(Proxied(io))
        })
    }
}

/// A connection to the proxy. It tells the client so (`Connected::proxy`), which is what
/// makes it send absolute-form request targets.
#[derive(Debug)]
pub struct Proxied(TokioIo<TcpStream>);

impl Connection for Proxied {
    fn connected(&self) -> Connected {
        self.0.connected().proxy(true)
    }
}

impl Read for Proxied {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl Write for Proxied {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Whether `host` skips the proxy under a `NO_PROXY` list: `*` matches every host, an entry
/// matches itself and its subdomains (`example.com` and `.example.com` both match
/// `api.example.com`). Entries are host names or IP addresses; CIDR ranges and ports are not
/// understood.
pub fn bypasses_proxy(host: &str, no_proxy: &[String]) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    no_proxy.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        let entry = entry.trim_start_matches("*.").trim_start_matches('.');
        if entry == "*" {
            return true;
        }
        !entry.is_empty()
            && (host == entry
                || host
                    .strip_suffix(entry)
                    .is_some_and(|prefix| prefix.ends_with('.')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_entries() {
        let list = |entries: &[&str]| entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>();
        assert!(bypasses_proxy("anything", &list(&["*"])));
        let no_proxy = list(&[
            "localhost",
            ".corp.example",
            "127.0.0.1",
            " Reviews ",
            "::1",
        ]);
        for host in [
            "localhost",
            "api.corp.example",
            "corp.example",
            "127.0.0.1",
            "reviews",
            "[::1]",
        ] {
            assert!(bypasses_proxy(host, &no_proxy), "{host}");
        }
        for host in ["ratings", "notlocalhost", "127.0.0.10", "xcorp.example"] {
            assert!(!bypasses_proxy(host, &no_proxy), "{host}");
        }
        assert!(!bypasses_proxy("reviews", &[]));
        assert!(!bypasses_proxy("reviews", &list(&["", "."])));
    }
}

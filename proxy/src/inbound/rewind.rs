//! Detection on a decrypted stream: TLS cannot be peeked at, so the first bytes are read,
//! classified, and replayed to whichever path serves the connection.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::detect::classify::MAX_PREFIX;
use crate::detect::{Protocol, Verdict, classify};

/// A stream whose first bytes were already read: they are read again first.
pub struct Rewind<S> {
    prefix: Vec<u8>,
    offset: usize,
    inner: S,
}

/// Reads until the bytes tell the protocol, the client stops sending for `timeout` (a
/// server-first protocol), or it closes; opaque unless the bytes said otherwise.
pub async fn detect<S: AsyncRead + Unpin>(
    mut inner: S,
    timeout: Duration,
) -> (Protocol, Rewind<S>) {
    let deadline = Instant::now() + timeout;
    let mut prefix = Vec::with_capacity(MAX_PREFIX);
    let mut protocol = Protocol::Opaque;
    while prefix.len() < MAX_PREFIX {
        let mut chunk = [0u8; MAX_PREFIX];
        let room = MAX_PREFIX - prefix.len();
        let read = tokio::time::timeout_at(deadline, inner.read(&mut chunk[..room])).await;
        let Ok(Ok(read @ 1..)) = read else {
            break;
        };
        prefix.extend_from_slice(&chunk[..read]);
        if let Verdict::Known(known) = classify(&prefix) {
            protocol = known;
            break;
        }
    }
    let rewind = Rewind {
        prefix,
        offset: 0,
        inner,
    };
    (protocol, rewind)
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.offset < this.prefix.len() {
            let rest = &this.prefix[this.offset..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.offset += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn http_is_detected_and_every_byte_is_read_again() {
        let (mut client, server) = tokio::io::duplex(4096);
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
            .await
            .unwrap();
        let (protocol, mut rewind) = detect(server, Duration::from_secs(5)).await;
        assert!(protocol.is_http(), "{protocol:?}");
        drop(client);
        let mut all = Vec::new();
        rewind.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_opaque_after_the_timeout() {
        let (_client, server) = tokio::io::duplex(64);
        let (protocol, _) = detect(server, Duration::from_millis(100)).await;
        assert_eq!(protocol, Protocol::Opaque);
    }
}

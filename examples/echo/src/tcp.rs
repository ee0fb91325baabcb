//! TCP mode: every byte received is sent back unchanged, optionally after a greeting line.
//! It lets a proxy's opaque TCP path be tested, and with a banner its handling of
//! server-first protocols (where waiting to sniff the client's first bytes would hang).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::shutdown::Signal;
use crate::stats::{ConnectionGuard, Stats};

/// Serves one TCP connection: the banner, then the echo until the client closes its side or
/// the server shuts down.
pub(crate) async fn serve(
    mut stream: TcpStream,
    banner: Option<&str>,
    stats: &Stats,
    _guard: ConnectionGuard,
    mut shutdown: Signal,
) {
    if let Some(banner) = banner {
        let line = format!("{banner}\r\n");
        if let Err(error) = stream.write_all(line.as_bytes()).await {
            tracing::debug!(%error, "failed to send the banner");
            return;
        }
    }
    echo(stream, stats, &mut shutdown).await;
}

/// Writes back what it reads. When the client half-closes, the echo finishes writing and
/// half-closes too, so a client (or proxy) that relies on half-close sees the same here.
pub(crate) async fn echo<S>(stream: S, stats: &Stats, shutdown: &mut Signal)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let copy = async {
        let mut buf = vec![0; 16 * 1024];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return writer.shutdown().await;
            }
            writer.write_all(&buf[..n]).await?;
            stats.record_echoed(n as u64);
        }
    };
    tokio::select! {
        result = copy => {
            if let Err(error) = result {
                tracing::debug!(%error, "echo ended with an error");
            }
        }
        () = shutdown.signalled() => {}
    }
}

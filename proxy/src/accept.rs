//! The accept loop every listener kind shares: accept until stopped or draining, serve each
//! connection on its own task, and count it in the drain until it ends.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::drain::Drain;

pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    drain: Drain,
    mut stop: watch::Receiver<bool>,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
            _ = drain.started() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Usually EMFILE: back off briefly instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let guard = drain.connection();
        let connection = serve(stream, peer);
        tokio::spawn(async move {
            let _guard = guard;
            connection.await;
        });
    }
}

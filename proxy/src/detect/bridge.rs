//! The HTTP side of an AUTO listener, for now: a loopback listener served by
//! [`crate::http::serve`], to which detected HTTP connections are spliced.
//!
//! A stopgap. `http::serve` owns its accept loop and nothing serves one already accepted
//! connection, so the sniffed connection cannot be handed to hyper directly. The price of
//! the extra hop: HTTP through an AUTO listener sees the loopback peer as its source (a
//! `useSourceIp` hash policy keys on it) and the loopback port as the port it was sent to
//! (route matches on `port` see that). Once `http::serve_connection` exists this file goes
//! and [`super::Auto::serve_http`] becomes that single call.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::drain::Drain;
use crate::http::{self, Upstreams};
use crate::metrics::Metrics;
use crate::state::State;

pub struct HttpBridge {
    address: SocketAddr,
}

impl HttpBridge {
    /// Starts the loopback HTTP listener for `route_config`; it stops with `stop`.
    pub async fn start(
        route_config: String,
        state: Arc<State>,
        metrics: Arc<Metrics>,
        upstreams: Arc<Upstreams>,
        drain: Drain,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        let socket = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = socket.local_addr()?;
        tokio::spawn(http::serve(
            socket,
            route_config,
            state,
            metrics,
            upstreams,
            drain,
            stop,
        ));
        Ok(Self { address })
    }

    /// Splices `stream` (its bytes still unread) to the HTTP listener until both close.
    pub async fn serve(&self, mut stream: TcpStream, peer: SocketAddr) {
        let mut http = match TcpStream::connect(self.address).await {
            Ok(http) => http,
            Err(error) => {
                tracing::warn!(%peer, %error, "the HTTP side of an AUTO listener is gone");
                return;
            }
        };
        let _ = http.set_nodelay(true);
        if let Err(error) = tokio::io::copy_bidirectional(&mut stream, &mut http).await {
            tracing::debug!(%peer, %error, "HTTP connection ended with an error");
        }
    }
}

//! Binding, the accept loop, and the handle a test or `main` holds.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::calls;
use crate::config::{Behaviour, EchoConfig, Protocol};
use crate::http::{self, Shared};
use crate::reply::Identity;
use crate::shutdown::{self, Drain, Signal};
use crate::stats::Stats;
use crate::tcp;

/// After a failed accept (typically out of file descriptors), wait this long before the
/// next, rather than spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A running server. Dropping it stops accepting and closes connections in the background;
/// [`EchoServer::shutdown`] does the same and waits for in-flight requests.
#[must_use = "dropping the EchoServer stops it"]
#[derive(Debug)]
pub struct EchoServer {
    addr: SocketAddr,
    stats: Arc<Stats>,
    behaviour: Arc<ArcSwap<Behaviour>>,
    drain: Drain,
}

/// What the accept loop hands each connection to.
enum Mode {
    Http(Arc<Shared>),
    Tcp { banner: Option<Arc<str>> },
}

/// Binds `config.listen` and serves it in a spawned task. Errors: the address cannot be bound,
/// a banner was set for HTTP, the name or version cannot be an HTTP header value, or a call
/// URL or the proxy is not `http://` with a host.
pub async fn start(config: EchoConfig) -> io::Result<EchoServer> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
    let identity = Identity::new(&config.name, &config.version, &config.hostname)
        .map_err(|_| invalid("name and version must be printable ASCII".to_owned()))?;
    if config.banner.is_some() && config.protocol == Protocol::Http {
        return Err(invalid("a banner needs the tcp protocol".to_owned()));
    }
    calls::validate(&config.calls).map_err(invalid)?;

    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    let behaviour = Arc::new(ArcSwap::from_pointee(config.behaviour));
    let mode = match config.protocol {
        Protocol::Http => Mode::Http(Arc::new(Shared::new(
            identity,
            Arc::clone(&behaviour),
            Arc::clone(&stats),
            config.calls,
        ))),
        Protocol::Tcp => Mode::Tcp {
            banner: config.banner.map(Arc::from),
        },
    };
    let (drain, signal) = shutdown::channel();
    tokio::spawn(accept_loop(listener, mode, Arc::clone(&stats), signal));
    Ok(EchoServer {
        addr,
        stats,
        behaviour,
        drain,
    })
}

impl EchoServer {
    /// The bound address, with the real port when the config asked for port 0.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr><path>`, for clients in tests.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// The server-wide knobs now in force.
    pub fn behaviour(&self) -> Behaviour {
        Behaviour::clone(&self.behaviour.load())
    }

    /// Replaces the server-wide knobs for every request from now on (e.g. answer 504 to
    /// simulate an outage), without a restart. HTTP mode only; TCP mode has no knobs.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.behaviour.store(Arc::new(behaviour));
    }

    /// Stops accepting, lets in-flight requests finish (idle keep-alive connections close,
    /// HTTP/2 clients get a GOAWAY), closes TCP and upgraded echoes, and returns once every
    /// connection is gone. Callers wanting a bound wrap it in `tokio::time::timeout`.
    pub async fn shutdown(self) {
        self.drain.trigger();
        self.drain.drained().await;
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.drain.trigger();
    }
}

async fn accept_loop(listener: TcpListener, mode: Mode, stats: Arc<Stats>, mut signal: Signal) {
    loop {
        let stream = tokio::select! {
            () = signal.signalled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Echo answers are small and latency-bound; Nagle would only add delay.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "failed to set TCP_NODELAY");
        }
        let guard = stats.open_connection();
        let signal = signal.clone();
        match &mode {
            Mode::Http(shared) => {
                tokio::spawn(http::serve(Arc::clone(shared), stream, guard, signal));
            }
            Mode::Tcp { banner } => {
                let (banner, stats) = (banner.clone(), Arc::clone(&stats));
                tokio::spawn(async move {
                    tcp::serve(stream, banner.as_deref(), &stats, guard, signal).await;
                });
            }
        }
    }
    // Closed before the signal is released, so once shutdown returns the port refuses.
    drop(listener);
}

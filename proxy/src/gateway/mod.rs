//! Gateway mode's TLS ports: what a Gateway's HTTPS and TLS servers do with a connection.
//!
//! The ClientHello is peeked, never consumed ([`client_hello`]); its SNI picks the server
//! ([`mesh_core::model::GatewayTls::server_for`]). A PASSTHROUGH server forwards the bytes
//! untouched to the destination of the first `tls` route whose SNI hosts match, so the
//! client sees the upstream's own certificate. SIMPLE, MUTUAL and ISTIO_MUTUAL terminate
//! with that server's certificate, then serve that server's HTTP routes (else the
//! listener's), or forward the decrypted stream as TCP. Certificate files are watched
//! ([`reload`]). Plain HTTP and TCP gateway ports are ordinary listeners.

pub mod auto;
pub mod certs;
pub mod client_hello;
mod client_names;
pub mod reload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use mesh_core::config::ServerTlsMode;
use mesh_core::model::GatewayTls;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::accept::accept_loop;
use crate::detect::HttpSide;
use crate::drain::Drain;
use crate::identity::CertificateManager;
use crate::tcp::Forwarder;
use client_hello::Hello;

/// TLS handshakes a terminating server failed (a MUTUAL or ISTIO_MUTUAL client without an
/// acceptable certificate, a protocol mismatch, a timeout), by `listener`.
pub const HANDSHAKE_FAILURES: &str = "mesh_gateway_handshake_failures_total";

/// How long a client has to send its ClientHello and finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause between two looks at a partial ClientHello.
const MAX_PAUSE: Duration = Duration::from_millis(20);
/// A ClientHello record is at most 2^14 bytes plus its header.
const MAX_HELLO: usize = (1 << 14) + 5;

/// What every connection of one gateway TLS port shares.
pub struct Gateway {
    pub listener: String,
    pub tls: Arc<GatewayTls>,
    /// Per server, in [`GatewayTls::servers`]' order: its loaded config when it
    /// terminates; `None` for PASSTHROUGH, or when its files could not be loaded.
    /// Replaced whole when the files change ([`reload`]).
    configs: ArcSwap<Vec<Option<Arc<ServerConfig>>>>,
    /// What the certificate files looked like when `configs` was loaded; `None` before.
    loaded: Mutex<Option<reload::Fingerprint>>,
    credentials: PathBuf,
    mesh: Option<Arc<CertificateManager>>,
    /// Per SNI route, in order.
    passthrough: Vec<Arc<Forwarder>>,
    /// What terminated HTTP connections share; the route config is the server's.
    http: HttpSide,
    tcp: Option<Arc<Forwarder>>,
}

impl Gateway {
    /// Loads every terminating server's certificates. A server whose files cannot be
    /// loaded is logged with the reason and refuses its connections; the others serve.
    pub fn new(
        listener: &str,
        tls: Arc<GatewayTls>,
        credentials: &std::path::Path,
        mesh: Option<&Arc<CertificateManager>>,
        http: HttpSide,
        forwarder: impl Fn(&[mesh_core::model::WeightedDestination]) -> Arc<Forwarder>,
    ) -> Self {
        let passthrough = tls
            .sni_routes
            .iter()
            .map(|r| forwarder(&r.routes))
            .collect();
        let tcp = (!tls.tcp_routes.is_empty()).then(|| forwarder(&tls.tcp_routes));
        let gateway = Self {
            listener: listener.to_owned(),
            tls,
            configs: ArcSwap::from_pointee(Vec::new()),
            loaded: Mutex::default(),
            credentials: credentials.to_owned(),
            mesh: mesh.cloned(),
            passthrough,
            http,
            tcp,
        };
        gateway.reload_if_changed();
        gateway
    }

    /// Whether any server terminates TLS (and so has certificates to load).
    pub fn terminates(&self) -> bool {
        !self.tls.servers.iter().all(|s| passes_through(s.tls.mode))
    }

    /// Loads the servers' certificates again if their files changed since the last load
    /// (or were never loaded).
    fn reload_if_changed(&self) {
        let now = reload::fingerprint(self.tls.servers.iter().map(|s| &s.tls), &self.credentials);
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.as_ref() == Some(&now) {
            return;
        }
        if loaded.is_some() {
            tracing::info!(listener = %self.listener, "gateway certificate files changed: reloaded");
        }
        self.configs.store(Arc::new(self.load()));
        *loaded = Some(now);
    }

    fn load(&self) -> Vec<Option<Arc<ServerConfig>>> {
        let listener = &self.listener;
        self.tls
            .servers
            .iter()
            .enumerate()
            .map(|(i, server)| {
                if passes_through(server.tls.mode) {
                    return None;
                }
                certs::server_config(&server.tls, &self.credentials, self.mesh.as_ref())
                    .inspect_err(|error| {
                        tracing::error!(%listener, server = i, hosts = ?server.hosts, %error, "gateway server cannot terminate TLS: its connections are refused");
                    })
                    .ok()
            })
            .collect()
    }

    async fn serve_connection(&self, stream: TcpStream, peer: SocketAddr) {
        let sni = match read_sni(&stream).await {
            Ok(sni) => sni,
            Err(reason) => {
                tracing::debug!(listener = %self.listener, %peer, reason, "gateway connection closed before routing");
                return;
            }
        };
        let Some(index) = self.tls.server_for(sni.as_deref()) else {
            tracing::debug!(listener = %self.listener, %peer, ?sni, "no gateway server for this SNI: closed");
            return;
        };
        match self.tls.servers[index].tls.mode {
            ServerTlsMode::Passthrough => {
                return self.pass_through(stream, peer, sni.as_deref()).await;
            }
            ServerTlsMode::AutoPassthrough => {
                return self.auto_pass_through(stream, peer, sni.as_deref()).await;
            }
            _ => {}
        }
        let Some(config) = self.configs.load().get(index).cloned().flatten() else {
            tracing::debug!(listener = %self.listener, %peer, ?sni, "gateway server has no usable certificate: closed");
            return;
        };
        let server = &self.tls.servers[index];
        let routes = server
            .route_config
            .as_ref()
            .or(self.tls.route_config.as_ref());
        self.terminate(stream, peer, config, routes).await;
    }

    async fn pass_through(&self, stream: TcpStream, peer: SocketAddr, sni: Option<&str>) {
        let route = self.tls.route_for(sni);
        match route.and_then(|i| self.passthrough.get(i)) {
            Some(forwarder) => forwarder.forward(stream, peer).await,
            None => {
                tracing::debug!(listener = %self.listener, %peer, ?sni, "no tls route for this SNI: closed");
            }
        }
    }

    /// AUTO_PASSTHROUGH: to the cluster the SNI names, if this gateway has it.
    async fn auto_pass_through(&self, stream: TcpStream, peer: SocketAddr, sni: Option<&str>) {
        let listener = &self.listener;
        let Some(target) = sni.and_then(auto::ClusterSni::parse) else {
            metrics::counter!(auto::FORWARDED, "listener" => listener.clone(), "result" => "unknown_sni").increment(1);
            tracing::debug!(%listener, %peer, ?sni, "AUTO_PASSTHROUGH: the SNI names no cluster (outbound_.<port>_.<subset>_.<host>): closed");
            return;
        };
        let Some(runtime) = self.http.state.current() else {
            metrics::counter!(auto::FORWARDED, "listener" => listener.clone(), "result" => "no_cluster").increment(1);
            tracing::debug!(%listener, %peer, ?sni, "AUTO_PASSTHROUGH: no config yet: closed");
            return;
        };
        let result = match auto::forward(&runtime, &target, stream).await {
            Ok(()) => "forwarded",
            Err(reason) => {
                tracing::debug!(%listener, %peer, ?sni, reason, "AUTO_PASSTHROUGH: closed");
                reason
            }
        };
        metrics::counter!(auto::FORWARDED, "listener" => listener.clone(), "result" => result)
            .increment(1);
    }

    /// Terminates with `config`, then serves HTTP by `routes`, or forwards as TCP.
    async fn terminate(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        config: Arc<ServerConfig>,
        routes: Option<&String>,
    ) {
        let local_port = stream.local_addr().map_or(0, |a| a.port());
        let accept = TlsAcceptor::from(config).accept(stream);
        let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                metrics::counter!(HANDSHAKE_FAILURES, "listener" => self.listener.clone())
                    .increment(1);
                tracing::debug!(listener = %self.listener, %peer, %error, "gateway TLS handshake failed");
                return;
            }
            Err(_) => {
                metrics::counter!(HANDSHAKE_FAILURES, "listener" => self.listener.clone())
                    .increment(1);
                tracing::debug!(listener = %self.listener, %peer, "gateway TLS handshake timed out");
                return;
            }
        };
        if let Some(route_config) = routes {
            let client = self.client(&stream, peer);
            let http = &self.http;
            let connection = http.connection(route_config, local_port, peer);
            // Istio's gateway default (SANITIZE_SET): what a client sent is dropped, and a
            // verified SPIFFE ID (ISTIO_MUTUAL, or a MUTUAL client's) is stated instead.
            let prepare = move |headers: &mut http::HeaderMap| {
                crate::inbound::xfcc::apply(headers, &client);
            };
            crate::http::serve_connection_with(stream, connection, http.drain.clone(), prepare)
                .await;
        } else if let Some(tcp) = &self.tcp {
            tcp.forward_stream(stream, peer, local_port, None).await;
        }
    }
}

impl Gateway {
    /// The client of a terminated connection: the SPIFFE ID of its verified certificate,
    /// if it showed one, and the gateway's own, for `x-forwarded-client-cert`.
    fn client(
        &self,
        stream: &tokio_rustls::server::TlsStream<TcpStream>,
        peer: SocketAddr,
    ) -> crate::inbound::Peer {
        let (tcp, tls) = stream.get_ref();
        let identity = crate::tls::peer_identity(tls).map(|id| Arc::from(id.to_string()));
        if let Some(identity) = &identity {
            tracing::debug!(listener = %self.listener, %peer, %identity, "gateway client verified");
        }
        crate::inbound::Peer {
            mtls: identity.is_some(),
            identity,
            own_identity: self
                .mesh
                .as_ref()
                .map(|m| Arc::from(m.identity().to_string())),
            address: peer,
            local: tcp.local_addr().unwrap_or(peer),
        }
    }
}

/// A gateway's plain HTTP port: as any HTTP listener, except that a client-sent
/// `x-forwarded-client-cert` is dropped (Istio's gateway default, SANITIZE_SET): only the
/// gateway may state a client certificate, and here there is none.
pub async fn serve_plain(
    listener: TcpListener,
    http: HttpSide,
    drain: Drain,
    stop: watch::Receiver<bool>,
) {
    let local_port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    accept_loop(listener, drain, stop, move |stream, peer| {
        let _ = stream.set_nodelay(true);
        let connection = http.connection(&http.route_config, local_port, peer);
        let sanitize = |headers: &mut http::HeaderMap| {
            headers.remove(crate::inbound::xfcc::XFCC);
        };
        crate::http::serve_connection_with(stream, connection, http.drain.clone(), sanitize)
    })
    .await;
}

/// Modes whose connections the gateway forwards without terminating them.
fn passes_through(mode: ServerTlsMode) -> bool {
    matches!(
        mode,
        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
    )
}

/// Accepts until `stop` fires or draining starts; each connection on its own task.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    drain: Drain,
    stop: watch::Receiver<bool>,
) {
    reload::watch(&gateway);
    accept_loop(listener, drain, stop, move |stream, peer| {
        let gateway = gateway.clone();
        async move {
            let _ = stream.set_nodelay(true);
            gateway.serve_connection(stream, peer).await
        }
    })
    .await;
}

/// Peeks until the ClientHello's first record is complete; its SNI, if any.
async fn read_sni(stream: &TcpStream) -> Result<Option<String>, &'static str> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut buf = vec![0; MAX_HELLO];
    let mut pause = Duration::from_millis(1);
    let mut seen = 0;
    loop {
        let read = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Err(_) => return Err("no ClientHello in time"),
            Ok(Err(_) | Ok(0)) => return Err("closed before a ClientHello"),
            Ok(Ok(read)) => read,
        };
        match client_hello::parse(&buf[..read]) {
            Ok(Hello::Complete(sni)) => return Ok(sni),
            Err(_) => return Err("not a TLS ClientHello"),
            Ok(Hello::NeedMore(_)) => {}
        }
        // Unread bytes keep the socket readable: after a partial record there is nothing
        // to wait on but time, so poll with a short, growing pause (as AUTO sniffing does).
        if read <= seen {
            pause = (pause * 2).min(MAX_PAUSE);
        }
        seen = read;
        if tokio::time::timeout_at(deadline, tokio::time::sleep(pause))
            .await
            .is_err()
        {
            return Err("no complete ClientHello in time");
        }
    }
}

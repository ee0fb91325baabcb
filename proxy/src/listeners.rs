//! Keeps the open sockets in step with the snapshot: a listener added is bound, one removed
//! stops accepting (its open connections finish), one unchanged keeps its socket, and one
//! whose config changed on the same address hands its socket to its successor, so not a
//! single connection is refused while, say, a PeerAuthentication change takes effect.
//!
//! In capture mode ([`crate::capture`]) only the two capture sockets are bound; the
//! snapshot's listeners become the table those dispatch from, rebuilt on every change.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use mesh_core::model::{DEFAULT_DETECT_TIMEOUT, ListenerKind, WeightedDestination};
use mesh_core::snapshot::PeerMode;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::capture::{self, Capture, Direction, Handlers, OriginalDst, Outbound};
use crate::detect::{self, Auto, HttpSide};
use crate::drain::Drain;
use crate::http::{self, Upstreams};
use crate::identity::CertificateManager;
use crate::inbound::{self, App, Inbound, Security};
use crate::metrics::Metrics;
use crate::state::State;
use crate::tcp::{self, Forwarder, SourceIdentity};

/// A listener as `/listeners` shows it: with the address actually bound (port 0 resolved).
#[derive(Debug, Clone, Serialize)]
pub struct BoundListener {
    pub name: String,
    pub configured: SocketAddr,
    pub bound: SocketAddr,
    pub protocol: &'static str,
    /// Inbound listeners: the PeerAuthentication mode in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtls: Option<PeerMode>,
}

struct Running {
    /// What the listener was started for; a change restarts it.
    signature: String,
    stop: watch::Sender<bool>,
    info: BoundListener,
    /// A duplicate of the listening socket, handed to the listener's successor when its
    /// config changes but not its address: the socket never closes, so its backlog keeps
    /// queueing connections while the new accept loop starts.
    socket: Option<std::net::TcpListener>,
}

pub struct Listeners {
    state: Arc<State>,
    metrics: Arc<Metrics>,
    upstreams: Arc<Upstreams>,
    /// The `source_*` labels of TCP metrics.
    tcp_identity: Arc<SourceIdentity>,
    drain: Drain,
    /// The workload certificate, for mTLS on inbound listeners; `None` without `--ca-addr`.
    certs: Option<Arc<CertificateManager>>,
    running: Arc<Mutex<HashMap<String, Running>>>,
    /// Capture mode: the dispatch table, and the snapshot listeners it holds as
    /// `/listeners` shows them.
    capture: OnceLock<(Arc<Capture>, capture::Ports)>,
    captured: Mutex<Vec<BoundListener>>,
    /// Gateways: where the Secrets a `credentialName` names are mounted.
    credentials: std::path::PathBuf,
    /// Gateway mode: plain HTTP ports drop a client-sent `x-forwarded-client-cert`.
    gateway: bool,
}

impl Listeners {
    pub fn new(
        state: Arc<State>,
        metrics: Arc<Metrics>,
        drain: Drain,
        certs: Option<Arc<CertificateManager>>,
    ) -> Self {
        let tcp_identity = Arc::new(SourceIdentity::new(metrics.identity().clone()));
        let running: Arc<Mutex<HashMap<String, Running>>> = Arc::default();
        // Draining closes the listening sockets (the accept loops drop theirs): the
        // duplicates kept for handovers must go too, or the kernel would keep queueing
        // connections nobody accepts.
        let (drained, draining) = (running.clone(), drain.clone());
        tokio::spawn(async move {
            draining.started().await;
            let mut running = drained.lock().unwrap_or_else(|p| p.into_inner());
            for listener in running.values_mut() {
                listener.socket = None;
            }
        });
        Self {
            state,
            metrics,
            upstreams: Arc::new(Upstreams::new(certs.clone())),
            tcp_identity,
            drain,
            certs,
            running,
            capture: OnceLock::new(),
            captured: Mutex::default(),
            credentials: crate::config::DEFAULT_CREDENTIALS_DIR.into(),
            gateway: false,
        }
    }

    /// Gateway mode: its listeners serve clients from outside the mesh.
    pub fn as_gateway(mut self, gateway: bool) -> Self {
        self.gateway = gateway;
        self
    }

    /// Gateways: look for `credentialName`'s files under `dir`.
    pub fn with_credentials(mut self, dir: std::path::PathBuf) -> Self {
        self.credentials = dir;
        self
    }

    /// Capture mode: binds the two capture ports (`ports` says where; port 0 picks one) and
    /// serves them from now on; the snapshot's listeners are dispatched to, never bound.
    /// Returns the bound ports.
    pub async fn start_capture(
        &self,
        ports: capture::Ports,
        original: Arc<dyn OriginalDst>,
    ) -> std::io::Result<capture::Ports> {
        let outbound = capture::bind(ports.outbound).await?;
        let inbound = capture::bind(ports.inbound).await?;
        let bound = capture::Ports {
            outbound: outbound.local_addr()?,
            inbound: inbound.local_addr()?,
        };
        let shared = Arc::new(Capture::new(original, bound.outbound.port()));
        if self.capture.set((shared.clone(), bound)).is_err() {
            return Err(std::io::Error::other("capture already started"));
        }
        self.serve_capture(&shared, outbound, ports.outbound, Direction::Outbound);
        self.serve_capture(&shared, inbound, ports.inbound, Direction::Inbound);
        self.reconcile().await;
        Ok(bound)
    }

    /// Spawns one capture socket's accept loop and lists it in `/listeners`.
    fn serve_capture(
        &self,
        capture: &Arc<Capture>,
        socket: TcpListener,
        configured: SocketAddr,
        direction: Direction,
    ) {
        let name = direction.listener_name();
        let (stop, stopped) = watch::channel(false);
        let info = BoundListener {
            name: name.to_owned(),
            configured,
            bound: socket.local_addr().unwrap_or(configured),
            protocol: "CAPTURE",
            mtls: None,
        };
        tracing::info!(listener = name, bound = %info.bound, "capture listener started");
        let (capture, drain) = (capture.clone(), self.drain.clone());
        tokio::spawn(capture::serve(socket, capture, direction, drain, stopped));
        let running = Running {
            signature: String::new(),
            stop,
            info,
            socket: None,
        };
        let mut all = self.running.lock().unwrap_or_else(|p| p.into_inner());
        all.insert(name.to_owned(), running);
    }

    pub fn bound(&self) -> Vec<BoundListener> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<_> = running.values().map(|r| r.info.clone()).collect();
        list.extend(
            self.captured
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Binds what the current snapshot lists and stops what it no longer does. A socket that
    /// cannot be bound is logged and skipped; the others still serve.
    pub async fn reconcile(&self) {
        let Some(runtime) = self.state.current() else {
            return;
        };
        if let Some((capture, ports)) = self.capture.get() {
            return self.dispatch(capture, *ports, &runtime.config.listeners);
        }
        let mut wanted = HashMap::new();
        for listener in &runtime.config.listeners {
            wanted.insert(listener.name.clone(), listener.clone());
        }
        let to_start: Vec<_> = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            let mut handed_over = HashMap::new();
            running.retain(|name, r| {
                let wanted = wanted.get(name);
                let keep = wanted.is_some_and(|l| signature(l) == r.signature);
                if !keep {
                    let same_address = wanted.is_some_and(|l| l.address == r.info.configured);
                    if let Some(socket) = r.socket.take().filter(|_| same_address) {
                        handed_over.insert(name.clone(), socket);
                        tracing::info!(listener = %name, "listener restarting with a new config on its socket");
                    } else {
                        tracing::info!(listener = %name, "listener stopped");
                    }
                    r.stop.send_replace(true);
                }
                keep
            });
            wanted
                .into_values()
                .filter(|l| !running.contains_key(&l.name))
                .map(|l| {
                    let socket = handed_over.remove(&l.name);
                    (l, socket)
                })
                .collect()
        };
        for (listener, socket) in to_start {
            self.start(listener, socket).await;
        }
    }

    /// Serves `listener` on `inherited` (its predecessor's socket) or a socket bound now.
    async fn start(
        &self,
        listener: mesh_core::model::Listener,
        inherited: Option<std::net::TcpListener>,
    ) {
        let socket = inherited
            .map_or_else(|| std::net::TcpListener::bind(listener.address), Ok)
            .and_then(with_duplicate);
        let (socket, duplicate) = match socket {
            Ok(pair) => pair,
            Err(error) => {
                tracing::error!(listener = %listener.name, address = %listener.address, %error, "cannot bind listener");
                return;
            }
        };
        let bound = socket.local_addr().unwrap_or(listener.address);
        let (stop, stopped) = watch::channel(false);
        if let Err(error) = self.serve(socket, &listener, stopped).await {
            tracing::error!(listener = %listener.name, %error, "cannot start listener");
            return;
        }
        tracing::info!(listener = %listener.name, %bound, protocol = listener.kind.protocol(), "listener started");
        let info = BoundListener {
            name: listener.name.clone(),
            configured: listener.address,
            bound,
            protocol: listener.kind.protocol(),
            mtls: listener.inbound.map(|i| i.mtls),
        };
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.insert(
            listener.name.clone(),
            Running {
                signature: signature(&listener),
                stop,
                info,
                socket: duplicate,
            },
        );
    }

    /// Spawns the accept loop for a listener of `kind` on `socket`.
    async fn serve(
        &self,
        socket: TcpListener,
        listener: &mesh_core::model::Listener,
        stopped: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let drain = self.drain.clone();
        if let Some(spec) = listener.inbound {
            let inbound = Arc::new(Inbound {
                security: self.security(listener, spec.mtls),
                app: self.app(&listener.kind),
            });
            tokio::spawn(inbound::serve(socket, inbound, drain, stopped));
            return Ok(());
        }
        match &listener.kind {
            ListenerKind::Http { route_config } if self.gateway => {
                let http = self.http_side(route_config);
                tokio::spawn(crate::gateway::serve_plain(socket, http, drain, stopped));
            }
            ListenerKind::Http { route_config } => {
                tokio::spawn(http::serve(
                    socket,
                    route_config.clone(),
                    self.state.clone(),
                    self.metrics.clone(),
                    self.upstreams.clone(),
                    drain,
                    stopped,
                ));
            }
            ListenerKind::Tcp { routes } => {
                tokio::spawn(tcp::serve(socket, self.forwarder(routes), drain, stopped));
            }
            ListenerKind::Auto {
                route_config,
                routes,
                detect,
            } => {
                let auto = Arc::new(Auto {
                    detect: detect.clone(),
                    tcp: self.forwarder(routes),
                    http: self.http_side(route_config),
                });
                tokio::spawn(detect::serve(socket, auto, drain, stopped));
            }
            ListenerKind::GatewayTls(tls) => {
                let gateway = self.gateway(&listener.name, tls);
                tokio::spawn(crate::gateway::serve(socket, gateway, drain, stopped));
            }
        }
        Ok(())
    }

    /// Capture mode: the snapshot's listeners as the capture sockets' dispatch table.
    fn dispatch(
        &self,
        capture: &Capture,
        ports: capture::Ports,
        listeners: &[mesh_core::model::Listener],
    ) {
        let mut table = Handlers::default();
        let mut shown = Vec::new();
        for listener in listeners {
            if routes_to_blackhole(&listener.kind) {
                // pilot's virtualOutbound under REGISTRY_ONLY: no destination of its own,
                // it says what happens to connections no other listener serves.
                table.set_unknown(capture::Unknown::Blackhole);
                shown.push(BoundListener {
                    name: listener.name.clone(),
                    configured: listener.address,
                    bound: ports.outbound,
                    protocol: listener.kind.protocol(),
                    mtls: None,
                });
                continue;
            }
            let slot = capture::slot(
                listener.address,
                listener.inbound.is_some(),
                capture.outbound_port,
            );
            if slot == capture::Slot::Skip {
                continue;
            }
            table.insert(
                slot,
                || {
                    let mtls = listener.inbound.map_or(PeerMode::Permissive, |i| i.mtls);
                    Arc::new(Inbound {
                        security: self.security(listener, mtls),
                        app: self.app(&listener.kind),
                    })
                },
                || self.outbound(&listener.kind),
            );
            let via = match slot {
                capture::Slot::Inbound(_) => ports.inbound,
                _ => ports.outbound,
            };
            shown.push(BoundListener {
                name: listener.name.clone(),
                configured: listener.address,
                bound: via,
                protocol: listener.kind.protocol(),
                mtls: listener.inbound.map(|i| i.mtls),
            });
        }
        tracing::debug!(listeners = shown.len(), "capture dispatch table updated");
        capture.table.store(Arc::new(table));
        *self.captured.lock().unwrap_or_else(|p| p.into_inner()) = shown;
    }

    fn outbound(&self, kind: &ListenerKind) -> Outbound {
        match kind {
            ListenerKind::Http { route_config } => Outbound::Http(self.http_side(route_config)),
            ListenerKind::Tcp { routes } => Outbound::Tcp(self.forwarder(routes)),
            ListenerKind::Auto {
                route_config,
                routes,
                detect,
            } => Outbound::Auto(Arc::new(Auto {
                detect: detect.clone(),
                tcp: self.forwarder(routes),
                http: self.http_side(route_config),
            })),
            // Gateways never run in capture mode: a gateway port captured anyway refuses.
            ListenerKind::GatewayTls(_) => Outbound::Tcp(self.forwarder(&[])),
        }
    }

    fn security(&self, listener: &mesh_core::model::Listener, mode: PeerMode) -> Security {
        let detect_timeout = match &listener.kind {
            ListenerKind::Auto { detect, .. } => detect.timeout,
            _ => DEFAULT_DETECT_TIMEOUT,
        };
        let tls_mode = match mode {
            PeerMode::Strict => crate::tls::Mode::Strict,
            PeerMode::Permissive | PeerMode::Disable => crate::tls::Mode::Permissive,
        };
        Security {
            listener: listener.name.clone(),
            mode,
            tls: self
                .certs
                .as_ref()
                .map(|m| crate::tls::server_config(m, tls_mode)),
            own_identity: self
                .certs
                .as_ref()
                .map(|m| Arc::from(m.identity().to_string())),
            detect_timeout,
            warned: Default::default(),
        }
    }

    /// What an inbound listener serves once its peer is admitted.
    fn app(&self, kind: &ListenerKind) -> App {
        match kind {
            ListenerKind::Http { route_config } => App::Http(self.http_side(route_config)),
            ListenerKind::Tcp { routes } => App::Tcp(self.forwarder(routes)),
            ListenerKind::Auto {
                route_config,
                routes,
                detect,
            } => App::Auto(Arc::new(Auto {
                detect: detect.clone(),
                tcp: self.forwarder(routes),
                http: self.http_side(route_config),
            })),
            // Compile refuses a gateway TLS listener that is also inbound.
            ListenerKind::GatewayTls(_) => App::Tcp(self.forwarder(&[])),
        }
    }

    fn gateway(
        &self,
        name: &str,
        tls: &Arc<mesh_core::model::GatewayTls>,
    ) -> Arc<crate::gateway::Gateway> {
        let http = self.http_side(tls.route_config.as_deref().unwrap_or_default());
        Arc::new(crate::gateway::Gateway::new(
            name,
            tls.clone(),
            &self.credentials,
            self.certs.as_ref(),
            http,
            |routes| self.forwarder(routes),
        ))
    }

    fn http_side(&self, route_config: &str) -> HttpSide {
        HttpSide {
            route_config: route_config.to_owned(),
            state: self.state.clone(),
            metrics: self.metrics.clone(),
            upstreams: self.upstreams.clone(),
            drain: self.drain.clone(),
        }
    }

    fn forwarder(&self, routes: &[WeightedDestination]) -> Arc<Forwarder> {
        Arc::new(Forwarder {
            state: self.state.clone(),
            routes: routes.into(),
            identity: self.tcp_identity.clone(),
            certs: self.certs.clone(),
        })
    }
}

/// The socket for tokio, and a duplicate of its descriptor to hand over later (without
/// one, when the descriptor table is full, a config change rebinds instead).
fn with_duplicate(
    socket: std::net::TcpListener,
) -> std::io::Result<(TcpListener, Option<std::net::TcpListener>)> {
    socket.set_nonblocking(true)?;
    let duplicate = socket.try_clone().ok();
    Ok((TcpListener::from_std(socket)?, duplicate))
}

fn signature(listener: &mesh_core::model::Listener) -> String {
    format!(
        "{}|{:?}|{:?}",
        listener.address, listener.kind, listener.inbound
    )
}

/// A TCP listener whose only destination is Istio's `BlackHoleCluster`.
fn routes_to_blackhole(kind: &ListenerKind) -> bool {
    let ListenerKind::Tcp { routes } = kind else {
        return false;
    };
    !routes.is_empty()
        && routes
            .iter()
            .all(|r| r.destination.host == mesh_core::snapshot::BLACKHOLE_CLUSTER)
}

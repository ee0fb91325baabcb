//! Keeps the open sockets in step with the snapshot: a listener added is bound, one removed
//! stops accepting (its open connections finish), one unchanged keeps its socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mesh_core::model::{ListenerKind, WeightedDestination};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::detect::{self, Auto, HttpSide};
use crate::drain::Drain;
use crate::http::{self, Upstreams};
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
}

struct Running {
    /// What the listener was started for; a change restarts it.
    signature: String,
    stop: watch::Sender<bool>,
    info: BoundListener,
}

pub struct Listeners {
    state: Arc<State>,
    metrics: Arc<Metrics>,
    upstreams: Arc<Upstreams>,
    /// The `source_*` labels of TCP metrics.
    tcp_identity: Arc<SourceIdentity>,
    drain: Drain,
    running: Mutex<HashMap<String, Running>>,
}

impl Listeners {
    pub fn new(state: Arc<State>, metrics: Arc<Metrics>, drain: Drain) -> Self {
        let tcp_identity = Arc::new(SourceIdentity::new(metrics.identity().clone()));
        Self {
            state,
            metrics,
            upstreams: Arc::default(),
            tcp_identity,
            drain,
            running: Mutex::default(),
        }
    }

    pub fn bound(&self) -> Vec<BoundListener> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<_> = running.values().map(|r| r.info.clone()).collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Binds what the current snapshot lists and stops what it no longer does. A socket that
    /// cannot be bound is logged and skipped; the others still serve.
    pub async fn reconcile(&self) {
        let Some(runtime) = self.state.current() else {
            return;
        };
        let mut wanted = HashMap::new();
        for listener in &runtime.config.listeners {
            wanted.insert(listener.name.clone(), listener.clone());
        }
        let to_start: Vec<_> = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.retain(|name, r| {
                let keep = wanted
                    .get(name)
                    .is_some_and(|l| signature(l) == r.signature);
                if !keep {
                    tracing::info!(listener = %name, "listener stopped");
                    r.stop.send_replace(true);
                }
                keep
            });
            wanted
                .into_values()
                .filter(|l| !running.contains_key(&l.name))
                .collect()
        };
        for listener in to_start {
            self.start(listener).await;
        }
    }

    async fn start(&self, listener: mesh_core::model::Listener) {
        let socket = match TcpListener::bind(listener.address).await {
            Ok(socket) => socket,
            Err(error) => {
                tracing::error!(listener = %listener.name, address = %listener.address, %error, "cannot bind listener");
                return;
            }
        };
        let bound = socket.local_addr().unwrap_or(listener.address);
        let (stop, stopped) = watch::channel(false);
        if let Err(error) = self.serve(socket, &listener.kind, stopped).await {
            tracing::error!(listener = %listener.name, %error, "cannot start listener");
            return;
        }
        tracing::info!(listener = %listener.name, %bound, protocol = listener.kind.protocol(), "listener started");
        let info = BoundListener {
            name: listener.name.clone(),
            configured: listener.address,
            bound,
            protocol: listener.kind.protocol(),
        };
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.insert(
            listener.name.clone(),
            Running {
                signature: signature(&listener),
                stop,
                info,
            },
        );
    }

    /// Spawns the accept loop for a listener of `kind` on `socket`.
    async fn serve(
        &self,
        socket: TcpListener,
        kind: &ListenerKind,
        stopped: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let drain = self.drain.clone();
        match kind {
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
                let http = HttpSide {
                    route_config: route_config.clone(),
                    state: self.state.clone(),
                    metrics: self.metrics.clone(),
                    upstreams: self.upstreams.clone(),
                    drain: drain.clone(),
                };
                let auto = Arc::new(Auto {
                    detect: detect.clone(),
                    tcp: self.forwarder(routes),
                    http,
                });
                tokio::spawn(detect::serve(socket, auto, drain, stopped));
            }
        }
        Ok(())
    }

    fn forwarder(&self, routes: &[WeightedDestination]) -> Arc<Forwarder> {
        Arc::new(Forwarder {
            state: self.state.clone(),
            routes: routes.into(),
            identity: self.tcp_identity.clone(),
        })
    }
}

fn signature(listener: &mesh_core::model::Listener) -> String {
    format!("{}|{:?}", listener.address, listener.kind)
}

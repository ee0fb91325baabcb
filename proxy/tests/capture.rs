//! Capture mode in process, with the proxy's real listeners, dispatch and forwarding and a
//! stand-in for the kernel's original-destination lookup (the only part that needs root
//! and iptables; e2e/tests/netns.rs covers it): under `outboundTrafficPolicy:
//! REGISTRY_ONLY` a captured connection to an address the mesh does not know is closed and
//! counted, while a service's address still reaches the service; under ALLOW_ANY the same
//! connection passes through.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesh_core::compile::compile;
use mesh_core::snapshot::Snapshot;
use mesh_proxy::capture::{OriginalDst, Ports};
use mesh_proxy::drain::Drain;
use mesh_proxy::listeners::Listeners;
use mesh_proxy::metrics::{Identity, Metrics};
use mesh_proxy::state::{Runtime, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const VIP: &str = "10.96.0.10:5432";

/// What a redirect would have said, per client address.
#[derive(Default)]
struct Fake(Mutex<HashMap<SocketAddr, SocketAddr>>);

impl OriginalDst for Fake {
    fn original_dst(&self, stream: &TcpStream) -> std::io::Result<SocketAddr> {
        let peer = stream.peer_addr()?;
        let map = self.0.lock().unwrap();
        map.get(&peer)
            .copied()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

/// A TCP server greeting every connection with `banner`; counts what it accepted.
async fn banner(banner: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            let _ = stream.write_all(banner.as_bytes()).await;
        }
    });
    (address, accepted)
}

/// The db service at its VIP; with `registry_only`, pilot's virtualOutbound listener and
/// the BlackHoleCluster it routes to.
fn snapshot(db: SocketAddr, registry_only: bool) -> Snapshot {
    let blackhole = if registry_only {
        "- {name: virtualOutbound, address: \"0.0.0.0:15001\", protocol: TCP, tcpRoute: [{destination: {host: BlackHoleCluster}}]}\n"
    } else {
        ""
    };
    let blackhole_cluster = if registry_only {
        "- {host: BlackHoleCluster, port: 0}\n"
    } else {
        ""
    };
    let yaml = format!(
        r#"version: "{registry_only}"
listeners:
- {{name: "outbound|{VIP}", address: "{VIP}", protocol: TCP, tcpRoute: [{{destination: {{host: db.shop.svc.cluster.local}}}}]}}
{blackhole}clusters:
- {{host: db.shop.svc.cluster.local, port: 5432, endpoints: [{{address: "{db}"}}]}}
{blackhole_cluster}"#
    );
    Snapshot::from_yaml(&yaml).unwrap()
}

async fn apply(state: &Arc<State>, listeners: &Listeners, snapshot: Snapshot) {
    let config = compile(&snapshot).unwrap();
    state.apply(Runtime::new(snapshot, config, state).unwrap());
    listeners.reconcile().await;
}

/// Connects to the capture port as if redirected from `original`; what came back before
/// the connection ended.
async fn captured(fake: &Fake, port: SocketAddr, original: SocketAddr) -> String {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    fake.0
        .lock()
        .unwrap()
        .insert(socket.local_addr().unwrap(), original);
    let mut stream = socket.connect(port).await.unwrap();
    let mut received = Vec::new();
    let read = stream.read_to_end(&mut received);
    let _ = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the connection ends");
    String::from_utf8(received).unwrap()
}

fn blackholed(metrics: &Metrics) -> f64 {
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with("mesh_capture_blackhole_total{"))
        .filter(|l| l.contains(r#"reason="registry_only""#))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn registry_only_closes_captured_connections_to_unknown_addresses_and_allow_any_passes_them()
{
    let (db, _) = banner("db").await;
    let (outside, outside_accepted) = banner("outside").await;
    let identity = Identity {
        workload: "productpage-v1".into(),
        namespace: "shop".into(),
        app: "productpage".into(),
        version: "v1".into(),
        principal: "unknown".into(),
    };
    let metrics = Metrics::install(identity, false).unwrap();
    let state = Arc::new(State::default());
    let listeners = Listeners::new(state.clone(), metrics.clone(), Drain::default(), None);
    let fake = Arc::new(Fake::default());
    let any = "127.0.0.1:0".parse().unwrap();
    let ports = listeners
        .start_capture(
            Ports {
                outbound: any,
                inbound: any,
            },
            fake.clone(),
        )
        .await
        .unwrap();
    let vip: SocketAddr = VIP.parse().unwrap();

    apply(&state, &listeners, snapshot(db, true)).await;
    assert_eq!(captured(&fake, ports.outbound, vip).await, "db");
    assert_eq!(captured(&fake, ports.outbound, outside).await, "");
    assert_eq!(outside_accepted.load(Ordering::Relaxed), 0, "nothing left");
    assert_eq!(blackholed(&metrics), 1.0);
    println!("REGISTRY_ONLY: the VIP reached db, {outside} was closed and counted");

    apply(&state, &listeners, snapshot(db, false)).await;
    assert_eq!(captured(&fake, ports.outbound, vip).await, "db");
    assert_eq!(captured(&fake, ports.outbound, outside).await, "outside");
    assert_eq!(blackholed(&metrics), 1.0, "ALLOW_ANY refuses nothing");
}

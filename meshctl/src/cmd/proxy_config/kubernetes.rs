//! Kubernetes mode: a proxy's admin port (15000) and pilot's monitoring port (15014) reached
//! through kube-rs port-forwards.
//!
//! Each port-forward is relayed through a listener on 127.0.0.1:0 ([`Forward`]), as `kubectl
//! port-forward` does, so the HTTP client and the error messages of [`super::fetch`] serve
//! both modes unchanged. The pod lookup and the sidecar check are plain functions of the API
//! server's answers ([`sidecar_pod`], [`pilot_pod`]), tested against a mocked API server.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::cause::{cluster_unreachable, innermost};

/// The sidecar's container name (the injector's).
pub const PROXY_CONTAINER: &str = "mesh-proxy";
/// The sidecar's admin port.
pub const ADMIN_PORT: u16 = 15000;
/// pilot's monitoring port (`/debug/syncz`, `/debug/config_dump`).
pub const MONITORING_PORT: u16 = 15014;
/// Where `meshctl install` puts pilot, and the label its pods carry.
const PILOT_NAMESPACE: &str = crate::cmd::install::manifest::NAMESPACE;
const PILOT_SELECTOR: &str = "app=pilot";

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(
        "no cluster reachable: {0}; set KUBECONFIG or the current context (`kubectl config current-context`), or run `meshctl local up` for local mode"
    )]
    NoCluster(String),
    #[error(
        "pod {pod:?} not found in namespace {namespace:?}; `kubectl get pods -n {namespace}` lists them (name another namespace as POD.NAMESPACE)"
    )]
    PodNotFound { pod: String, namespace: String },
    #[error(
        "pod {pod}.{namespace} has no {PROXY_CONTAINER} container: label its namespace `mesh-injection=enabled` and restart it, or `meshctl kube-inject`"
    )]
    NoSidecar { pod: String, namespace: String },
    #[error(
        "pod {pod}.{namespace} is {phase}, not Running; `kubectl describe pod {pod} -n {namespace}` says why"
    )]
    NotRunning {
        pod: String,
        namespace: String,
        phase: String,
    },
    #[error(
        "control plane not installed: no running pilot pod ({PILOT_SELECTOR}) in {PILOT_NAMESPACE}; `meshctl install`"
    )]
    NoPilot,
    #[error("reading {what}: {error}")]
    Api { what: String, error: String },
    #[error("port {port} of pod {pod}.{namespace} unreachable: {error}")]
    PortUnreachable {
        pod: String,
        namespace: String,
        port: u16,
        error: String,
    },
    #[error("cannot listen on 127.0.0.1 for the port-forward: {0}")]
    Listen(#[source] io::Error),
}

/// A client for the cluster KUBECONFIG (or the pod's service account) names; its default
/// namespace is the context's, else `default`.
pub async fn client() -> Result<Client, KubeError> {
    Client::try_default()
        .await
        .map_err(|error| KubeError::NoCluster(error.to_string()))
}

/// Whether Kubernetes mode has something to talk to: a kubeconfig or an in-cluster account.
pub fn kubeconfig_available() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        || kube::config::Kubeconfig::read().is_ok()
}

/// `pod` or `pod.namespace`, the namespace defaulting to the client's.
pub fn split_pod(given: &str, default_namespace: &str) -> (String, String) {
    match given.rsplit_once('.') {
        Some((pod, namespace)) if !pod.is_empty() && !namespace.is_empty() => {
            (pod.to_owned(), namespace.to_owned())
        }
        _ => (given.to_owned(), default_namespace.to_owned()),
    }
}

/// The pod, checked to be running with the `mesh-proxy` sidecar (a native sidecar init
/// container or a regular one).
pub async fn sidecar_pod(client: &Client, pod: &str, namespace: &str) -> Result<Pod, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let found = pods
        .get_opt(pod)
        .await
        .map_err(|error| api_error(&format!("pod {pod}.{namespace}"), error))?;
    let found = found.ok_or_else(|| KubeError::PodNotFound {
        pod: pod.to_owned(),
        namespace: namespace.to_owned(),
    })?;
    if !has_sidecar(&found) {
        return Err(KubeError::NoSidecar {
            pod: pod.to_owned(),
            namespace: namespace.to_owned(),
        });
    }
    let phase = phase(&found);
    if phase != "Running" {
        return Err(KubeError::NotRunning {
            pod: pod.to_owned(),
            namespace: namespace.to_owned(),
            phase,
        });
    }
    Ok(found)
}

pub fn has_sidecar(pod: &Pod) -> bool {
    pod.spec.as_ref().is_some_and(|spec| {
        let init = spec.init_containers.iter().flatten();
        spec.containers
            .iter()
            .chain(init)
            .any(|c| c.name == PROXY_CONTAINER)
    })
}

/// The node id the pod's sidecar gives pilot, as mesh-proxy makes it from the env the
/// injector sets: `MESH_NODE_ID`, else `MESH_WORKLOAD.POD_NAMESPACE`, else `pod.namespace`.
pub fn node_id(pod: &Pod, namespace: &str) -> String {
    let spec = pod.spec.as_ref();
    let proxy = spec.and_then(|spec| {
        let init = spec.init_containers.iter().flatten();
        spec.containers
            .iter()
            .chain(init)
            .find(|c| c.name == PROXY_CONTAINER)
    });
    let env = |name: &str| {
        proxy?
            .env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    if let Some(id) = env("MESH_NODE_ID") {
        return id;
    }
    let workload = env("MESH_WORKLOAD")
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    format!("{workload}.{namespace}")
}

fn phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".to_owned())
}

/// The name of a running pilot pod in `mesh-system`.
pub async fn pilot_pod(client: &Client) -> Result<String, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), PILOT_NAMESPACE);
    let list = pods
        .list(&ListParams::default().labels(PILOT_SELECTOR))
        .await
        .map_err(|error| match &error {
            kube::Error::Api(status) if status.code == 404 => KubeError::NoPilot,
            _ => api_error(&format!("pods in {PILOT_NAMESPACE}"), error),
        })?;
    list.items
        .iter()
        .filter(|p| phase(p) == "Running")
        .find_map(|p| p.metadata.name.clone())
        .ok_or(KubeError::NoPilot)
}

fn api_error(what: &str, error: kube::Error) -> KubeError {
    if cluster_unreachable(&error) {
        return KubeError::NoCluster(innermost(&error));
    }
    KubeError::Api {
        what: what.to_owned(),
        error: error.to_string(),
    }
}

/// A stream to the pod's port, one per connection the relay accepts.
pub type Stream = Pin<Box<dyn AsyncReadWrite>>;
pub trait AsyncReadWrite: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> AsyncReadWrite for T {}
pub type Open =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = io::Result<Stream>> + Send>> + Send + Sync>;

/// Opens a port-forward to `port` of the pod: once now, so that a pod the API server will
/// not forward to is reported here, then once per connection.
pub async fn forward(
    client: &Client,
    pod: &str,
    namespace: &str,
    port: u16,
) -> Result<Forward, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let name = pod.to_owned();
    let open: Open = Arc::new(move || {
        let pods = pods.clone();
        let name = name.clone();
        Box::pin(async move {
            let mut forwarder = pods
                .portforward(&name, &[port])
                .await
                .map_err(io::Error::other)?;
            let stream = forwarder
                .take_stream(port)
                .ok_or_else(|| io::Error::other("the port-forward has no stream"))?;
            // The forwarder's task ends with the stream; it need not be awaited.
            Ok(Box::pin(stream) as Stream)
        })
    });
    let first = open().await.map_err(|error| KubeError::PortUnreachable {
        pod: pod.to_owned(),
        namespace: namespace.to_owned(),
        port,
        error: error.to_string(),
    })?;
    Forward::start(open, Some(first)).await
}

/// A listener on 127.0.0.1 relaying each connection to a new stream; stops when dropped.
#[derive(Debug)]
pub struct Forward {
    pub addr: SocketAddr,
    relay: JoinHandle<()>,
}

impl Forward {
    pub async fn start(open: Open, mut first: Option<Stream>) -> Result<Forward, KubeError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(KubeError::Listen)?;
        let addr = listener.local_addr().map_err(KubeError::Listen)?;
        let relay = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let ready = first.take();
                let open = open.clone();
                tokio::spawn(async move {
                    let upstream = match ready {
                        Some(stream) => Ok(stream),
                        None => open().await,
                    };
                    // A failure closes the connection; the HTTP client reports it.
                    if let Ok(mut upstream) = upstream {
                        let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                    }
                });
            }
        });
        Ok(Forward { addr, relay })
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn pod_names() {
        assert_eq!(
            split_pod("productpage-v1-abc", "ns"),
            ("productpage-v1-abc".into(), "ns".into())
        );
        assert_eq!(
            split_pod("productpage-v1-abc.bookinfo", "ns"),
            ("productpage-v1-abc".into(), "bookinfo".into())
        );
        assert_eq!(split_pod("odd.", "ns"), ("odd.".into(), "ns".into()));
    }

    #[test]
    fn the_node_id_is_the_sidecars() {
        let pod = |env: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "reviews-v1-7f9c"},
                "spec": {"initContainers": [{"name": "mesh-proxy", "env": env}], "containers": []},
            }))
            .expect("a pod")
        };
        let workload = serde_json::json!([{"name": "MESH_WORKLOAD", "value": "reviews-v1"}]);
        assert_eq!(node_id(&pod(workload), "shop"), "reviews-v1.shop");
        let named = serde_json::json!([{"name": "MESH_NODE_ID", "value": "n1"}]);
        assert_eq!(node_id(&pod(named), "shop"), "n1");
        assert_eq!(
            node_id(&pod(serde_json::json!([])), "shop"),
            "reviews-v1-7f9c.shop"
        );
    }

    /// The relay carries an HTTP exchange to whatever the opener connects to: here a tiny
    /// admin port on 127.0.0.1 standing in for the pod's.
    #[tokio::test]
    async fn the_relay_carries_http_to_the_stream() {
        let admin = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let admin_addr = admin.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = admin.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = tokio::io::AsyncReadExt::read(&mut conn, &mut buf).await;
                    let body = r#"{"ok":true}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        });
        let open: Open = Arc::new(move || {
            Box::pin(async move {
                let stream = tokio::net::TcpStream::connect(admin_addr).await?;
                Ok(Box::pin(stream) as Stream)
            })
        });
        let forward = Forward::start(open, None).await.expect("relay");
        for _ in 0..2 {
            let value = super::super::fetch::json(forward.addr, "/config_dump")
                .await
                .expect("fetched");
            assert_eq!(value["ok"], true);
        }
    }
}

//! A fake citadel: `CertificateService` over TLS on loopback, signing CSRs with a [`TestCa`],
//! recording what it was sent, and down on demand.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use mesh_proto::ca::v1::certificate_service_server::{
    CertificateService, CertificateServiceServer,
};
use mesh_proto::ca::v1::{CertificateRequest, CertificateResponse};
use rcgen::{CertificateSigningRequestParams, SanType};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

use super::ca::{TestCa, Validity};

/// One `CreateCertificate` call as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: SystemTime,
    /// The CSR's SANs, `URI:...`, `DNS:...`.
    pub sans: Vec<String>,
    pub authorization: Option<String>,
    pub validity_seconds: i64,
    /// The leaf's serial, when one was issued.
    pub issued: Option<String>,
}

pub struct FakeCitadel {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    /// Files for the proxy's flags.
    pub bundle_file: PathBuf,
    pub token_file: PathBuf,
    dir: PathBuf,
}

struct Shared {
    ca: TestCa,
    down: AtomicBool,
    seen: Mutex<Vec<Seen>>,
}

impl FakeCitadel {
    /// Serves on 127.0.0.1 with a certificate for `localhost` and `127.0.0.1` from `ca`,
    /// which also signs the CSRs.
    pub async fn start(ca: TestCa) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dir = std::env::temp_dir().join(format!(
            "mesh-fake-citadel-{}-{}",
            std::process::id(),
            addr.port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let bundle_file = dir.join("root-cert.pem");
        std::fs::write(&bundle_file, &ca.root_pem).unwrap();
        let token_file = dir.join("token");
        std::fs::write(&token_file, "first-token\n").unwrap();
        let tls = tls_config(&ca);
        let shared = Arc::new(Shared {
            ca,
            down: AtomicBool::new(false),
            seen: Mutex::default(),
        });
        let service = CertificateServiceServer::new(Service(shared.clone()));
        let incoming = ReceiverStream::new(accept_tls(listener, tls));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
        Self {
            addr,
            shared,
            bundle_file,
            token_file,
            dir,
        }
    }

    /// `localhost:<port>`, the name on the fake's certificate.
    pub fn address(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    /// While down, every call fails with UNAVAILABLE.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits until the fake has seen `count` calls.
    pub async fn wait_seen(&self, count: usize) -> Vec<Seen> {
        let start = std::time::Instant::now();
        loop {
            let seen = self.seen();
            if seen.len() >= count {
                return seen;
            }
            assert!(
                start.elapsed() < crate::support::DEADLINE,
                "only {} CA calls: {seen:?}",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for FakeCitadel {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Service(Arc<Shared>);

#[tonic::async_trait]
impl CertificateService for Service {
    async fn create_certificate(
        &self,
        request: Request<CertificateRequest>,
    ) -> Result<Response<CertificateResponse>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let request = request.into_inner();
        let parsed = CertificateSigningRequestParams::from_pem(&request.csr)
            .map_err(|e| Status::invalid_argument(format!("CSR: {e}")))?;
        let mut seen = Seen {
            at: SystemTime::now(),
            sans: parsed.params.subject_alt_names.iter().map(san).collect(),
            authorization,
            validity_seconds: request.validity_duration_seconds,
            issued: None,
        };
        let answer = self.answer(&request);
        if let Ok(chain) = &answer {
            seen.issued = Some(serial(&chain[0]));
        }
        self.0.seen.lock().unwrap().push(seen);
        let cert_chain = answer?;
        Ok(Response::new(CertificateResponse {
            cert_chain,
            trust_bundle: vec![self.0.ca.root_pem.clone()],
        }))
    }
}

impl Service {
    fn answer(&self, request: &CertificateRequest) -> Result<Vec<String>, Status> {
        if self.0.down.load(Ordering::SeqCst) {
            return Err(Status::unavailable("fake citadel is down"));
        }
        let ttl = Duration::from_secs(request.validity_duration_seconds.max(1) as u64);
        self.0
            .ca
            .sign_csr(&request.csr, Validity::from_now(ttl))
            .map_err(|e| Status::internal(e.to_string()))
    }
}

fn san(name: &SanType) -> String {
    match name {
        SanType::URI(uri) => format!("URI:{}", uri.as_str()),
        SanType::DnsName(dns) => format!("DNS:{}", dns.as_str()),
        other => format!("{other:?}"),
    }
}

fn serial(pem: &str) -> String {
    let der = mesh_proxy::identity::certificate::certs_from_pem("leaf", &[pem]).unwrap();
    mesh_proxy::identity::CertInfo::parse(&der[0])
        .unwrap()
        .serial
}

fn tls_config(ca: &TestCa) -> Arc<rustls::ServerConfig> {
    let (chain, key) = ca.server_cert(&["localhost", "127.0.0.1", "citadel.mesh-system.svc"]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// TLS connections for tonic's `serve_with_incoming`.
fn accept_tls(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> tokio::sync::mpsc::Receiver<Result<Tls, std::io::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, sender) = (acceptor.clone(), sender.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = sender.send(Ok(Tls(tls))).await;
                }
            });
        }
    });
    receiver
}

/// A TLS stream tonic can serve (its own impl needs tonic's TLS features).
pub struct Tls(TlsStream<TcpStream>);

impl Connected for Tls {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

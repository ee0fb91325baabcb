//! A tonic client for citadel over rustls (tonic's own TLS features are off), verifying
//! citadel's serving certificate against a trust bundle for the name `localhost`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use mesh_proto::ca::v1::certificate_service_client::CertificateServiceClient;
use mesh_proto::ca::v1::{CertificateRequest, CertificateResponse};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tonic::codegen::Service;
use tonic::transport::{Channel, Endpoint, Uri};

type Io = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Io, std::io::Error>> + Send>>;

#[derive(Clone)]
struct Connector {
    config: Arc<rustls::ClientConfig>,
    address: SocketAddr,
    name: ServerName<'static>,
}

impl Service<Uri> for Connector {
    type Response = Io;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let tls = tokio_rustls::TlsConnector::from(self.config.clone());
        let (address, name) = (self.address, self.name.clone());
        Box::pin(async move {
            let tcp = TcpStream::connect(address).await?;
            Ok(TokioIo::new(tls.connect(name, tcp).await?))
        })
    }
}

/// Connects to citadel at `address`, trusting only the roots in `bundle_pem`.
pub async fn connect(
    address: SocketAddr,
    bundle_pem: &str,
) -> Result<CertificateServiceClient<Channel>, tonic::transport::Error> {
    connect_as(address, bundle_pem, "localhost").await
}

pub async fn connect_as(
    address: SocketAddr,
    bundle_pem: &str,
    name: &str,
) -> Result<CertificateServiceClient<Channel>, tonic::transport::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for der in super::ders(&[bundle_pem.to_owned()]) {
        roots.add(CertificateDer::from(der)).expect("a root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = Connector {
        config: Arc::new(config),
        address,
        name: ServerName::try_from(name.to_owned()).expect("a name"),
    };
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect_with_connector(connector)
        .await?;
    Ok(CertificateServiceClient::new(channel))
}

/// One `CreateCertificate`, with `token` as the bearer credential if given.
pub async fn request(
    client: &mut CertificateServiceClient<Channel>,
    csr: &str,
    seconds: i64,
    token: Option<&str>,
) -> Result<CertificateResponse, tonic::Status> {
    let mut request = tonic::Request::new(CertificateRequest {
        csr: csr.to_owned(),
        validity_duration_seconds: seconds,
    });
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("ASCII");
        request.metadata_mut().insert("authorization", value);
    }
    client
        .create_certificate(request)
        .await
        .map(|r| r.into_inner())
}

//! citadel's client: a CSR for the proxy's identity over TLS (citadel's serving certificate
//! checked against the trust bundle file), with the bearer token read afresh each time,
//! since projected service-account tokens rotate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use mesh_proto::ca::v1::CertificateRequest;
use mesh_proto::ca::v1::certificate_service_client::CertificateServiceClient;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::codegen::Service;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint, Uri};

use super::certificate::{CertError, TrustBundle, WorkloadCertificate};
use super::csr::{self, CsrError};
use super::source::{BoxFuture, CertificateSource, FetchError};
use super::spiffe::Identity;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("CA address {0:?}: expected host:port, e.g. citadel.mesh-system.svc:8060")]
    Address(String),
    #[error("reading the trust bundle {path}: {source}")]
    BundleFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the trust bundle {path}: {source}")]
    Bundle { path: PathBuf, source: CertError },
    #[error("reading the CA token {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA token in {0} is not a valid header value (printable ASCII only)")]
    TokenValue(PathBuf),
    #[error("TLS to the CA: {0}")]
    Tls(#[from] rustls::Error),
    #[error("connecting to the CA at {address}: {source}")]
    Connect {
        address: String,
        source: tonic::transport::Error,
    },
    #[error("the CA refused the CSR: {}: {}", .0.code(), .0.message())]
    Refused(tonic::Status),
    #[error(transparent)]
    Csr(#[from] CsrError),
    #[error("the CA's answer: {0}")]
    Answer(#[from] CertError),
}

/// Requests certificates from citadel's `CertificateService`.
#[derive(Debug, Clone)]
pub struct CaClient {
    address: String,
    server_name: ServerName<'static>,
    trust_bundle: PathBuf,
    token_file: Option<PathBuf>,
}

impl CaClient {
    /// Checks the address and that the trust bundle file holds roots now, so a bad flag
    /// fails at start rather than on every renewal.
    pub fn new(
        address: &str,
        trust_bundle: PathBuf,
        token_file: Option<PathBuf>,
    ) -> Result<Self, CaError> {
        let server_name = server_name(address)?;
        load_bundle(&trust_bundle)?;
        Ok(Self {
            address: address.to_owned(),
            server_name,
            trust_bundle,
            token_file,
        })
    }

    /// One CSR for `identity`: a new key, signed by the CA, as a certificate rustls can use.
    pub async fn request(
        &self,
        identity: &Identity,
        ttl: Duration,
    ) -> Result<WorkloadCertificate, CaError> {
        let generated = csr::generate(identity)?;
        let mut request = tonic::Request::new(CertificateRequest {
            csr: generated.csr_pem.clone(),
            validity_duration_seconds: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        });
        if let Some(token) = self.bearer()? {
            request.metadata_mut().insert("authorization", token);
        }
        let mut client = CertificateServiceClient::new(self.connect().await?);
        let answer = client
            .create_certificate(request)
            .await
            .map_err(CaError::Refused)?
            .into_inner();
        let cert = WorkloadCertificate::from_pem(
            &answer.cert_chain,
            generated.private_key(),
            &answer.trust_bundle,
        )?;
        Ok(cert)
    }

    /// A fresh connection per request: renewals are hours apart, and each one picks up a
    /// rotated trust bundle file.
    async fn connect(&self) -> Result<Channel, CaError> {
        let bundle = load_bundle(&self.trust_bundle)?;
        let connector = Connector {
            config: Arc::new(client_config(&bundle)?),
            server_name: self.server_name.clone(),
            address: self.address.clone(),
        };
        let connect_error = |source| CaError::Connect {
            address: self.address.clone(),
            source,
        };
        Endpoint::from_shared(format!("https://{}", self.address))
            .map_err(connect_error)?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .connect_with_connector(connector)
            .await
            .map_err(connect_error)
    }

    /// `Bearer <token>`, from the file as it is now; none without a token file.
    fn bearer(&self) -> Result<Option<MetadataValue<tonic::metadata::Ascii>>, CaError> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let token = std::fs::read_to_string(path).map_err(|source| CaError::TokenFile {
            path: path.clone(),
            source,
        })?;
        let value = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| CaError::TokenValue(path.clone()))?;
        Ok(Some(value))
    }
}

impl CertificateSource for CaClient {
    fn fetch<'a>(
        &'a self,
        identity: &'a Identity,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<WorkloadCertificate, FetchError>> {
        Box::pin(async move { Ok(self.request(identity, ttl).await?) })
    }
}

/// TLS 1.3 to citadel, its certificate checked against the bundle for the address's name.
fn client_config(bundle: &TrustBundle) -> Result<ClientConfig, CaError> {
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(bundle.roots().clone())
            .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn load_bundle(path: &Path) -> Result<TrustBundle, CaError> {
    let pem = std::fs::read_to_string(path).map_err(|source| CaError::BundleFile {
        path: path.to_owned(),
        source,
    })?;
    TrustBundle::from_pem(&[pem]).map_err(|source| CaError::Bundle {
        path: path.to_owned(),
        source,
    })
}

/// The name citadel's certificate must carry: the address's host (`[::1]` as `::1`).
fn server_name(address: &str) -> Result<ServerName<'static>, CaError> {
    let bad = || CaError::Address(address.to_owned());
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|_| bad())
}

/// tonic's transport without its TLS features: TCP, then rustls, to the CA's address.
#[derive(Clone)]
struct Connector {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    address: String,
}

type CaStream = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

impl Service<Uri> for Connector {
    type Response = CaStream;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, Result<CaStream, std::io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let tls = tokio_rustls::TlsConnector::from(self.config.clone());
        let name = self.server_name.clone();
        let address = self.address.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(&address).await?;
            tcp.set_nodelay(true)?;
            Ok(TokioIo::new(tls.connect(name, tcp).await?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_the_host() {
        let name = |a: &str| server_name(a).map(|n| n.to_str().into_owned());
        assert_eq!(name("localhost:8060").ok(), Some("localhost".into()));
        assert_eq!(name("127.0.0.1:8060").ok(), Some("127.0.0.1".into()));
        assert_eq!(name("[::1]:8060").ok(), Some("::1".into()));
        assert_eq!(
            name("citadel.mesh-system.svc:8060").ok(),
            Some("citadel.mesh-system.svc".into())
        );
        for bad in ["citadel", "citadel:port", ":8060", "bad name:1"] {
            assert!(server_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_bundle_fails_at_start_naming_the_file() {
        let error = CaClient::new("localhost:8060", "/nonexistent/root.pem".into(), None)
            .expect_err("no bundle");
        assert!(
            error.to_string().contains("/nonexistent/root.pem"),
            "{error}"
        );
    }
}

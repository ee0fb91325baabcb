//! TLS servers on loopback that stand for services outside the mesh: an HTTP one (HTTP/1.1
//! and HTTP/2) and a TCP echo, recording what each completed handshake showed: the SNI, the
//! ALPN protocol and the client's certificate.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// One handshake the server completed.
#[derive(Debug, Clone)]
pub struct Seen {
    pub sni: Option<String>,
    pub alpn: Option<Vec<u8>>,
    pub client_certificate: Option<CertificateDer<'static>>,
}

pub struct TlsUpstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    requests: Arc<Mutex<Vec<http::Version>>>,
}

/// A server config presenting `chain` and `key` (PEM), offering `h2` and `http/1.1`;
/// with `client_ca` (PEM), a client certificate from it is required.
pub fn server_config(
    chain: &[String],
    key: &str,
    client_ca: Option<&str>,
) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|pem| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
                .unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

impl TlsUpstream {
    /// Serves HTTP/1.1 and HTTP/2 over TLS: 200, body `tls upstream`.
    pub async fn http(config: Arc<rustls::ServerConfig>) -> Self {
        Self::serve(config, true).await
    }

    /// Echoes bytes over TLS.
    pub async fn echo(config: Arc<rustls::ServerConfig>) -> Self {
        Self::serve(config, false).await
    }

    async fn serve(config: Arc<rustls::ServerConfig>, http: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let acceptor = TlsAcceptor::from(config);
        let (seen_by_task, requests_by_task) = (seen.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let seen = seen_by_task.clone();
                let requests = requests_by_task.clone();
                tokio::spawn(async move {
                    // A refused handshake is what some tests are about: nothing to record.
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let session = stream.get_ref().1;
                    seen.lock().unwrap().push(Seen {
                        sni: session.server_name().map(str::to_owned),
                        alpn: session.alpn_protocol().map(<[u8]>::to_vec),
                        client_certificate: session
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| c.clone().into_owned()),
                    });
                    if http {
                        serve_http(stream, requests).await;
                    } else {
                        echo(stream).await;
                    }
                });
            }
        });
        Self {
            addr,
            seen,
            requests,
        }
    }

    /// The handshakes completed so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The HTTP versions of the requests answered so far.
    pub fn requests(&self) -> Vec<http::Version> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve_http<S>(stream: S, requests: Arc<Mutex<Vec<http::Version>>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        requests.lock().unwrap().push(request.version());
        async move {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                b"tls upstream",
            ))))
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn echo<S>(mut stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
        let _ = stream.flush().await;
    }
}

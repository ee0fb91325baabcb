//! Handshakes over real loopback sockets, both sides at once.

use std::net::SocketAddr;
use std::sync::Arc;

use mesh_proxy::identity::{CertInfo, CertificateManager, Identity};
use mesh_proxy::tls::{self, Mode, TlsError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{client, server};

use crate::support::DEADLINE;

pub type Accepted = Result<(server::TlsStream<TcpStream>, Option<Identity>), TlsError>;

pub struct Handshake {
    pub server: Accepted,
    pub client: Result<client::TlsStream<TcpStream>, TlsError>,
}

/// Accepts one TLS connection with `config` on a fresh loopback port.
pub async fn accept_one(config: Arc<rustls::ServerConfig>) -> (SocketAddr, JoinHandle<Accepted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tls::accept(tcp, config).await
    });
    (addr, task)
}

/// `client` connects to `server` (in `mode`), expecting the server to be one of `expected`.
pub async fn handshake(
    server: &Arc<CertificateManager>,
    mode: Mode,
    client: &Arc<CertificateManager>,
    expected: &[Identity],
) -> Handshake {
    let (addr, accepted) = accept_one(tls::server_config(server, mode)).await;
    let connect = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tls::connect(tcp, client, expected).await
    };
    let client = within(connect).await;
    let server = within(accepted).await.unwrap();
    Handshake { server, client }
}

/// The client sends a line, the server answers: the connection carries data both ways.
pub async fn exchange<C, S>(client: &mut C, server: &mut S, text: &str)
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    client.write_all(text.as_bytes()).await.unwrap();
    client.flush().await.unwrap();
    let mut received = vec![0u8; text.len()];
    within(server.read_exact(&mut received)).await.unwrap();
    assert_eq!(received, text.as_bytes());
    server.write_all(b"ack").await.unwrap();
    server.flush().await.unwrap();
    let mut ack = [0u8; 3];
    within(client.read_exact(&mut ack)).await.unwrap();
    assert_eq!(&ack, b"ack");
}

/// Whether the client's connection still delivers anything from the server; after a
/// TLS 1.3 client's certificate is refused, the client learns it on its first read.
pub async fn client_reads_fail(client: &mut client::TlsStream<TcpStream>) -> bool {
    let _ = client.write_all(b"hello?").await;
    let mut buf = [0u8; 1];
    !matches!(within(client.read(&mut buf)).await, Ok(1))
}

/// The serial of the certificate the server presented.
pub fn server_serial(client: &client::TlsStream<TcpStream>) -> String {
    let leaf = &client.get_ref().1.peer_certificates().unwrap()[0];
    CertInfo::parse(leaf).unwrap().serial
}

pub async fn within<F: std::future::IntoFuture>(future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .expect("not within the deadline")
}

//! `mesh-proxy wait`: returns once the proxy on this pod answers ready, or fails after a
//! deadline. Without native sidecars (Kubernetes before 1.29) the injector runs it as the
//! proxy container's postStart hook, which holds the app's start until the proxy can
//! carry its traffic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "mesh-proxy wait", about = "Wait until the proxy answers ready")]
pub struct WaitArgs {
    /// The proxy's health address; ready is `GET /healthz/ready` answering 200.
    #[arg(long, env = "MESH_HEALTH_ADDR", default_value = "127.0.0.1:15021")]
    pub health: SocketAddr,
    /// Give up after this long.
    #[arg(long, default_value = "60s", value_parser = crate::config::parse_duration)]
    pub timeout: Duration,
    /// How often to ask.
    #[arg(long, default_value = "200ms", value_parser = crate::config::parse_duration)]
    pub period: Duration,
}

pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> anyhow::Result<()> {
    let args = WaitArgs::parse_from(std::iter::once("mesh-proxy wait".into()).chain(args));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(wait(&args))
}

pub async fn wait(args: &WaitArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let why = match ready(args.health).await {
            Ok(true) => {
                let waited = started.elapsed().as_millis();
                eprintln!("mesh-proxy is ready after {waited} ms");
                return Ok(());
            }
            Ok(false) => "not ready".to_owned(),
            Err(error) => format!("{error:#}"),
        };
        if started.elapsed() >= args.timeout {
            bail!(
                "mesh-proxy at {} was not ready after {:?}: {why}",
                args.health,
                args.timeout
            );
        }
        tokio::time::sleep(args.period).await;
    }
}

/// One `GET /healthz/ready` over a fresh connection.
async fn ready(health: SocketAddr) -> anyhow::Result<bool> {
    use http_body_util::Empty;
    use hyper_util::rt::TokioIo;
    let tcp = tokio::net::TcpStream::connect(health)
        .await
        .with_context(|| format!("connecting to {health}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    let request = http::Request::get("/healthz/ready")
        .header(http::header::HOST, health.to_string())
        .body(Empty::<bytes::Bytes>::new())?;
    let response = tokio::time::timeout(Duration::from_secs(2), sender.send_request(request))
        .await
        .context("no answer in 2 s")??;
    Ok(response.status() == http::StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn health_server(status: http::StatusCode) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let service = hyper::service::service_fn(move |_| async move {
                    let mut response =
                        http::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
                    *response.status_mut() = status;
                    Ok::<_, std::convert::Infallible>(response)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service),
                );
            }
        });
        addr
    }

    fn args(health: SocketAddr, timeout_ms: u64) -> WaitArgs {
        WaitArgs {
            health,
            timeout: Duration::from_millis(timeout_ms),
            period: Duration::from_millis(10),
        }
    }

    #[tokio::test]
    async fn returns_once_ready() {
        let addr = health_server(http::StatusCode::OK).await;
        wait(&args(addr, 2000)).await.expect("ready");
    }

    #[tokio::test]
    async fn fails_after_the_deadline_saying_why() {
        let addr = health_server(http::StatusCode::SERVICE_UNAVAILABLE).await;
        let error = wait(&args(addr, 100)).await.expect_err("never ready");
        assert!(error.to_string().contains("not ready"), "{error}");
        // Nothing listening: the error says it could not connect.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let gone = closed.local_addr().expect("addr");
        drop(closed);
        let error = wait(&args(gone, 50)).await.expect_err("nothing there");
        assert!(error.to_string().contains("connecting"), "{error:#}");
    }
}

//! `mesh-echo`, the mesh's sample app: an HTTP echo server whose answers can be steered, so
//! it can stand in for any upstream in the proxy's integration tests, the local-mode demo and
//! the benchmarks.
//!
//! In HTTP mode it serves HTTP/1.1 and HTTP/2 prior knowledge (h2c) on one port, answers
//! with a JSON [`EchoReply`] of what it saw (plus `x-echo-name` and `x-echo-version`), and
//! echoes bytes on HTTP/1.1 upgrades. Answers can be steered per request with `x-echo-*`
//! headers ([`knobs`]) or server-wide with [`Behaviour`], which can change while it runs.
//! `/healthz` answers `ok`, `/status/<code>` answers that code. In TCP mode it echoes bytes,
//! optionally after a greeting banner.
//!
//! On the same port, gRPC calls (HTTP/2, `application/grpc`) reach the `mesh.echo.v1.Echo`
//! service ([`grpc`]), with the knobs as gRPC statuses. With [`CallConfig`] every request
//! also calls upstream URLs, through an HTTP proxy (a sidecar) or directly, forwarding trace
//! and user headers, and reports them in [`EchoReply::calls`]; [`EchoReply::peer`] names the
//! caller the sidecar verified.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let server = mesh_echo::start(mesh_echo::EchoConfig::default()).await?;
//! let url = server.url("/hello"); // send requests here
//! # let _ = url;
//! assert_eq!(server.stats().requests(), 0);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod body;
pub mod calls;
pub mod cli;
mod config;
pub mod grpc;
mod http;
pub mod knobs;
pub mod peer;
pub mod plan;
mod reply;
mod server;
mod shutdown;
mod stats;
mod tcp;
mod upgrade;

pub use calls::{Call, CallConfig};
pub use config::{Behaviour, EchoConfig, Protocol, system_hostname};
pub use reply::EchoReply;
pub use server::{EchoServer, start};
pub use stats::{MAX_PATHS, OTHER_PATHS, Stats};

//! citadel: mesh's certificate authority. It gives every workload a SPIFFE identity
//! (`spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`) as a short-lived X.509
//! certificate, over gRPC and TLS.
//!
//! A request flows: [`server`] reads the bearer token -> [`auth`] proves an [`identity`] ->
//! [`csr`] checks the request names exactly that identity -> [`ca`] signs -> the answer
//! carries the chain and the whole trust [`bundle`]. [`tls`] serves it all with a certificate
//! the CA issues to itself; [`app`] wires the parts.

pub mod app;
pub mod auth;
pub mod bundle;
pub mod ca;
pub mod cert;
pub mod cli;
pub mod config;
pub mod csr;
pub mod identity;
pub mod metrics;
pub mod monitoring;
pub mod pem;
pub mod server;
pub mod tls;

#[cfg(test)]
mod testing;

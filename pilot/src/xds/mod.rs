//! The push side: generations of encoded resources, per-proxy streams that send each proxy
//! only what it lacks, and the gRPC service that accepts them.

pub mod generation;
pub mod held;
pub mod server;
pub mod stream;
pub mod wire;

pub use generation::Generation;
pub use server::DiscoveryService;

#[cfg(test)]
mod tests;

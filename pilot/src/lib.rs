//! pilot: the control plane. Config comes in from a [`source`] (a local directory or the
//! Kubernetes API), is indexed and translated into each proxy's snapshot, and is pushed to
//! every connected proxy over the discovery stream.

pub mod app;
pub mod cli;
pub mod config;
pub mod index;
pub mod jwks;
mod lock;
pub mod metrics;
pub mod monitoring;
pub mod push;
pub mod registry;
pub mod source;
pub mod syncz;
pub mod translate;
pub mod xds;

//! mesh-core: the language every part of mesh speaks.
//!
//! - [`config`]: the config API users write (Istio-compatible), and [`load`] to read it.
//! - [`validate`]: checks beyond parsing, as Istio's webhook and `istioctl analyze` do,
//!   reported as [`diagnostic::Diagnostic`]s that name file, object and field.
//! - [`model`]: the runtime model the proxy acts on, compiled from config once.
//! - [`snapshot`]: the proxy's config as pilot pushes it; [`compile`] turns it into the model.
//! - [`route`], [`balance`]: the pure decisions on the data path.
//!
//! No sockets, no files (but [`load`]), no clocks it does not receive.

pub mod authn;
pub mod authz;
pub mod balance;
pub mod compile;
pub mod config;
pub mod diagnostic;
pub mod error_text;
pub mod host;
pub mod load;
pub mod model;
pub mod route;
pub mod snapshot;
pub mod validate;

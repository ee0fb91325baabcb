//! mesh-proxy: the sidecar and gateway data plane.
//!
//! Config in (pilot's stream, [`xds`], or a file, [`snapshot_file`]) -> [`state`] (the
//! compiled snapshot, swapped atomically) -> [`listeners`] -> [`http`] (route, fault, balance, forward with
//! timeouts and retries over pooled connections) or [`tcp`] (opaque, split by weight), with
//! [`detect`] choosing between them per connection on AUTO listeners -> upstream. Inbound
//! listeners first run [`inbound`]: mTLS by the port's PeerAuthentication mode, then the
//! workload's AuthorizationPolicies.
//! [`identity`] keeps the workload's SPIFFE certificate fresh and [`tls`] makes mTLS of it.
//! [`metrics`] and [`admin`] show it all; [`drain`] ends it gracefully.
//! In a pod, [`iptables`] (`mesh-proxy iptables`) redirects its TCP to the proxy and
//! [`capture`] serves it by original destination.

pub mod accept;
pub mod access_log;
pub mod admin;
pub mod app;
pub mod app_probe;
pub mod capture;
pub mod cli;
pub mod config;
pub mod detect;
pub mod dns;
pub mod drain;
pub mod error_text;
pub mod gateway;
pub mod http;
pub mod identity;
pub mod inbound;
pub mod iptables;
pub mod listeners;
pub mod metrics;
pub mod resilience;
pub mod snapshot_file;
pub mod state;
pub mod tcp;
mod time_text;
pub mod tls;
pub mod trace;
pub mod wait;
pub mod xds;

//! The runtime model the proxy acts on: routes, matches, destinations and endpoints.
//!
//! These types are what the config API (Istio's VirtualService and DestinationRule) compiles
//! into, once, when config arrives: regexes are compiled, header names parsed, defaults
//! applied. The data path then works only with these types, so every decision in
//! [`crate::route`] and [`crate::balance`] is a plain function of them and of a
//! [`RequestInfo`].
//!
//! Fields are public and the types are plain data so that the conversion from config (and
//! tests) can build them directly; constructors exist where a value needs checking
//! ([`StringMatch::regex`]) or indexing ([`RouteConfig::new`]).

mod cluster;
mod endpoint;
mod gateway;
mod labels;
mod limits;
mod policy;
mod query;
mod request;
mod request_match;
mod route;
mod route_table;
mod string_match;
mod tls;

pub use cluster::{
    Cluster, ClusterSubset, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DETECT_TIMEOUT,
    DEFAULT_SERVER_FIRST_PORTS, Detect, Listener, ListenerKind, ProxyConfig,
};
pub use endpoint::{Endpoint, Subset, WorkloadMeta, spiffe_namespace};
pub use gateway::{GatewayTls, SniRoute, TlsServer, specificity};
pub use labels::{Labels, selects};
pub use limits::{ConnectionLimits, OutlierPolicy};
pub use policy::{
    Abort, Cors, Fault, Fraction, GrpcCode, HeaderOps, Mirror, RetryOn, RetryPolicy, Rewrite,
    RoutePolicy,
};
pub(crate) use request::split_port;
pub use request::{Downstream, MESH_GATEWAY, RequestInfo};
pub use request_match::{RequestMatch, ValueMatch};
pub use route::{
    Destination, DirectResponse, HttpRoute, Redirect, RedirectPort, RouteAction,
    WeightedDestination,
};
pub use route_table::{RouteConfig, RouteTable};
pub use string_match::StringMatch;
pub use tls::{
    TLS_MODE_ISTIO, TLS_MODE_LABEL, TlsDecision, TlsRefusal, UpstreamTls, UpstreamTlsMode,
    has_sidecar,
};

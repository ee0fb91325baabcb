//! mesh-injector: the sidecar-injecting admission webhook, and the same injection offline.
//!
//! [`inject`] decides and builds the JSON patch, a pure function of the pod, its namespace
//! and the [`config`]; [`annotations`] are the per-pod knobs. [`webhook`] turns an
//! AdmissionReview into its answer around it, [`namespaces`] tells the pod's namespace
//! labels, [`server`] serves HTTPS on 15017 with a certificate from [`tls`], and
//! [`ca_bundle`] keeps the MutatingWebhookConfiguration's caBundle on that certificate.
//! [`kube_inject`] runs the injection over YAML files for `meshctl kube-inject`.

pub mod annotations;
pub mod app;
pub mod ca_bundle;
pub mod config;
pub mod inject;
pub mod kube_inject;
pub mod namespaces;
pub mod server;
pub mod tls;
pub mod webhook;

pub use config::Config;
pub use inject::{InjectError, NamespaceInfo, inject};
pub use kube_inject::{KubeInjectError, inject_yaml};

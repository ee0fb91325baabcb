//! The cause of a failure that a user can act on, shared by every command that reaches a
//! cluster, a sidecar or Prometheus.

/// The innermost cause ("Connection refused"), not "client error (Connect)".
pub(crate) fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// The API server did not answer at all (as opposed to answering with an error).
pub(crate) fn cluster_unreachable(error: &kube::Error) -> bool {
    matches!(error, kube::Error::HyperError(_) | kube::Error::Service(_))
}

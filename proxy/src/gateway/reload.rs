//! Certificate files change under a running gateway: a Kubernetes Secret mounted as a
//! volume is updated in place when it is rotated, and local files are replaced by hand.
//! Every [`RELOAD_INTERVAL`] the files' sizes and modification times are compared with
//! what was loaded; when any differs, the port's servers are loaded again, and new
//! handshakes use the new certificates (open connections keep theirs).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use mesh_core::config::{ServerTlsMode, ServerTlsSettings};

use super::Gateway;
use super::certs::resolve_credential;

/// How often the files are looked at: a stat per file, cheap enough to keep short.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// What the files looked like: per file, its size and modification time if it exists.
pub type Fingerprint = Vec<Option<(u64, SystemTime)>>;

/// The files one server's certificates come from. An unresolved `credentialName` watches
/// its directory, so a Secret mounted later is noticed.
fn files(tls: &ServerTlsSettings, credentials: &Path) -> Vec<PathBuf> {
    if matches!(
        tls.mode,
        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough | ServerTlsMode::IstioMutual
    ) {
        return Vec::new();
    }
    let resolved = match resolve_credential(tls, credentials) {
        Ok(resolved) => resolved,
        Err(_) => {
            let name = tls.credential_name.as_deref().unwrap_or_default();
            return vec![credentials.join(name)];
        }
    };
    [
        &resolved.server_certificate,
        &resolved.private_key,
        &resolved.ca_certificates,
    ]
    .into_iter()
    .flatten()
    .map(PathBuf::from)
    .collect()
}

pub fn fingerprint<'a>(
    servers: impl Iterator<Item = &'a ServerTlsSettings>,
    credentials: &Path,
) -> Fingerprint {
    servers
        .flat_map(|tls| files(tls, credentials))
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.len(), meta.modified().ok()?))
        })
        .collect()
}

/// Reloads `gateway`'s certificates whenever their files change, until it is dropped.
pub fn watch(gateway: &Arc<Gateway>) {
    if !gateway.terminates() {
        return;
    }
    let weak: Weak<Gateway> = Arc::downgrade(gateway);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RELOAD_INTERVAL).await;
            let Some(gateway) = weak.upgrade() else {
                return;
            };
            gateway.reload_if_changed();
        }
    });
}

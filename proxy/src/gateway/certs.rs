//! A Gateway server's TLS settings -> a rustls `ServerConfig`: the certificate and key
//! files for SIMPLE, the client CA too for MUTUAL, the proxy's mesh certificate for
//! ISTIO_MUTUAL. Errors name the field and the file.
//!
//! A `credentialName` names a directory under the proxy's `--credentials-dir`, where a
//! Kubernetes Secret is mounted (or, in local mode, the same files are put): `tls.crt` and
//! `tls.key` (or Istio's `cert` and `key`), and for MUTUAL `ca.crt` (or `cacert`), else
//! in the directory of Istio's companion Secret `<credentialName>-cacert`.

use std::path::Path;
use std::sync::Arc;

use mesh_core::config::{ServerTlsMode, ServerTlsSettings, TlsProtocol};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::identity::CertificateManager;
use crate::tls::pem_files;

/// What terminated connections may speak: HTTP/2 or HTTP/1.1, as the client prefers.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(transparent)]
    File(#[from] pem_files::PemFileError),
    #[error("tls.{0} is required for this mode")]
    Missing(&'static str),
    #[error("tls.mode ISTIO_MUTUAL needs the mesh certificate: start the proxy with --ca-addr")]
    NoMeshCertificate,
    #[error("tls.mode {0:?} does not terminate TLS")]
    NotTerminating(ServerTlsMode),
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    #[error(
        "tls.credentialName {name:?}: no {wanted} in {dir}: mount the Secret there (--credentials-dir)"
    )]
    Credential {
        name: String,
        wanted: &'static str,
        dir: String,
    },
}

/// The settings with a `credentialName` turned into the files under `dir` it names;
/// settings with files of their own are kept as they are.
pub fn resolve_credential(
    tls: &ServerTlsSettings,
    dir: &Path,
) -> Result<ServerTlsSettings, CertError> {
    let Some(name) = tls.credential_name.as_deref().filter(|n| !n.is_empty()) else {
        return Ok(tls.clone());
    };
    if tls.server_certificate.is_some() {
        return Ok(tls.clone());
    }
    let secret = dir.join(name);
    let find = |dirs: &[&Path], files: &[&str], wanted: &'static str| {
        dirs.iter()
            .flat_map(|d| files.iter().map(move |f| d.join(f)))
            .find(|p| p.is_file())
            .map(|p| p.to_string_lossy().into_owned())
            .ok_or_else(|| CertError::Credential {
                name: name.to_owned(),
                wanted,
                dir: secret.display().to_string(),
            })
    };
    let mut resolved = tls.clone();
    resolved.server_certificate = Some(find(&[&secret], &["tls.crt", "cert"], "tls.crt")?);
    resolved.private_key = Some(find(&[&secret], &["tls.key", "key"], "tls.key")?);
    if matches!(
        tls.mode,
        ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
    ) && tls.ca_certificates.is_none()
    {
        let companion = dir.join(format!("{name}-cacert"));
        resolved.ca_certificates = Some(find(
            &[&secret, &companion],
            &["ca.crt", "cacert"],
            "ca.crt",
        )?);
    }
    Ok(resolved)
}

/// The config that terminates connections for one server.
pub fn server_config(
    tls: &ServerTlsSettings,
    credentials: &Path,
    mesh: Option<&Arc<CertificateManager>>,
) -> Result<Arc<ServerConfig>, CertError> {
    let tls = &resolve_credential(tls, credentials)?;
    let provider = crate::tls::provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(tls))?;
    let mut config = match tls.mode {
        ServerTlsMode::IstioMutual => {
            let mesh = mesh.ok_or(CertError::NoMeshCertificate)?;
            return Ok(crate::tls::server_config(mesh, crate::tls::Mode::Strict));
        }
        ServerTlsMode::Simple => builder
            .with_no_client_auth()
            .with_single_cert(chain(tls)?, key(tls)?)?,
        ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual => {
            let roots = Arc::new(ca(tls)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if tls.mode == ServerTlsMode::OptionalMutual {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| {
                let path = tls.ca_certificates.as_deref().unwrap_or_default();
                pem_files::PemFileError::invalid("caCertificates", path, e)
            })?;
            let verifier: Arc<dyn rustls::server::danger::ClientCertVerifier> =
                if tls.subject_alt_names.is_empty() {
                    verifier
                } else {
                    Arc::new(super::client_names::SubjectAltNames {
                        inner: verifier,
                        names: tls.subject_alt_names.clone(),
                    })
                };
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain(tls)?, key(tls)?)?
        }
        mode => return Err(CertError::NotTerminating(mode)),
    };
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn versions(tls: &ServerTlsSettings) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static BOTH: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static V13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    static V12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    let at_least_13 = tls.min_protocol_version == Some(TlsProtocol::V1_3);
    let at_most_12 = matches!(
        tls.max_protocol_version,
        Some(TlsProtocol::V1_0 | TlsProtocol::V1_1 | TlsProtocol::V1_2)
    );
    match (at_least_13, at_most_12) {
        (true, _) => &V13,
        (false, true) => &V12,
        (false, false) => &BOTH,
    }
}

fn path<'a>(field: &'static str, value: &'a Option<String>) -> Result<&'a str, CertError> {
    value
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or(CertError::Missing(field))
}

fn chain(tls: &ServerTlsSettings) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let field = "serverCertificate";
    Ok(pem_files::certificates(
        field,
        path(field, &tls.server_certificate)?,
    )?)
}

fn key(tls: &ServerTlsSettings) -> Result<PrivateKeyDer<'static>, CertError> {
    let field = "privateKey";
    Ok(pem_files::private_key(
        field,
        path(field, &tls.private_key)?,
    )?)
}

fn ca(tls: &ServerTlsSettings) -> Result<RootCertStore, CertError> {
    let field = "caCertificates";
    Ok(pem_files::roots(field, path(field, &tls.ca_certificates)?)?)
}

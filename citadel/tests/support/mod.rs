//! The real `citadel` binary as a child process on 127.0.0.1:0, a gRPC client that verifies
//! it over TLS with a bundle, CSRs made with rcgen, and the checks shared by the tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod client;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rcgen::string::Ia5String;
use rcgen::{CertificateParams, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, UnixTime};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

pub const REVIEWS: &str = "spiffe://cluster.local/ns/shop/sa/reviews";
pub const REVIEWS_TOKEN: &str = "tok-reviews-7f3a9c";
pub const RATINGS_TOKEN: &str = "tok-ratings-1b2d4e";
pub const TOKENS: &str = "tok-reviews-7f3a9c shop reviews\ntok-ratings-1b2d4e shop ratings\n";

/// A running citadel; killed on drop. Everything it printed is kept for the key checks.
pub struct Citadel {
    child: Child,
    pub grpc: SocketAddr,
    pub monitoring: SocketAddr,
    output: Arc<Mutex<String>>,
}

impl Citadel {
    /// Local mode on `dir/ca` with the test tokens in `dir/tokens`.
    pub fn local(dir: &Path, extra: &[&str]) -> Self {
        std::fs::write(dir.join("tokens"), TOKENS).unwrap();
        let ca = dir.join("ca");
        let mut args = vec![
            "--ca-dir".to_owned(),
            ca.display().to_string(),
            "--token-file".to_owned(),
            dir.join("tokens").display().to_string(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        Self::start(&args)
    }

    pub fn start(args: &[String]) -> Self {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[String], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_citadel"))
            .args(args)
            .envs(env.iter().copied())
            .args(["--addr", "127.0.0.1:0", "--monitoring-addr", "127.0.0.1:0"])
            // trace: the key checks then cover everything citadel can log.
            .args(["--log", "trace", "--ca-reload-interval", "100ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("citadel starts");
        let output = Arc::new(Mutex::new(String::new()));
        let (lines, ready) = mpsc::channel();
        collect(
            child.stdout.take().expect("stdout"),
            output.clone(),
            Some(lines),
        );
        collect(child.stderr.take().expect("stderr"), output.clone(), None);
        match wait_ready(&ready) {
            Some((grpc, monitoring)) => Self {
                child,
                grpc,
                monitoring,
                output,
            },
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("citadel never became ready:\n{}", output.lock().unwrap());
            }
        }
    }

    /// Everything citadel wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Stops it and returns everything it wrote.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader threads finish when the pipes close.
        std::thread::sleep(Duration::from_millis(50));
        self.output()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.monitoring, path)
    }
}

impl Drop for Citadel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(
    pipe: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    lines: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            output.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(lines) = &lines {
                let _ = lines.send(line);
            }
        }
    });
}

/// The ports from the `citadel ready` line, if it comes within 30s.
fn wait_ready(lines: &mpsc::Receiver<String>) -> Option<(SocketAddr, SocketAddr)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).ok()?;
        if let Some(ports) = parse_ready(&line) {
            return Some(ports);
        }
    }
}

fn parse_ready(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.strip_prefix("citadel ready grpc=")?;
    let (grpc, monitoring) = rest.split_once(" monitoring=")?;
    Some((grpc.parse().ok()?, monitoring.trim().parse().ok()?))
}

/// `GET path` over HTTP/1.1; the status code and the body.
pub fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).expect("monitoring port");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: citadel\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A CSR for `sans` with a new key.
pub fn csr_for(sans: &[&str]) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = sans
        .iter()
        .map(|s| SanType::URI(Ia5String::try_from(*s).unwrap()))
        .collect();
    params.serialize_request(&key).unwrap().pem().unwrap()
}

/// The DER of every certificate in PEM texts.
pub fn ders(pems: &[String]) -> Vec<Vec<u8>> {
    pems.iter()
        .flat_map(|p| Pem::iter_from_buffer(p.as_bytes()).map(|b| b.unwrap().contents))
        .collect()
}

pub fn read_bundle(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("ca/trust-bundle.pem")).unwrap()
}

/// Verifies a chain (PEM, leaf first) against roots (DER) as a TLS peer would (webpki,
/// EKU clientAuth).
pub fn verify(chain: &[String], roots: &[Vec<u8>]) -> Result<(), rustls::Error> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(CertificateDer::from(root.clone()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .unwrap();
    let certs: Vec<CertificateDer<'static>> = ders(chain).into_iter().map(Into::into).collect();
    verifier
        .verify_client_cert(&certs[0], &certs[1..], UnixTime::now())
        .map(|_| ())
}

/// The leaf's SANs (as x509-parser prints them) and its lifetime in seconds.
pub fn leaf_sans_and_lifetime(chain: &[String]) -> (Vec<String>, i64) {
    let der = &ders(chain)[0];
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let san = cert.subject_alternative_name().unwrap().expect("SAN");
    let names = san
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    let validity = cert.validity();
    let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
    (names, lifetime)
}

/// What would give a PEM private key away, and only that (the key's PEM also holds its
/// public key, which every certificate for it rightly shows): the base64 lines that carry
/// the private scalar, the whole body, and the scalar itself in base64 at every alignment,
/// in hex and as a `{:?}` byte list. A secret that is not a PEM key (a token) is its own fragment.
pub fn secret_fragments(secret: &str) -> Vec<String> {
    if !secret.contains("PRIVATE KEY") {
        return vec![secret.to_owned()];
    }
    let lines: Vec<&str> = secret.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64_decode(&lines.concat());
    let (start, scalar) = private_scalar(&der).expect("a PKCS#8 EC key from ring or rcgen");
    let end = start + scalar.len();
    let mut fragments: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(i, line)| i * 48 < end && start < i * 48 + line.len() * 3 / 4)
        .map(|(_, line)| (*line).to_owned())
        .collect();
    fragments.push(lines.concat());
    for skip in 0..3 {
        let whole = (scalar.len() - skip) / 3 * 3;
        fragments.push(base64_encode(&scalar[skip..skip + whole]));
    }
    let decimal: Vec<String> = scalar.iter().map(u8::to_string).collect();
    fragments.push(decimal.join(", "));
    let hex: String = scalar.iter().map(|b| format!("{b:02x}")).collect();
    fragments.push(hex.to_uppercase());
    fragments.push(hex);
    fragments
}

/// Where the private scalar sits in an EC PKCS#8 key: after `version 1, OCTET STRING (32)`.
fn private_scalar(der: &[u8]) -> Option<(usize, Vec<u8>)> {
    let marker = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = der.windows(marker.len()).position(|w| w == marker)? + marker.len();
    Some((at, der.get(at..at + 32)?.to_vec()))
}

/// Fails if any fragment of any secret appears in `haystack`.
pub fn assert_no_secret(secrets: &[String], haystack: &str, what: &str) {
    for secret in secrets {
        for fragment in secret_fragments(secret) {
            assert!(
                !haystack.contains(&fragment),
                "{what} contains a secret: {fragment:?}"
            );
        }
    }
}

pub fn file(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref()).unwrap_or_default()
}

pub fn key_paths(dir: &Path) -> Vec<PathBuf> {
    ["root-key.pem", "next-root-key.pem"]
        .iter()
        .map(|n| dir.join("ca").join(n))
        .collect()
}

/// Waits (up to 10s) for `check` to hold.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Standard base64 (with or without padding) to bytes.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let values: Vec<u32> = text
        .bytes()
        .filter_map(|b| ALPHABET.iter().position(|a| *a == b))
        .map(|v| v as u32)
        .collect();
    let mut out = Vec::new();
    for chunk in values.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, v)| n | (v << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// Standard base64 without padding (the fragments are whole 3-byte groups).
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=group.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

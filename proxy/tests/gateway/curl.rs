//! curl as the real client: `--resolve` sends the SNI and Host of a name while connecting
//! to loopback, `--cacert` verifies the served certificate for that name, and
//! `-w %{certs}` prints the certificate the server presented.

use std::net::SocketAddr;
use std::process::Command;

pub struct Reply {
    pub status: u16,
    pub body: String,
    /// The served chain as curl prints it (subject, SANs, ...); empty for plain HTTP.
    pub certs: String,
    /// curl's exit code: 0 when the transfer (and the TLS handshake) succeeded.
    pub exit: i32,
    pub stderr: String,
}

/// `curl https://NAME:PORT/PATH` resolved to `addr`, trusting `ca` (a PEM file).
pub fn https(name: &str, addr: SocketAddr, path: &str, ca: &str, extra: &[&str]) -> Reply {
    let port = addr.port();
    let resolve = format!("{name}:{port}:{}", addr.ip());
    let url = format!("https://{name}:{port}{path}");
    run(&["--resolve", &resolve, "--cacert", ca, &url], extra)
}

/// `curl http://NAME:PORT/PATH` resolved to `addr`.
pub fn http(name: &str, addr: SocketAddr, path: &str) -> Reply {
    let port = addr.port();
    let resolve = format!("{name}:{port}:{}", addr.ip());
    let url = format!("http://{name}:{port}{path}");
    run(&["--resolve", &resolve, &url], &[])
}

fn run(args: &[&str], extra: &[&str]) -> Reply {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let body_file = std::env::temp_dir().join(format!(
        "mesh-gateway-curl-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(["--write-out", "%{http_code}\n%{certs}"])
        .arg("--output")
        .arg(&body_file)
        .args(extra)
        .args(args)
        .output()
        .expect("curl runs (the gateway tests need curl on PATH)");
    let body = std::fs::read_to_string(&body_file).unwrap_or_default();
    let _ = std::fs::remove_file(&body_file);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (status, certs) = stdout.split_once('\n').unwrap_or((stdout.as_str(), ""));
    Reply {
        status: status.trim().parse().unwrap_or(0),
        body,
        certs: certs.to_owned(),
        exit: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

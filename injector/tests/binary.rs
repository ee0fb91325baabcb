//! The real `injector` binary: flags, config file, certificate files, the announced port.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::json;
use support::{Webhook, patched, pod_create};

/// Kills the child when the test ends, also on failure.
struct Running(Child);

/// The injector binary, standalone on a free port with `args` added; its address from the
/// ready line.
fn start(args: &[&std::ffi::OsStr]) -> (Running, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_injector"))
        .args(["--addr", "127.0.0.1:0", "--standalone", "--log", "warn"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the ready line");
    let addr = line
        .trim()
        .strip_prefix("injector ready addr=")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("an address");
    (running, addr)
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_with_its_config_and_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    let config = dir.path().join("config.yaml");
    std::fs::write(&cert, made.cert.pem()).expect("write");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write");
    std::fs::write(
        &config,
        "proxyImage: registry.example/mesh-proxy:test\nnativeSidecar: false\n",
    )
    .expect("write");

    let (running, addr) = start(&[
        "--config".as_ref(),
        config.as_os_str(),
        "--cert".as_ref(),
        cert.as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
    ]);

    let webhook = Webhook {
        addr,
        ca_pem: made.cert.pem(),
    };
    let review = pod_create();
    let response = webhook.review(&review).await;
    let pod = patched(&review, &response);
    let spec = pod.spec.expect("spec");
    // The config file's settings: the image, and the proxy as a regular first container.
    let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["mesh-proxy", "web"]);
    assert_eq!(
        json!(spec.containers[0].image),
        json!("registry.example/mesh-proxy:test")
    );
    drop(running);
}

#[tokio::test]
async fn rotated_certificate_files_are_served_without_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let write = |made: &rcgen::CertifiedKey<rcgen::KeyPair>| {
        // Key first: a reload between the two writes sees a mismatched pair and keeps the
        // old one, as with a Secret's files swapped one by one.
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write");
        std::fs::write(&cert, made.cert.pem()).expect("write");
    };
    let first = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    write(&first);
    let (_running, addr) = start(&[
        "--ca-bundle-every".as_ref(),
        "1".as_ref(),
        "--cert".as_ref(),
        cert.as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
    ]);
    let old = Webhook {
        addr,
        ca_pem: first.cert.pem(),
    };
    assert!(old.handshake_ok().await);

    let second = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    write(&second);
    let new = Webhook {
        addr,
        ca_pem: second.cert.pem(),
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while !new.handshake_ok().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!old.handshake_ok().await);
}

#[test]
fn a_bad_config_file_stops_it_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "proxyImage: x\nfailurePolicy: Maybe\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_injector"))
        .args(["--addr", "127.0.0.1:0", "--standalone"])
        .arg("--config")
        .arg(&config)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("config.yaml"), "{stderr}");
    assert!(stderr.contains("failurePolicy"), "{stderr}");
}

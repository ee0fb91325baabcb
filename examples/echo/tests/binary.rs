//! The `mesh-echo` binary: prints where it listens, serves, and exits cleanly on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;

use http::StatusCode;
use support::{DEADLINE, get, h1_client};

/// The running binary; killed if a test fails before stopping it.
struct Echo {
    child: Option<Child>,
    addr: SocketAddr,
    first_line: String,
}

impl Echo {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-echo"))
            .args(args)
            // A developer's proxy settings must not divert the calls under test.
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mesh-echo");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let first_line = rx
            .recv_timeout(DEADLINE)
            .expect("a line before the deadline");
        let addr = first_line
            .trim_end()
            .rsplit(' ')
            .next()
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("an address at the end of {first_line:?}"));
        Self {
            child: Some(child),
            addr,
            first_line,
        }
    }

    /// Sends SIGTERM and waits for the exit.
    fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("still running");
        let pid = child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        rx.recv_timeout(DEADLINE)
            .expect("exited before the deadline")
            .expect("wait")
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn prints_its_address_serves_and_stops_on_sigterm() {
    let echo = Echo::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--name",
            "reviews",
            "--version-label",
            "v3",
        ],
        &[],
    );
    assert_eq!(
        echo.first_line,
        format!("mesh-echo reviews v3 listening on {}\n", echo.addr)
    );
    assert_ne!(echo.addr.port(), 0);

    let url = format!("http://{}/hello", echo.addr);
    let answer = get(&h1_client(), &url, &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    let reply = answer.reply();
    assert_eq!(
        (reply.service.as_str(), reply.version.as_str()),
        ("reviews", "v3")
    );
    assert_eq!(reply.path, "/hello");

    assert!(echo.terminate().success(), "a clean exit on SIGTERM");
}

#[tokio::test]
async fn reads_its_settings_from_the_environment() {
    let echo = Echo::spawn(
        &[],
        &[
            ("ECHO_LISTEN", "127.0.0.1:0"),
            ("ECHO_VERSION", "v7"),
            ("ECHO_STATUS", "503"),
        ],
    );
    let answer = get(&h1_client(), &format!("http://{}/", echo.addr), &[]).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("x-echo-version"), "v7");
}

#[tokio::test]
async fn serves_tcp_with_a_banner() {
    let echo = Echo::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--protocol",
            "tcp",
            "--banner",
            "hello",
        ],
        &[],
    );
    let mut stream = support::connect(echo.addr).await;
    assert_eq!(support::read_exact(&mut stream, 7).await, b"hello\r\n");
}

#[tokio::test]
async fn calls_the_urls_of_the_environment_in_order() {
    let upstream = support::server().await;
    let urls = format!("{},{}", upstream.url("/a"), upstream.url("/b"));
    let echo = Echo::spawn(&[], &[("ECHO_LISTEN", "127.0.0.1:0"), ("ECHO_CALL", &urls)]);
    let reply = get(&h1_client(), &format!("http://{}/", echo.addr), &[])
        .await
        .reply();
    let paths: Vec<_> = reply.calls.iter().map(|call| &call.body["path"]).collect();
    assert_eq!(paths, ["/a", "/b"]);
    assert_eq!(upstream.stats().requests(), 2);
}

//! A local mesh for end-to-end tests: meshctl's launcher with the e2e binaries, the
//! example copied aside, and loopback addresses no other test holds.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use meshctl::local::{Binaries, Options};

pub fn binaries() -> Binaries {
    Binaries {
        pilot: env!("CARGO_BIN_EXE_e2e-pilot").into(),
        citadel: env!("CARGO_BIN_EXE_e2e-citadel").into(),
        proxy: env!("CARGO_BIN_EXE_e2e-proxy").into(),
        echo: env!("CARGO_BIN_EXE_e2e-echo").into(),
    }
}

/// The example, copied so the test can edit its config directory.
pub fn copy_example(to: &Path) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bookinfo");
    std::fs::copy(example.join("topology.yaml"), to.join("topology.yaml")).unwrap();
    std::fs::create_dir(to.join("config")).unwrap();
    for entry in std::fs::read_dir(example.join("config")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join("config").join(path.file_name().unwrap())).unwrap();
    }
}

/// Addresses no other test (or another run of this one) holds: a /24 of loopback for the
/// workloads and a range of app ports, both checked free; the control plane on port 0.
pub fn free_options(workloads: u8) -> Options {
    // Tests of this file run side by side: each call starts from its own salt.
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let salt = std::process::id().wrapping_add(call.wrapping_mul(104_729));
    for attempt in 0..100u32 {
        let n = salt.wrapping_add(attempt.wrapping_mul(7919));
        let base_ip = Ipv4Addr::new(127, (n % 200 + 20) as u8, (n / 200 % 250) as u8, 2);
        let app_port_base = 21000 + (n % 80) as u16 * 100;
        let mut wanted: Vec<SocketAddr> = Vec::new();
        for i in 0..workloads {
            let [a, b, c, d] = base_ip.octets();
            let ip = Ipv4Addr::new(a, b, c, d + i);
            for port in [15000, 15001, 15020, 15021, 9080] {
                wanted.push((ip, port).into());
            }
            wanted.push((Ipv4Addr::LOCALHOST, app_port_base + u16::from(i)).into());
        }
        if wanted
            .iter()
            .all(|addr| std::net::TcpListener::bind(addr).is_ok())
        {
            let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            return Options {
                base_ip,
                app_port_base,
                pilot_grpc: any,
                pilot_monitoring: any,
                citadel_grpc: any,
                citadel_monitoring: any,
                timeout: Duration::from_secs(90),
            };
        }
    }
    panic!("no free loopback addresses found");
}

/// What a run of the meshctl binary printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `e2e-meshctl <args> --state-dir <state>`.
pub fn meshctl(state: &Path, args: &[&str]) -> Run {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_e2e-meshctl"))
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

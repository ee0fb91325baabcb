//! `cargo xtask bench mtls`: what mutual TLS costs between two sidecars. In one run, on
//! kept-alive connections: the echo app direct, then through a caller and a callee sidecar
//! with plaintext between them, then the same with mTLS (latency at a fixed rate and max
//! rps for each); and, with a new connection per request, what an mTLS handshake costs
//! each sidecar's core.
//!
//! Not run in CI: it takes minutes and its numbers mean something only on a quiet machine.
//! It reuses `bench proxy`'s pieces: the release builds, the pinned load generator and
//! h2load, the CPU accounting and the wait for a quiet machine.

mod drive;
mod mesh;
mod policy;
mod report;

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::Timing;
use super::load::Proto;
use super::report::Load;
use super::setup::{self, Tools};
use super::targets;
use drive::Bench;
use mesh::{Citadel, Programs, Variant};
use report::{MtlsReport, Spec};

#[derive(Args, Clone)]
pub struct MtlsArgs {
    /// A few seconds per phase: checks that everything works; the numbers are rough.
    #[arg(long)]
    quick: bool,
    /// Replace the mTLS section of docs/benchmarks.md with this run's results.
    #[arg(long)]
    write_doc: bool,
    /// Protocols between the load generator and the caller (and so between the sidecars).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Proto::H1, Proto::H2])]
    protocols: Vec<Proto>,
    /// The fixed rate for latency, requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Connections from the load generator, one request in flight on each.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Response body size from the app, bytes.
    #[arg(long, default_value_t = 1024)]
    body_size: u64,
    /// The CPU for the load generator, this orchestrator, pilot and citadel.
    #[arg(long, default_value_t = 0)]
    load_cpu: u32,
    /// The CPU for the app and both sidecars.
    #[arg(long, default_value_t = 1)]
    server_cpu: u32,
    /// Keep the temp dir with the configs and the processes' logs.
    #[arg(long)]
    keep_temp: bool,
}

impl MtlsArgs {
    fn timing(&self) -> Timing {
        let proxy = super::ProxyArgs {
            quick: self.quick,
            write_doc: false,
            targets: Vec::new(),
            protocols: Vec::new(),
            rates: Vec::new(),
            connections: self.connections,
            body_size: self.body_size,
            load_cpu: self.load_cpu,
            server_cpu: self.server_cpu,
            keep_temp: false,
        };
        proxy.timing()
    }
}

pub fn run(args: MtlsArgs, root: &Path) -> anyhow::Result<()> {
    let cpus = setup::online_cpus()?;
    if args.load_cpu == args.server_cpu || args.load_cpu.max(args.server_cpu) >= cpus {
        bail!("--load-cpu and --server-cpu must be two different CPUs below {cpus}");
    }
    setup::pin_self(args.load_cpu)?;
    let tools = Tools::find_or_install(&[])?;
    let bins = setup::build(root)?;
    setup::cargo(
        root,
        &[
            "build",
            "--release",
            "-p",
            "mesh-pilot",
            "-p",
            "mesh-citadel",
        ],
    )?;
    let release = setup::release_dir(root);
    let (pilot, citadel) = (release.join("pilot"), release.join("citadel"));
    let dir = setup::TempDir::new()?;
    eprintln!("bench: configs and logs in {}", dir.path.display());
    let programs = Programs {
        citadel: &citadel,
        pilot: &pilot,
        mesh_proxy: &bins.mesh_proxy,
        control_cpu: args.load_cpu,
        server_cpu: args.server_cpu,
    };
    let result = measure(&args, &tools, &bins, programs, &dir.path);
    if args.keep_temp {
        dir.keep();
    }
    let report = MtlsReport {
        info: run_info(&args, &tools, root),
        ..result?
    };
    let text = report.render();
    println!("{text}");
    if args.write_doc {
        let path = root.join("docs/benchmarks.md");
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, report::replace_doc_section(&existing, &text))?;
        eprintln!("bench: wrote {}", path.display());
    }
    let failed: Vec<String> = report
        .phases
        .iter()
        .filter(|p| p.error.is_some())
        .map(|p| p.label())
        .collect();
    if !failed.is_empty() {
        bail!("{} phases failed: {}", failed.len(), failed.join("; "));
    }
    Ok(())
}

/// Every phase in turn, each on a freshly started pilot and pair of sidecars; the variants
/// interleave within each load so that drift on the machine hits them alike.
fn measure(
    args: &MtlsArgs,
    tools: &Tools,
    bins: &setup::Binaries,
    programs: Programs<'_>,
    dir: &Path,
) -> anyhow::Result<MtlsReport> {
    let app = targets::start_upstream(&bins.echo, dir, args.server_cpu, args.body_size)?;
    let citadel = Citadel::start(&programs, dir)?;
    let bench = Bench {
        args,
        tools,
        bins,
        programs,
        citadel: &citadel,
        app: &app,
        dir,
    };
    let mut specs = Vec::new();
    for &proto in &args.protocols {
        for load in [Load::Rate(args.rate), Load::Max] {
            for variant in Variant::ALL {
                specs.push(Spec {
                    variant,
                    proto,
                    load,
                    fresh: false,
                });
            }
        }
    }
    for variant in [Variant::Plaintext, Variant::Mtls] {
        specs.push(Spec {
            variant,
            proto: Proto::H1,
            load: Load::Max,
            fresh: true,
        });
    }
    if !args.quick {
        super::phase::wait_for_quiet(Duration::from_secs(60));
    }
    let phases = specs
        .into_iter()
        .map(|spec| drive::run_quiet(&bench, spec))
        .collect();
    Ok(MtlsReport {
        rate: args.rate,
        phases,
        ..MtlsReport::default()
    })
}

/// The command, the machine, the versions (the revision of everything the mesh's binaries
/// are built from) and how the run was set up.
fn run_info(args: &MtlsArgs, tools: &Tools, root: &Path) -> super::report::RunInfo {
    let mut info = setup::run_info(&method(args), tools, root);
    if let Some(mesh) = info.versions.first_mut() {
        let build = [
            "proxy",
            "pilot",
            "citadel",
            "core",
            "proto",
            "examples/echo",
            "Cargo.toml",
            "Cargo.lock",
        ];
        mesh.1 = setup::revision(root, &build, "the mesh's build");
    }
    info
}

fn method(args: &MtlsArgs) -> Vec<String> {
    let timing = args.timing();
    vec![
        format!(
            "The mesh of e2e/tests/mesh_mtls.rs, from release builds: citadel (one CA for the \
             run), and for each phase a new pilot on a config directory and two sidecars \
             (`mesh-proxy --pilot .. --ca-addr .. --trust-bundle .. --ca-token-file ..`): the \
             caller `productpage`, whose outbound listener the load is sent to with \
             `Host: {host}`, and the callee `reviews`, whose inbound listener on 127.0.0.2 \
             (Sidecar ingress, defaultEndpoint) forwards to one mesh-echo answering {body} byte \
             bodies. **mTLS**: the endpoint is labelled `security.istio.io/tlsMode: istio` \
             (auto mTLS) and the namespace's PeerAuthentication is STRICT. **Plaintext**: the \
             same, with a DestinationRule `tls.mode: DISABLE` and PeerAuthentication DISABLE. \
             **Direct**: the load goes to mesh-echo itself.",
            host = mesh::SERVICE_HOST,
            body = args.body_size
        ),
        format!(
            "Pinning: the load generator, this orchestrator, pilot and citadel on CPU {load}; \
             mesh-echo and both sidecars on CPU {server} (each tokio runtime sizes itself from \
             the affinity mask: one worker).",
            load = args.load_cpu,
            server = args.server_cpu
        ),
        "Checked, not assumed: after every phase the bench reads both sidecars' \
         `mesh_requests_total` by `connection_security_policy` and fails the phase unless every \
         request was `mutual_tls` (mTLS) or none was (plaintext); with a new connection per \
         request, it also fails the phase unless the machine opened at least as many TCP \
         connections meanwhile (/proc/net/snmp `ActiveOpens`)."
            .to_owned(),
        format!(
            "Latency at {rate} rps: `cargo xtask bench load --host {host}`, the open-loop \
             generator of `bench proxy` (no coordinated omission), {c} kept-alive connections, \
             one request in flight on each, {w} s warm-up, {m} s measured. HTTP/2 is h2c from \
             the generator; the caller keeps the client's protocol, so between the sidecars it \
             is HTTP/1.1 over {c} pooled connections or one multiplexed HTTP/2 connection.",
            rate = args.rate,
            host = mesh::SERVICE_HOST,
            c = args.connections,
            w = timing.fixed.0,
            m = timing.fixed.1
        ),
        format!(
            "Max rps: `h2load -H ':authority: {host}' -t 1 -c {c} -m 1 -D {m}s --warm-up-time {w}s` \
             (`--h1` for HTTP/1.1), closed loop.",
            host = mesh::SERVICE_HOST,
            c = args.connections,
            w = timing.max.0,
            m = timing.max.1
        ),
        "Handshakes: the same max-rps run over HTTP/1.1 with a DestinationRule \
         `connectionPool.http.maxRequestsPerConnection: 1`, so the caller opens (and the callee \
         accepts) a new connection for every request, once plaintext and once with mTLS (TLS \
         1.3, ECDSA P-256 certificates from citadel, no session resumption: every handshake is \
         a full one with both certificates verified). A side's CPU per connection with mTLS \
         less that with plaintext is its handshake's cost; one core's second over that is its \
         handshakes per second per core."
            .to_owned(),
        "CPU: utime + stime from /proc/<pid>/stat before and after each phase (warm-up \
         included); other work on the machine is its busy time less ours, and a phase with more \
         than 0.1 vCPU of it is run again once the machine is quiet."
            .to_owned(),
    ]
}

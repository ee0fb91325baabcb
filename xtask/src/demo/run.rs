//! `cargo xtask demo`: builds the binaries, starts examples/bookinfo as a local mesh (a
//! copy, so the walkthrough's edits never touch the repository), walks through the
//! features, and leaves the mesh running for the user (or stops it with `--once`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::Args;
use meshctl::local::{self, Binaries, Options};

use super::{StepReport, Target, walkthrough};

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Stop the mesh after the walkthrough and exit non-zero if a check failed.
    #[arg(long)]
    pub once: bool,
    /// Where the mesh keeps its state and logs; default meshctl's, so `meshctl local
    /// status` and `down` find it.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The topology to copy and start; the walkthrough expects Bookinfo's services.
    #[arg(long, hide = true, default_value = "examples/bookinfo")]
    pub example: PathBuf,
}

/// The packages whose binaries the local mesh runs, and meshctl to look at it.
const PACKAGES: [&str; 5] = [
    "mesh-pilot",
    "mesh-citadel",
    "mesh-proxy",
    "mesh-echo",
    "meshctl",
];

pub fn run(args: &DemoArgs, root: &Path) -> anyhow::Result<()> {
    build(root)?;
    // cargo builds them beside this program, wherever CARGO_TARGET_DIR puts it.
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| root.join("target/debug"));
    let binaries = Binaries::find(Some(&bin_dir))?;
    let state_dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => local::state::default_state_dir()
            .context("no state directory: give --state-dir, or set HOME")?,
    };
    let topology = copy_example(&root.join(&args.example), &state_dir)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        println!("starting the mesh from {} ...", topology.display());
        let mut progress = |line: &str| println!("  {line}");
        let mesh = local::up(
            &topology,
            &binaries,
            &state_dir,
            &Options::default(),
            &mut progress,
        )
        .await?;
        print_topology(mesh.state());
        let target = Target::from_state(mesh.state())?;
        let reports = walkthrough(target).await;
        let failed = summary(reports.as_deref().unwrap_or_default());
        if args.once {
            mesh.down();
            println!("\nthe mesh is stopped.");
        } else {
            mesh.detach();
            next_steps(&state_dir);
        }
        let reports = reports?;
        if args.once && failed > 0 {
            bail!("{failed} check(s) failed");
        }
        anyhow::Ok(reports.len())
    })?;
    Ok(())
}

fn build(root: &Path) -> anyhow::Result<()> {
    println!("building {} ...", PACKAGES.join(", "));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root).arg("build").arg("--quiet");
    for package in PACKAGES {
        command.args(["-p", package]);
    }
    let status = command.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    Ok(())
}

/// The example copied to `<state>/bookinfo`, fresh: the walkthrough edits its config.
fn copy_example(example: &Path, state_dir: &Path) -> anyhow::Result<PathBuf> {
    let copy = state_dir.join("bookinfo");
    if copy.exists() {
        std::fs::remove_dir_all(&copy).with_context(|| format!("clearing {}", copy.display()))?;
    }
    copy_dir(example, &copy)?;
    Ok(copy)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying to {}", target.display()))?;
        }
    }
    Ok(())
}

fn print_topology(state: &local::State) {
    println!("\nthe mesh is up:");
    println!(
        "  {:<16} {:<12} {:<8} {:<22} {:<22} IDENTITY",
        "WORKLOAD", "SERVICE", "VERSION", "SIDECAR INBOUND", "SIDECAR ADMIN"
    );
    for w in &state.workloads {
        let inbound = w
            .sidecar
            .inbound
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        println!(
            "  {:<16} {:<12} {:<8} {:<22} {:<22} {}",
            w.name, w.service, w.version, inbound, w.sidecar.admin, w.identity
        );
    }
}

/// Prints the tally; the number of failed checks.
fn summary(reports: &[StepReport]) -> usize {
    let checks: usize = reports.iter().map(|r| r.checks.len()).sum();
    let failed: Vec<_> = reports
        .iter()
        .flat_map(|r| r.checks.iter().map(move |c| (r, c)))
        .filter(|(_, c)| !c.passed)
        .collect();
    println!(
        "\n{} steps, {} checks, {} passed, {} failed",
        reports.len(),
        checks,
        checks - failed.len(),
        failed.len()
    );
    for (report, check) in &failed {
        println!("  FAIL {}: {}", report.title, check.what);
    }
    failed.len()
}

fn next_steps(state_dir: &Path) {
    let state = state_dir.display();
    println!(
        "
the mesh is still running. Try:
  target/debug/meshctl local status --state-dir {state}
  curl -s -H 'end-user: jason' 127.0.0.2:9080/ | head -c 600       # productpage, through its sidecar
  target/debug/meshctl proxy-config routes productpage-v1 --state-dir {state}
  target/debug/meshctl proxy-config endpoints reviews-v2 --state-dir {state}
  target/debug/meshctl proxy-status --state-dir {state}
  target/debug/meshctl apply --state-dir {state} -f my-virtual-service.yaml
  ls {state}/logs                                                    # one log per process
and stop it with:
  target/debug/meshctl local down --state-dir {state}"
    );
}

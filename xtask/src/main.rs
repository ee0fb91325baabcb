//! `cargo xtask <task>`: see `cargo xtask --help`.

mod bench;

use anyhow::bail;
use clap::{Parser, Subcommand};
use xtask::codegen;

#[derive(Parser)]
#[command(about = "mesh's development tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Regenerate the CRDs in charts/mesh/crds and docs/config.md from mesh-core's types.
    Codegen {
        /// Change nothing; fail if a generated file is not up to date.
        #[arg(long)]
        check: bool,
    },
    /// Benchmarks; `cargo xtask bench proxy --quick` checks that the proxy bench works.
    Bench(bench::BenchArgs),
    /// Starts the whole mesh locally (examples/bookinfo) and walks through its features on
    /// live traffic; `--once` stops it afterwards.
    Demo(xtask::demo::DemoArgs),
}

fn main() -> anyhow::Result<()> {
    let root = xtask::workspace_root();
    match Cli::parse().task {
        Task::Codegen { check } => {
            let files = codegen::generate()?;
            if check {
                let stale = codegen::stale(&root, &files)?;
                for problem in &stale {
                    eprintln!("{problem}");
                }
                if !stale.is_empty() {
                    bail!("generated files are out of date; run `cargo xtask codegen`");
                }
            } else {
                for path in codegen::write(&root, &files)? {
                    println!("wrote {}", path.display());
                }
            }
        }
        Task::Bench(args) => bench::run(args, &root)?,
        Task::Demo(args) => xtask::demo::run(&args, &root)?,
    }
    Ok(())
}

//! pilot: the control plane (issue 4).
//!
//! Only the command line exists so far: the binary is part of the workspace so that
//! every crate builds and links from the first commit.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(version, about = "pilot: the control plane (issue 4).")]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("not implemented yet: {}", env!("CARGO_PKG_NAME"))
}

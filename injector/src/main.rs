//! injector: the sidecar-injecting admission webhook (issue 6).
//!
//! Only the command line exists so far: the binary is part of the workspace so that
//! every crate builds and links from the first commit.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "injector: the sidecar-injecting admission webhook (issue 6)."
)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("not implemented yet: {}", env!("CARGO_PKG_NAME"))
}

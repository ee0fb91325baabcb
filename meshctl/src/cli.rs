//! The command line: one subcommand per task.

use clap::{Parser, Subcommand};

use crate::cmd::analyze::AnalyzeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "meshctl",
    version,
    about = "Install, inspect and analyze mesh, the Rust service mesh that speaks Istio's config",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check config files as Istio's validation webhook and `istioctl analyze` do
    Analyze(AnalyzeArgs),
}

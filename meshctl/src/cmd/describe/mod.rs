//! `meshctl x describe pod <workload|pod>`: the Services selecting a pod, the DestinationRule
//! subsets it is in, the VirtualService routes to its services, and the mTLS mode per port
//! and the authorization and JWT policies applying to it, with why. pilot's monitoring port
//! and the proxy's admin port are found as `proxy-status` finds them ([`PilotTarget`]);
//! [`pod`] turns their documents into the description.

pub mod pod;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::net::SocketAddr;

use clap::{Args, Subcommand};

use super::CommandError;
use super::local::StateArgs;
use super::proxy_config::locate::{
    InspectError, NamespaceArgs, PilotPort, PilotTarget, use_kubernetes,
};
use super::proxy_config::{Output, fetch, write_document};
use crate::Status;

#[derive(Debug, Args)]
pub struct XArgs {
    #[command(subcommand)]
    pub command: XCommand,
}

#[derive(Debug, Subcommand)]
pub enum XCommand {
    /// Describe what applies to a resource
    Describe(DescribeArgs),
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    #[command(subcommand)]
    pub command: DescribeCommand,
}

#[derive(Debug, Subcommand)]
pub enum DescribeCommand {
    /// The Services, DestinationRules, VirtualServices and security policies of a pod
    Pod(DescribePodArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
Where pilot is, in order: --pilot ADDR (then name the proxy by its node id, \
`productpage-v1.default`); --kubernetes; the local mesh when one runs (name the workload); a \
cluster when a kubeconfig is there (name the pod, POD -n NAMESPACE or POD.NAMESPACE: port-forwards to pilot's \
15014 in mesh-system and to the pod's admin port 15000).")]
pub struct DescribePodArgs {
    /// The workload (`productpage-v1`), the pod in Kubernetes, or with --pilot a node id
    #[arg(value_name = "WORKLOAD|POD[.NAMESPACE]")]
    pub name: String,

    #[command(flatten)]
    pub namespace: NamespaceArgs,

    /// pilot's monitoring address instead of the local mesh's
    #[arg(long, value_name = "ADDR")]
    pub pilot: Option<SocketAddr>,

    /// Ask the cluster the kubeconfig names, even when a local mesh runs
    #[arg(long, conflicts_with = "pilot")]
    pub kubernetes: bool,

    /// Text, or the same description as JSON or YAML
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    #[command(flatten)]
    pub state: StateArgs,
}

pub fn run(args: &XArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let XCommand::Describe(DescribeArgs {
        command: DescribeCommand::Pod(args),
    }) = &args.command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Write)?;
    let name = args.namespace.qualify(&args.name);
    let target = match args.pilot {
        Some(addr) => PilotTarget::Address(addr),
        None if use_kubernetes(args.kubernetes, &args.state) => PilotTarget::Kubernetes {
            pod: Some(name.clone()),
        },
        None => PilotTarget::Local(args.state.clone()),
    };
    let description = runtime.block_on(async {
        let pilot = target.locate().await?;
        // In Kubernetes the pod named is the one proxy located, under its node id.
        let name = match (&target, pilot.workloads.first()) {
            (PilotTarget::Kubernetes { .. }, Some((id, ..))) => id.clone(),
            _ => name.clone(),
        };
        describe(&pilot, &name).await
    })?;
    match args.output {
        Output::Table => pod::write(&description, out)?,
        output => write_document(&serde_json::to_value(&description)?, output, out)?,
    }
    Ok(Status::Success)
}

async fn describe(pilot: &PilotPort, name: &str) -> Result<pod::Description, InspectError> {
    let workload = pilot
        .workloads
        .iter()
        .find(|(id, workload, _)| id == name || workload == name);
    let id = match workload {
        Some((id, ..)) => id.clone(),
        None if pilot.workloads.is_empty() => name.to_owned(),
        None => return Err(unknown(pilot, name)),
    };
    let desired = pilot
        .json(&format!("/debug/config_dump?proxy={id}"))
        .await
        .map_err(|error| match error {
            InspectError::Pilot { error, .. } if error.is_not_found() => {
                InspectError::UnknownProxy {
                    name: id.clone(),
                    known: "see `meshctl proxy-status`".to_owned(),
                }
            }
            error => error,
        })?;
    let applied = match workload {
        Some((_, _, admin)) => fetch::json(*admin, "/config_dump").await.ok(),
        None => None,
    };
    Ok(pod::describe(&desired, applied.as_ref()))
}

fn unknown(pilot: &PilotPort, name: &str) -> InspectError {
    let known: Vec<&str> = pilot.workloads.iter().map(|w| w.1.as_str()).collect();
    InspectError::UnknownWorkload {
        name: name.to_owned(),
        known: known.join(", "),
    }
}

//! `meshctl proxy-config routes|clusters|listeners|endpoints|secret|all <workload>`: a
//! proxy's live config, read from its admin port ([`locate`] finds the port, [`tables`]
//! turns the documents into istioctl's columns), as tables or as JSON/YAML.

pub mod fetch;
pub mod kubernetes;
pub mod locate;
pub(crate) mod table;
pub mod tables;
#[cfg(test)]
mod tests;
pub mod view;

use std::io::Write;
use std::net::SocketAddr;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::CommandError;
use super::local::StateArgs;
use crate::Status;
use locate::{AdminPort, AdminTarget, InspectError, NamespaceArgs};

pub use table::write as write_table;

#[derive(Debug, Args)]
#[command(after_help = "\
Where the proxy is, in order: --admin ADDR; --kubernetes; the local mesh when one runs \
(`meshctl local up`; name the workload: `meshctl proxy-config routes productpage-v1`); a \
cluster when a kubeconfig is there (KUBECONFIG, ~/.kube/config or in a pod). In Kubernetes \
name the pod, `POD -n NAMESPACE` or `POD.NAMESPACE` (the namespace defaults to the \
kubeconfig context's, else `default`): meshctl checks it runs the mesh-proxy sidecar and port-forwards to its admin \
port 15000.")]
pub struct ProxyConfigArgs {
    /// What to show
    #[arg(value_enum)]
    pub kind: Kind,

    /// The workload, as `meshctl local status` names it (`productpage-v1` or
    /// `productpage-v1.default`), or in Kubernetes the pod
    #[arg(value_name = "WORKLOAD|POD[.NAMESPACE]")]
    pub workload: Option<String>,

    #[command(flatten)]
    pub namespace: NamespaceArgs,

    /// Look the pod up in the cluster the kubeconfig names, even when a local mesh runs
    #[arg(long, conflicts_with = "admin")]
    pub kubernetes: bool,

    /// Read this proxy admin address instead of looking the workload up
    #[arg(long, value_name = "ADDR", conflicts_with = "workload")]
    pub admin: Option<SocketAddr>,

    /// A table, or the admin port's documents as JSON or YAML
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// NAME, VHOST NAME, DOMAINS, MATCH, VIRTUAL SERVICE
    #[value(alias = "route")]
    Routes,
    /// SERVICE FQDN, PORT, SUBSET, DIRECTION, TYPE, DESTINATION RULE
    #[value(alias = "cluster")]
    Clusters,
    /// ADDRESSES, PORT, MATCH, DESTINATION
    #[value(alias = "listener")]
    Listeners,
    /// ENDPOINT, STATUS (healthy, ejected), OUTLIER CHECK, CLUSTER
    #[value(alias = "endpoint")]
    Endpoints,
    /// RESOURCE NAME, TYPE, STATUS, VALID CERT, SERIAL NUMBER, NOT AFTER, NOT BEFORE
    #[value(alias = "secrets")]
    Secret,
    /// Everything above
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

const ALL: [Kind; 5] = [
    Kind::Listeners,
    Kind::Routes,
    Kind::Clusters,
    Kind::Endpoints,
    Kind::Secret,
];

pub fn run(args: &ProxyConfigArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Write)?;
    let workload = args.workload.as_deref().map(|w| args.namespace.qualify(w));
    let target = AdminTarget::new(
        workload.as_deref(),
        args.admin,
        args.kubernetes,
        &args.state,
    )?;
    let documents = runtime.block_on(async {
        let port = target.locate().await?;
        Documents::fetch(&port, args.kind).await
    })?;
    match args.output {
        Output::Table => documents.write_table(args.kind, out)?,
        output => write_document(&documents.json(args.kind), output, out)?,
    }
    Ok(Status::Success)
}

/// JSON (pretty) or YAML.
pub fn write_document(
    value: &Value,
    output: Output,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    if output == Output::Yaml {
        let text = serde_yaml::to_string(value).unwrap_or_default();
        write!(out, "{text}")?;
    } else {
        serde_json::to_writer_pretty(&mut *out, value)?;
        writeln!(out)?;
    }
    Ok(())
}

fn name(kind: Kind) -> &'static str {
    match kind {
        Kind::Routes => "routes",
        Kind::Clusters => "clusters",
        Kind::Listeners => "listeners",
        Kind::Endpoints => "endpoints",
        Kind::Secret => "secret",
        Kind::All => "all",
    }
}

/// What the admin port said, fetched once: `/config_dump` (listeners, routes, clusters),
/// `/listeners` (what is bound), `/clusters` (endpoint health), `/certs`.
#[derive(Debug, Default)]
pub struct Documents {
    pub config_dump: Value,
    pub listeners: Value,
    pub clusters: Value,
    /// None when the proxy has no workload identity (`/certs` is 404).
    pub certs: Option<Value>,
}

impl Documents {
    async fn fetch(port: &AdminPort, kind: Kind) -> Result<Documents, InspectError> {
        let wants = |k: Kind| kind == k || kind == Kind::All;
        let mut documents = Documents::default();
        if wants(Kind::Routes) || wants(Kind::Clusters) || wants(Kind::Listeners) {
            documents.config_dump = port.json("/config_dump").await?;
        }
        if wants(Kind::Listeners) {
            documents.listeners = port.json("/listeners").await?;
        }
        if wants(Kind::Endpoints) {
            documents.clusters = port.json("/clusters").await?;
        }
        if wants(Kind::Secret) {
            documents.certs = match fetch::json(port.addr, "/certs").await {
                Ok(certs) => Some(certs),
                Err(error) if error.is_not_found() => None,
                Err(error) => return Err(port.error(error)),
            };
        }
        Ok(documents)
    }

    fn snapshot(&self) -> view::Snapshot {
        view::read::<view::ConfigDump>(&self.config_dump)
            .snapshot
            .unwrap_or_default()
    }

    pub fn write_table(&self, kind: Kind, out: &mut impl Write) -> std::io::Result<()> {
        match kind {
            Kind::Routes => write_table(
                tables::ROUTES,
                &tables::routes(&self.snapshot().route_configs),
                out,
            ),
            Kind::Clusters => write_table(
                tables::CLUSTERS,
                &tables::clusters(&self.snapshot().clusters),
                out,
            ),
            Kind::Listeners => write_table(
                tables::LISTENERS,
                &tables::listeners(
                    &self.snapshot().listeners,
                    &view::read::<Vec<_>>(&self.listeners),
                ),
                out,
            ),
            Kind::Endpoints => write_table(
                tables::ENDPOINTS,
                &tables::endpoints(&view::read::<Vec<_>>(&self.clusters)),
                out,
            ),
            Kind::Secret => match &self.certs {
                Some(certs) => write_table(
                    tables::SECRET,
                    &tables::secret(&view::read(certs), now()),
                    out,
                ),
                None => writeln!(
                    out,
                    "no workload certificate: this proxy runs without an identity (mesh-proxy --ca-addr)"
                ),
            },
            Kind::All => {
                for (i, kind) in ALL.iter().enumerate() {
                    if i > 0 {
                        writeln!(out)?;
                    }
                    self.write_table(*kind, out)?;
                }
                Ok(())
            }
        }
    }

    /// The part of the admin documents a table shows, as the proxy wrote it.
    pub fn json(&self, kind: Kind) -> Value {
        let snapshot = &self.config_dump["snapshot"];
        match kind {
            Kind::Routes => snapshot["routeConfigs"].clone(),
            Kind::Clusters => snapshot["clusters"].clone(),
            Kind::Listeners => {
                let mut listeners = snapshot["listeners"].clone();
                let bound: Vec<view::BoundListener> = view::read(&self.listeners);
                for listener in listeners.as_array_mut().into_iter().flatten() {
                    let at = bound
                        .iter()
                        .find(|b| listener["name"] == b.name.as_str())
                        .and_then(|b| b.bound.clone());
                    listener["bound"] = json!(at);
                }
                listeners
            }
            Kind::Endpoints => self.clusters.clone(),
            Kind::Secret => self.certs.clone().unwrap_or(Value::Null),
            Kind::All => Value::Object(
                ALL.iter()
                    .map(|k| (name(*k).to_owned(), self.json(*k)))
                    .collect(),
            ),
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

//! Pods as network namespaces: a bridge in the root namespace (where pilot and citadel
//! listen on its address) and, per pod, a namespace with a veth to the bridge, loopback up
//! and a default route via the bridge. Names are unique per test run, and everything is
//! removed on drop, panics included. Root only; [`missing`] says why a test cannot run.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The tools the namespace tests run, and what provides them on Debian.
const TOOLS: [(&str, &str); 7] = [
    ("ip", "iproute2"),
    ("iptables", "iptables"),
    ("iptables-restore", "iptables"),
    ("ip6tables", "iptables"),
    ("ip6tables-restore", "iptables"),
    ("setpriv", "util-linux"),
    ("curl", "curl"),
];

/// Why namespace tests cannot run here (not root, a tool missing), or `None`.
pub fn missing() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned));
    if uid.as_deref() != Some("0") {
        return Some(format!(
            "not root (effective uid {}): network namespaces and iptables need root",
            uid.unwrap_or_else(|| "unknown".into())
        ));
    }
    for (tool, package) in TOOLS {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
        if !found {
            return Some(format!("{tool} not found: install {package}"));
        }
    }
    None
}

/// Runs a command and panics with its output unless it succeeds.
pub fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs a command, ignoring failure (clean-up of what may already be gone).
fn quietly(program: &str, args: &[&str]) {
    let _ = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A bridge and its pods.
pub struct Network {
    pub bridge: String,
    /// `10.<subnet>.0.0/24` and `fd00:<subnet>::/64`: the bridge is `.1`/`::1`, pods
    /// `.2`, `.3`, ...
    pub subnet: u8,
    pub pods: Vec<Pod>,
    forward_rule: Vec<String>,
}

pub struct Pod {
    /// The network namespace's name.
    pub netns: String,
    pub ip: Ipv4Addr,
    pub ip6: Ipv6Addr,
    host_veth: String,
}

static NETWORKS: AtomicU32 = AtomicU32::new(0);

impl Network {
    /// A bridge with `pods` namespaces on it.
    pub fn new(pods: &[&str]) -> Network {
        let id = std::process::id() % 10_000 * 10 + NETWORKS.fetch_add(1, Ordering::Relaxed) % 10;
        let subnet = 100 + u8::try_from(id % 150).unwrap();
        let bridge = format!("mbr{id}");
        let mut network = Network {
            bridge: bridge.clone(),
            subnet,
            pods: Vec::new(),
            forward_rule: Vec::new(),
        };
        run("ip", &["link", "add", &bridge, "type", "bridge"]);
        let gateway = network.gateway().to_string();
        let gateway6 = network.gateway6().to_string();
        // No duplicate address detection: the address is usable at once.
        let v6 = format!("{gateway6}/64");
        run("ip", &["-6", "addr", "add", &v6, "dev", &bridge, "nodad"]);
        run(
            "ip",
            &["addr", "add", &format!("{gateway}/24"), "dev", &bridge],
        );
        run("ip", &["link", "set", &bridge, "up"]);
        // Hosts with br_netfilter and a DROP forward policy (Docker's) would drop
        // bridged traffic between the pods.
        network.forward_rule = ["FORWARD", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let mut insert = vec!["-I"];
        insert.extend(network.forward_rule.iter().map(String::as_str));
        run("iptables", &insert);
        run("ip6tables", &insert);
        for (n, name) in pods.iter().enumerate() {
            let host = u8::try_from(n + 2).unwrap();
            let pod = Pod {
                netns: format!("mesh-{id}-{name}"),
                ip: Ipv4Addr::new(10, subnet, 0, host),
                ip6: Ipv6Addr::new(0xfd00, subnet.into(), 0, 0, 0, 0, 0, host.into()),
                host_veth: format!("mv{id}p{n}"),
            };
            // Listed before it exists, so that drop removes whatever part was made.
            network.pods.push(pod);
            network.pods[n].create(&bridge, &gateway, &gateway6);
        }
        network
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet, 0, 1)
    }

    pub fn gateway6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, self.subnet.into(), 0, 0, 0, 0, 0, 1)
    }

    pub fn pod(&self, name: &str) -> &Pod {
        self.pods
            .iter()
            .find(|p| p.netns.ends_with(&format!("-{name}")))
            .unwrap_or_else(|| panic!("no pod {name}"))
    }
}

impl Pod {
    fn create(&self, bridge: &str, gateway: &str, gateway6: &str) {
        let ns = self.netns.as_str();
        let pod_veth = format!("{}c", self.host_veth);
        run("ip", &["netns", "add", ns]);
        run(
            "ip",
            &[
                "link",
                "add",
                &self.host_veth,
                "type",
                "veth",
                "peer",
                "name",
                &pod_veth,
            ],
        );
        run(
            "ip",
            &["link", "set", &self.host_veth, "master", bridge, "up"],
        );
        run("ip", &["link", "set", &pod_veth, "netns", ns]);
        self.exec(&["ip", "link", "set", &pod_veth, "name", "eth0"]);
        self.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", self.ip),
            "dev",
            "eth0",
        ]);
        self.exec(&["ip", "link", "set", "eth0", "up"]);
        self.exec(&["ip", "link", "set", "lo", "up"]);
        self.exec(&["ip", "route", "add", "default", "via", gateway]);
        let v6 = format!("{}/64", self.ip6);
        self.exec(&["ip", "-6", "addr", "add", &v6, "dev", "eth0", "nodad"]);
        self.exec(&["ip", "-6", "route", "add", "default", "via", gateway6]);
    }

    /// Runs `command` in the pod's namespace and panics unless it succeeds.
    pub fn exec(&self, command: &[&str]) -> Output {
        let mut args = vec!["netns", "exec", &self.netns];
        args.extend_from_slice(command);
        run("ip", &args)
    }

    /// `command` in the pod's namespace, not run yet.
    pub fn command(&self, command: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns]).args(command);
        cmd
    }

    /// `command` in the pod's namespace as uid and gid `uid`: the proxy's user, whose
    /// connections iptables leaves alone.
    pub fn command_as(&self, uid: u32, command: &[&str]) -> Command {
        let id = uid.to_string();
        let mut args = vec!["setpriv", "--reuid", &id, "--regid", &id, "--clear-groups"];
        args.extend_from_slice(command);
        self.command(&args)
    }

    /// Spawns `command` and reads the one line it prints once its ports are bound.
    pub fn spawn(&self, mut command: Command) -> (Child, String) {
        super::spawn_command(&mut command)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for pod in &self.pods {
            // Deleting the namespace ends its veth end, and with it the pair.
            quietly("ip", &["netns", "delete", &pod.netns]);
            quietly("ip", &["link", "delete", &pod.host_veth]);
        }
        quietly("ip", &["link", "delete", &self.bridge]);
        if !self.forward_rule.is_empty() {
            let mut delete = vec!["-D"];
            delete.extend(self.forward_rule.iter().map(String::as_str));
            quietly("iptables", &delete);
            quietly("ip6tables", &delete);
        }
    }
}

/// A process in a pod, killed on drop.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An echo app in `pod`, listening on `[::]:<port>` (IPv4 too).
pub fn echo(pod: &Pod, port: u16, version: &str) -> Process {
    let listen = format!("[::]:{port}");
    let command = pod.command(&[
        env!("CARGO_BIN_EXE_e2e-echo"),
        "--listen",
        &listen,
        "--version-label",
        version,
    ]);
    let (child, line) = pod.spawn(command);
    assert!(line.contains("listening on"), "echo said {line:?}");
    Process(child)
}

/// `mesh-proxy iptables <args>` in `pod`, as its init step does; what it printed.
pub fn iptables(pod: &Pod, args: &[&str]) -> String {
    let mut command = vec![env!("CARGO_BIN_EXE_e2e-proxy"), "iptables"];
    command.extend_from_slice(args);
    let output = pod.exec(&command);
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The pod's nat table as `iptables-save` prints it, counters and comments left out.
pub fn nat_rules(pod: &Pod) -> String {
    let output = pod.exec(&["iptables-save", "-t", "nat"]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.strip_prefix(':') {
            // `:CHAIN POLICY [packets:bytes]`: the counters change as traffic flows.
            Some(chain) => chain.split(" [").next().unwrap_or(chain).to_owned(),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The sidecar in `pod` as uid 1337 in capture mode, its ports Istio's defaults; its
/// health and metrics addresses are the pod's IP, reachable from the root namespace.
pub fn capture_proxy(pod: &Pod, args: &[&str]) -> super::Proxy {
    let workload = pod.netns.rsplit('-').next().unwrap_or("pod").to_owned();
    let ip = pod.ip.to_string();
    let mut command = vec![
        env!("CARGO_BIN_EXE_e2e-proxy"),
        "--workload",
        &workload,
        "--namespace",
        "shop",
        "--instance-ip",
        &ip,
        // Its default capture sockets, `[::]:15001` and `[::]:15006`, take both families.
        "--capture",
        "--log",
        "warn",
    ];
    command.extend_from_slice(args);
    let (child, line) = pod.spawn(pod.command_as(1337, &command));
    let at_pod = |name: &str| {
        let bound = super::field(&line, name);
        std::net::SocketAddr::new(pod.ip.into(), bound.port())
    };
    super::Proxy {
        child,
        id: format!("{workload}.shop"),
        admin: super::field(&line, "admin"),
        health: at_pod("health"),
        metrics: at_pod("metrics"),
    }
}

/// `curl` in `pod` (as `uid` when given, which iptables leaves alone if it is the
/// proxy's): the HTTP status, or curl's complaint when there was none.
pub fn curl(pod: &Pod, uid: Option<u32>, url: &str, headers: &[&str]) -> Result<u16, String> {
    let mut args = vec!["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}"];
    args.extend_from_slice(&["--max-time", "5"]);
    for header in headers {
        args.extend_from_slice(&["-H", header]);
    }
    args.push(url);
    let mut command = match uid {
        Some(uid) => pod.command_as(uid, &args),
        None => pod.command(&args),
    };
    let output = command.output().map_err(|e| e.to_string())?;
    let code = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match code.parse::<u16>() {
        Ok(status) if status > 0 && output.status.success() => Ok(status),
        _ => Err(format!(
            "curl {url}: exit {:?}, {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

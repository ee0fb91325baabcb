//! `-n/--namespace` on the commands that take a pod, as kubectl and istioctl have it:
//! parsed by the real CLI, and carried to the API server (a fake one over a real socket,
//! named by the kubeconfig the binary reads), whose context namespace is the default.

mod support;

use std::collections::BTreeMap;
use std::process::Output;

use clap::Parser;
use meshctl::cmd::proxy_config::locate::NamespaceArgs;
use meshctl::{Cli, Command};
use support::FakeApi;

fn parse(args: &[&str]) -> Command {
    let line = std::iter::once("meshctl").chain(args.iter().copied());
    Cli::try_parse_from(line)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .command
}

#[test]
fn the_pod_commands_take_dash_n_and_namespace() {
    match parse(&["proxy-config", "routes", "web-abc", "-n", "shop"]) {
        Command::ProxyConfig(args) => {
            assert_eq!(args.namespace.namespace.as_deref(), Some("shop"));
            assert_eq!(args.workload.as_deref(), Some("web-abc"));
        }
        other => panic!("{other:?}"),
    }
    match parse(&["x", "describe", "pod", "web-abc", "--namespace", "shop"]) {
        Command::X(args) => {
            let meshctl::cmd::describe::XCommand::Describe(describe) = args.command;
            let meshctl::cmd::describe::DescribeCommand::Pod(pod) = describe.command;
            assert_eq!(pod.namespace.namespace.as_deref(), Some("shop"));
        }
        other => panic!("{other:?}"),
    }
    match parse(&["proxy-status", "-n", "shop"]) {
        Command::ProxyStatus(args) => {
            assert_eq!(args.namespace.as_deref(), Some("shop"));
            assert_eq!(args.workload, None);
        }
        other => panic!("{other:?}"),
    }
    match parse(&["analyze", "-n", "shop"]) {
        Command::Analyze(args) => assert_eq!(args.namespace.as_deref(), Some("shop")),
        other => panic!("{other:?}"),
    }
    match parse(&["analyze", "-A", "-f", "routes.yaml"]) {
        Command::Analyze(args) => assert!(args.all_namespaces && args.paths.len() == 1),
        other => panic!("{other:?}"),
    }
    // Without -n, no namespace is decided at parse time: the kubeconfig's comes later.
    match parse(&["proxy-config", "clusters", "web-abc"]) {
        Command::ProxyConfig(args) => assert_eq!(args.namespace.namespace, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pod_dot_namespace_still_works_and_wins_as_in_istioctl() {
    let shop = NamespaceArgs {
        namespace: Some("shop".to_owned()),
    };
    assert_eq!(shop.qualify("web-abc"), "web-abc.shop");
    assert_eq!(shop.qualify("web-abc.other"), "web-abc.other");
    assert_eq!(NamespaceArgs::default().qualify("web-abc"), "web-abc");
    assert_eq!(
        NamespaceArgs::default().qualify("web-abc.other"),
        "web-abc.other"
    );
}

async fn meshctl(kubeconfig: std::path::PathBuf, args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let state = tempfile::tempdir().expect("tempdir");
        std::process::Command::new(env!("CARGO_BIN_EXE_meshctl"))
            .args(&args)
            .arg("--state-dir")
            .arg(state.path())
            .env("KUBECONFIG", kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .expect("meshctl runs")
    })
    .await
    .expect("joined")
}

/// The pod is looked up where -n says, else in the kubeconfig context's namespace; the fake
/// API server has no pods, so each run ends in the "not found" that names the namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_reaches_the_api_server() {
    let api = FakeApi::start(BTreeMap::new()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path(), "bookinfo");
    let cases: [(&[&str], &str); 4] = [
        (&["proxy-config", "routes", "web-abc", "-n", "shop"], "shop"),
        (&["proxy-config", "routes", "web-abc"], "bookinfo"),
        (
            &["proxy-config", "routes", "web-abc.other", "-n", "shop"],
            "other",
        ),
        (
            &[
                "proxy-status",
                "web-abc",
                "--namespace",
                "shop",
                "--kubernetes",
            ],
            "mesh-system",
        ),
    ];
    for (args, namespace) in cases {
        let before = api.paths().len();
        let output = meshctl(kubeconfig.clone(), args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = api.paths().get(before).cloned().unwrap_or_default();
        if namespace == "mesh-system" {
            // proxy-status asks for pilot first; none runs here.
            assert_eq!(first, "/api/v1/namespaces/mesh-system/pods", "{args:?}");
            assert!(stderr.contains("no running pilot pod"), "{stderr}");
            continue;
        }
        assert_eq!(
            first,
            format!("/api/v1/namespaces/{namespace}/pods/web-abc"),
            "{args:?}"
        );
        assert!(
            stderr.contains(&format!("not found in namespace \"{namespace}\"")),
            "{args:?}: {stderr}"
        );
    }
}

//! The manifest speaks the injector's language: its flags parse, the config file it mounts
//! is one the injector accepts (unknown fields are errors there), and the names the
//! injector's code expects (its webhook configuration, its Service's DNS names, its port)
//! are the ones installed. pilot's and citadel's flags are checked the same way in
//! e2e/tests/kubernetes.rs, which depends on those crates.

use clap::Parser;
use mesh_injector::app::Args;
use mesh_injector::config::{Config, FailurePolicy};
use meshctl::cmd::install::manifest::{self, INJECTOR, NAMESPACE};
use meshctl::cmd::install::values::Values;
use serde_json::Value;

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn custom() -> Values {
    let sets = [
        "image.registry=example.org/mesh",
        "image.tag=2.0.1",
        "trustDomain=corp.example",
        "injector.failurePolicy=Ignore",
    ]
    .map(str::to_owned);
    Values::load(&[] as &[&std::path::Path], &sets).expect("valid")
}

#[test]
fn the_injector_accepts_its_flags_and_config_file() {
    let values = custom();
    let objects = manifest::render(&values).expect("renders").objects;
    let deployment = find(&objects, "Deployment", INJECTOR);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let parsed = Args::try_parse_from(std::iter::once("injector").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("the injector refuses {args:?}: {e}"));
    assert!(!parsed.standalone, "it must talk to the API server");
    assert_eq!(
        Some(parsed.addr.port()),
        container["readinessProbe"]["httpGet"]["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
    );

    // The file the Deployment mounts is the ConfigMap's, and the injector takes it.
    let path = parsed.config.expect("--config");
    let mount = &container["volumeMounts"][0];
    assert_eq!(
        path.parent().and_then(|p| p.to_str()),
        mount["mountPath"].as_str()
    );
    let file = path.file_name().and_then(|f| f.to_str()).expect("file");
    let config_map = find(&objects, "ConfigMap", INJECTOR);
    let text = config_map["data"][file].as_str().expect("the mounted key");
    let config = Config::from_yaml(text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert_eq!(config.proxy_image, "example.org/mesh/mesh-proxy:2.0.1");
    assert_eq!(config.trust_domain, "corp.example");
    assert_eq!(config.failure_policy, FailurePolicy::Ignore);
    assert_eq!(config.pilot_address, "pilot.mesh-system.svc:15010");
    assert_eq!(config.ca_address, "citadel.mesh-system.svc:8060");
    assert_eq!(
        config.webhook_configuration,
        Config::default().webhook_configuration
    );
}

#[test]
fn the_webhook_reaches_the_injector_under_the_names_its_certificate_has() {
    let objects = manifest::render(&Values::default())
        .expect("renders")
        .objects;
    let webhook = find(
        &objects,
        "MutatingWebhookConfiguration",
        &Config::default().webhook_configuration,
    );
    let service = &webhook["webhooks"][0]["clientConfig"]["service"];
    let dns = format!(
        "{}.{}.svc",
        service["name"].as_str().expect("name"),
        service["namespace"].as_str().expect("namespace")
    );
    assert!(
        mesh_injector::tls::DEFAULT_NAMES.contains(&dns.as_str()),
        "{dns} is not among the injector's certificate names {:?}",
        mesh_injector::tls::DEFAULT_NAMES
    );
    assert_eq!(service["path"], "/inject");
    let port = service["port"].as_u64().expect("port");
    let svc = find(&objects, "Service", INJECTOR);
    let target = svc["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["port"].as_u64() == Some(port))
        .expect("the webhook's port is the Service's");
    assert_eq!(target["targetPort"], 15017);
    assert_eq!(service["namespace"], NAMESPACE);
}

/// A gateway container's args, with every `env` entry turned into the flag that reads
/// that variable: an env name the proxy does not know fails here, not in a pod.
fn gateway_command_line(container: &Value) -> Vec<String> {
    use clap::CommandFactory;
    let command = mesh_proxy::config::Config::command();
    let mut line = vec!["mesh-proxy".to_owned()];
    line.extend(
        container["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned),
    );
    // What the kubelet would put in the field references.
    let fields = [
        ("metadata.name", "ingressgateway-7d9f-abcde"),
        ("metadata.namespace", "mesh-gateways"),
        ("spec.serviceAccountName", "ingressgateway"),
        ("status.podIP", "10.0.0.7"),
    ];
    for entry in container["env"].as_array().expect("env") {
        let name = entry["name"].as_str().expect("name");
        let value = match entry["value"].as_str() {
            Some(value) => value,
            None => {
                let path = entry["valueFrom"]["fieldRef"]["fieldPath"].as_str();
                fields
                    .iter()
                    .find(|(field, _)| Some(*field) == path)
                    .map(|(_, v)| *v)
                    .unwrap_or_else(|| panic!("{name}: an unknown field reference {path:?}"))
            }
        };
        let arg = command
            .get_arguments()
            .find(|a| a.get_env().and_then(|e| e.to_str()) == Some(name));
        match arg.and_then(|a| a.get_long()) {
            Some(long) => line.push(format!("--{long}={value}")),
            // Field references the proxy does not read (POD_NAME) are harmless.
            None => assert!(entry["value"].is_null(), "mesh-proxy reads no {name}"),
        }
    }
    line
}

#[test]
fn the_gateways_flags_and_env_parse_with_the_proxys_own_parser() {
    use clap::Parser;
    use mesh_proxy::config::{Config as ProxyConfig, ProxyMode};
    let values = {
        let sets = ["gateways.egress.enabled=true", "trustDomain=corp.example"].map(str::to_owned);
        let mut values = Values::load(&[] as &[&std::path::Path], &sets).expect("valid");
        values.gateways.ingress.credentials = vec!["shop-cert".to_owned()];
        values.gateways.egress.credentials = vec!["shop-cert".to_owned()];
        values
    };
    let objects = manifest::render(&values).expect("renders").objects;
    for name in ["ingressgateway", "egressgateway"] {
        let deployment = find(&objects, "Deployment", name);
        let pod = &deployment["spec"]["template"];
        let container = &pod["spec"]["containers"][0];
        let line = gateway_command_line(container);
        let config = ProxyConfig::try_parse_from(&line)
            .unwrap_or_else(|e| panic!("mesh-proxy refuses {line:?}: {e}"));
        assert_eq!(config.mode, ProxyMode::Gateway, "{name}");
        assert_eq!(config.workload, name);
        assert_eq!(config.namespace, "mesh-gateways");
        assert_eq!(config.trust_domain, "corp.example");
        assert_eq!(config.pilot.as_deref(), Some("pilot.mesh-system.svc:15010"));
        assert_eq!(
            config.ca_addr.as_deref(),
            Some("citadel.mesh-system.svc:8060")
        );
        // The labels it tells pilot are the pod's: Istio's and mesh's selectors match.
        for key in ["istio", "mesh"] {
            assert_eq!(config.labels.get(key).map(String::as_str), Some(name));
            assert_eq!(pod["metadata"]["labels"][key], name);
        }
        // Readiness is probed where the proxy serves it, the credentials where it reads them.
        let probe = &container["readinessProbe"]["httpGet"]["port"];
        assert_eq!(probe.as_u64(), Some(u64::from(config.health_addr.port())));
        assert_eq!(
            config.credentials_dir,
            std::path::Path::new("/etc/mesh/credentials")
        );
        // The token and trust bundle the env names are the volumes mounted.
        for path in [config.ca_token_file.clone(), config.trust_bundle.clone()] {
            let path = path.expect("a path");
            let mounted = container["volumeMounts"]
                .as_array()
                .expect("mounts")
                .iter()
                .filter_map(|m| m["mountPath"].as_str())
                .any(|dir| path.parent() == Some(std::path::Path::new(dir)));
            assert!(mounted, "{name}: {} is not mounted", path.display());
        }
        // A credentialName Secret lands where the proxy looks for it: <dir>/<name>/tls.crt.
        let mounted = container["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["mountPath"].as_str() == config.credentials_dir.to_str())
            .expect("the credentials are mounted");
        let volume = pod["spec"]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == mounted["name"])
            .expect("its volume");
        let secret = &volume["projected"]["sources"][0]["secret"];
        assert_eq!(secret["name"], "shop-cert");
        assert_eq!(secret["optional"], true);
        let paths: Vec<&str> = secret["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["path"].as_str())
            .collect();
        assert!(paths.contains(&"shop-cert/tls.crt") && paths.contains(&"shop-cert/tls.key"));
        let sysctls = &pod["spec"]["securityContext"]["sysctls"][0];
        assert_eq!(sysctls["name"], "net.ipv4.ip_unprivileged_port_start");
    }
}

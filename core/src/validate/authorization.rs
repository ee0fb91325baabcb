//! AuthorizationPolicy: action, and each rule's sources, operations and conditions.

use crate::config::{
    AuthorizationAction, AuthorizationPolicySpec, Condition, Object, Operation, Rule, Source,
};

use super::net::{check_ip_or_cidr, check_port_text};
use super::security::check_label_selector;
use super::vocabulary::HTTP_METHODS;
use super::{FieldPath, Report};

pub(super) fn check(ap: &Object<AuthorizationPolicySpec>, report: &mut Report) {
    let spec = &ap.spec;
    let at = FieldPath::spec();
    check_label_selector(spec.selector.as_ref(), &at, report);
    match spec.action {
        AuthorizationAction::Custom => report.error(
            &at.field("action"),
            "action CUSTOM is not supported by mesh yet (it needs an external authorization provider); use ALLOW or DENY",
        ),
        // Istio accepts it; it denies nothing, which is rarely what was meant.
        AuthorizationAction::Deny if spec.rules.is_empty() => report.warning(
            &at.field("rules"),
            "a DENY policy without rules never matches, so it denies nothing; add rules, or an empty rule {} to deny every request",
        ),
        _ => {}
    }
    for (i, rule) in spec.rules.iter().enumerate() {
        check_rule(rule, &at.item("rules", i), report);
    }
    // What the checks above do not cover (path templates, claim paths, header names), the
    // proxies' compiler refuses: ask it, so pilot never passes on what every proxy rejects.
    if !report.has_errors() {
        let name = format!("{}/{}", ap.metadata.namespace, ap.metadata.name);
        if let Err(error) = crate::authz::Policies::compile(&[(name, spec.clone())]) {
            report.error(&error.field, error.problem.to_string());
        }
    }
}

fn check_rule(rule: &Rule, at: &FieldPath, report: &mut Report) {
    for (i, from) in rule.from.iter().enumerate() {
        check_source(&from.source, &at.item("from", i).field("source"), report);
    }
    for (i, to) in rule.to.iter().enumerate() {
        check_operation(&to.operation, &at.item("to", i).field("operation"), report);
    }
    for (i, condition) in rule.when.iter().enumerate() {
        check_condition(condition, &at.item("when", i), report);
    }
}

fn check_source(source: &Source, at: &FieldPath, report: &mut Report) {
    let patterns = [
        ("principals", &source.principals),
        ("notPrincipals", &source.not_principals),
        ("requestPrincipals", &source.request_principals),
        ("notRequestPrincipals", &source.not_request_principals),
        ("namespaces", &source.namespaces),
        ("notNamespaces", &source.not_namespaces),
        ("serviceAccounts", &source.service_accounts),
        ("notServiceAccounts", &source.not_service_accounts),
    ];
    let blocks = [
        ("ipBlocks", &source.ip_blocks),
        ("notIpBlocks", &source.not_ip_blocks),
        ("remoteIpBlocks", &source.remote_ip_blocks),
        ("notRemoteIpBlocks", &source.not_remote_ip_blocks),
    ];
    if patterns
        .iter()
        .chain(&blocks)
        .all(|(_, values)| values.is_empty())
    {
        report.error(at, "source must set at least one field, e.g. principals or namespaces; remove it to match any source");
    }
    for (field, values) in patterns {
        check_patterns(values, &at.field(field), report);
    }
    for (field, values) in blocks {
        for (i, block) in values.iter().enumerate() {
            report.check(&at.item(field, i), check_ip_or_cidr(block));
        }
    }
}

fn check_operation(operation: &Operation, at: &FieldPath, report: &mut Report) {
    let patterns = [
        ("hosts", &operation.hosts),
        ("notHosts", &operation.not_hosts),
        ("paths", &operation.paths),
        ("notPaths", &operation.not_paths),
    ];
    let ports = [
        ("ports", &operation.ports),
        ("notPorts", &operation.not_ports),
    ];
    let methods = [
        ("methods", &operation.methods),
        ("notMethods", &operation.not_methods),
    ];
    let all_empty = patterns
        .iter()
        .chain(&ports)
        .chain(&methods)
        .all(|(_, values)| values.is_empty());
    if all_empty {
        report.error(at, "operation must set at least one field, e.g. paths or methods; remove it to match any request");
    }
    for (field, values) in patterns {
        check_patterns(values, &at.field(field), report);
    }
    for (field, values) in ports {
        for (i, port) in values.iter().enumerate() {
            report.check(&at.item(field, i), check_port_text(port));
        }
    }
    for (field, values) in methods {
        for (i, method) in values.iter().enumerate() {
            check_method(method, &at.item(field, i), report);
        }
    }
}

/// Values match exactly, by prefix (`abc*`), by suffix (`*abc`) or by presence (`*`).
fn check_patterns(values: &[String], at: &FieldPath, report: &mut Report) {
    for (i, value) in values.iter().enumerate() {
        let here = at.index(i);
        if value.is_empty() {
            report.error(&here, "value must not be empty");
            continue;
        }
        let inner = value
            .get(1..value.len().saturating_sub(1))
            .unwrap_or_default();
        if value.len() > 2 && inner.contains('*') && !value.contains('{') {
            report.warning(
                &here,
                format!("{value:?} has '*' in the middle, which matches a literal '*'; '*' works only at the start or the end"),
            );
        }
    }
}

fn check_method(method: &str, at: &FieldPath, report: &mut Report) {
    if method.is_empty() {
        report.error(at, "method must not be empty");
    } else if http::Method::from_bytes(method.as_bytes()).is_err() {
        report.error(
            at,
            format!("{method:?} is not an HTTP method; use e.g. GET or POST"),
        );
    } else if method.chars().any(|c| c.is_ascii_lowercase()) {
        let upper = method.to_ascii_uppercase();
        let hint = if HTTP_METHODS.contains(&upper.as_str()) {
            format!("; write {upper}")
        } else {
            String::new()
        };
        report.warning(at, format!("methods are case-sensitive and {method:?} is lower-case, so it matches no standard request{hint}"));
    }
}

/// The condition keys Istio defines: some take a `[name]`, some constrain their values.
fn check_condition(condition: &Condition, at: &FieldPath, report: &mut Report) {
    let key = condition.key.as_str();
    if key.is_empty() {
        report.error(&at.field("key"), "key must not be empty");
        return;
    }
    if condition.values.is_empty() && condition.not_values.is_empty() {
        report.error(at, format!("set values or notValues for key {key}"));
    }
    if let Err(why) = check_condition_key(key) {
        report.error(&at.field("key"), why);
        return;
    }
    for (field, values) in [
        ("values", &condition.values),
        ("notValues", &condition.not_values),
    ] {
        for (i, value) in values.iter().enumerate() {
            let here = at.item(field, i);
            if value.is_empty() {
                report.error(&here, "value must not be empty");
                continue;
            }
            match key {
                "source.ip" | "remote.ip" | "destination.ip" => {
                    report.check(&here, check_ip_or_cidr(value))
                }
                "destination.port" => report.check(&here, check_port_text(value)),
                _ => {}
            }
        }
    }
}

const PLAIN_KEYS: [&str; 10] = [
    "source.ip",
    "remote.ip",
    "source.namespace",
    "source.principal",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "destination.ip",
    "destination.port",
    "connection.sni",
];

const MAP_KEYS: [&str; 3] = [
    "request.headers",
    "request.auth.claims",
    "experimental.envoy.filters.",
];

fn check_condition_key(key: &str) -> Result<(), String> {
    if PLAIN_KEYS.contains(&key) {
        return Ok(());
    }
    if let Some(prefix) = MAP_KEYS.iter().find(|p| key.starts_with(*p)) {
        // `request.headers[x-user]`; `experimental.envoy.filters.<filter>[path]`.
        let open_ok = |open: usize| match prefix.ends_with('.') {
            true => open > prefix.len(),
            false => open == prefix.len(),
        };
        let well_formed = key.ends_with(']')
            && key
                .find('[')
                .is_some_and(|open| open_ok(open) && open + 2 < key.len());
        return if well_formed {
            Ok(())
        } else {
            Err(format!(
                "key {key:?} must name an entry in brackets, e.g. {}[name]",
                prefix.trim_end_matches('.')
            ))
        };
    }
    if key == "destination.namespace"
        || key.starts_with("destination.labels")
        || key == "destination.user"
    {
        return Err(format!(
            "key {key:?} is not supported; select workloads with metadata.namespace and selector instead"
        ));
    }
    Err(format!(
        "key {key:?} is not a supported condition; use one of {}, request.headers[name], request.auth.claims[name]",
        PLAIN_KEYS.join(", ")
    ))
}

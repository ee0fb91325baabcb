//! Properties over generated requests.

use proptest::prelude::*;

use super::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,12}"
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"])
}

/// An HTTP or TCP request from `ns/sa`, with or without mTLS.
fn request() -> impl Strategy<Value = Req> {
    (
        name(),
        name(),
        any::<bool>(),
        any::<bool>(),
        method(),
        "/[a-z/]{0,16}",
        any::<[u8; 4]>(),
    )
        .prop_map(|(ns, sa, mtls, http, method, path, ip)| {
            let base = if http {
                get().method(method).path(&path)
            } else {
                tcp()
            };
            let base = base.source_ip(&std::net::IpAddr::from(ip).to_string());
            match mtls {
                true => base.peer(&format!("spiffe://cluster.local/ns/{ns}/sa/{sa}")),
                false => base.plaintext(),
            }
        })
}

proptest! {
    #[test]
    fn not_principals_never_allows_that_principal(ns in name(), sa in name(), req in request()) {
        let principal = format!("cluster.local/ns/{ns}/sa/{sa}");
        let spec = format!("{{rules: [{{from: [{{source: {{notPrincipals: ['{principal}']}}}}]}}]}}");
        let policies = compile(&[("foo/p", spec)]).unwrap();
        let req = req.peer(&format!("spiffe://{principal}"));
        prop_assert!(!policies.evaluate(&req.request()).is_allowed());
    }

    #[test]
    fn audit_never_changes_the_decision(req in request(), method in method()) {
        let base = [
            ("foo/allow", format!("{{rules: [{{to: [{{operation: {{methods: [{method}]}}}}]}}]}}")),
            ("foo/deny", "{action: DENY, rules: [{from: [{source: {namespaces: [kube-system]}}]}]}".to_owned()),
        ];
        let mut audited = base.to_vec();
        audited.push(("foo/audit", "{action: AUDIT, rules: [{}]}".to_owned()));
        let without = compile(&base).unwrap().evaluate(&req.request());
        let with = compile(&audited).unwrap().evaluate(&req.request());
        prop_assert_eq!(with.is_allowed(), without.is_allowed());
        prop_assert_eq!(with.policy(), without.policy());
        prop_assert!(with.audit().is_some());
    }

    #[test]
    fn deny_all_denies_everything(req in request()) {
        let policies = compile(&[("foo/deny", "{action: DENY, rules: [{}]}"), ("foo/allow", "{rules: [{}]}")]).unwrap();
        prop_assert!(!policies.evaluate(&req.request()).is_allowed());
    }

    #[test]
    fn a_block_holds_its_own_address(ip in any::<std::net::IpAddr>(), bits in 0u8..=128) {
        // Envoy reads a v4-mapped peer as IPv4, so such blocks are written as IPv4.
        let ip = ip.to_canonical();
        let bits = if ip.is_ipv4() { bits % 33 } else { bits };
        let spec = format!("{{rules: [{{from: [{{source: {{ipBlocks: ['{ip}/{bits}']}}}}]}}]}}");
        let policies = compile(&[("foo/p", spec)]).unwrap();
        let req = get().source_ip(&ip.to_string());
        prop_assert!(policies.evaluate(&req.request()).is_allowed());
    }
}

//! Policy actions, their order and the idioms built on them.

use super::Want::*;
use super::*;

const ALLOW_ALL: (&str, &str) = ("foo/allow-all", "{rules: [{}]}");
const ALLOW_NOTHING: (&str, &str) = ("foo/allow-nothing", "{}");
const DENY_ALL: (&str, &str) = ("foo/deny-all", "{action: DENY, rules: [{}]}");
const DENY_GET: (&str, &str) = (
    "foo/deny-get",
    "{action: DENY, rules: [{to: [{operation: {methods: [GET]}}]}]}",
);
const ALLOW_DATA: (&str, &str) = (
    "foo/allow-data",
    "{rules: [{to: [{operation: {paths: [/data]}}]}]}",
);
const AUDIT_GET: (&str, &str) = (
    "foo/audit-get",
    "{action: AUDIT, rules: [{to: [{operation: {methods: [GET]}}]}]}",
);

#[test]
fn matrix() {
    check(vec![
        row("no policy: allow", NONE, get(), Open),
        row(
            "empty spec: allow nothing",
            &[ALLOW_NOTHING],
            get(),
            NotAllowed,
        ),
        row(
            "ALLOW without rules: allow nothing",
            &[("foo/a", "{action: ALLOW}")],
            get(),
            NotAllowed,
        ),
        row(
            "ALLOW with an empty rule: allow all",
            &[ALLOW_ALL],
            get(),
            AllowedBy("foo/allow-all"),
        ),
        row(
            "DENY with an empty rule: deny all",
            &[DENY_ALL],
            get(),
            DeniedBy("foo/deny-all"),
        ),
        row(
            "DENY without rules denies nothing",
            &[("foo/d", "{action: DENY}")],
            get(),
            Open,
        ),
        row(
            "DENY without rules is no ALLOW policy",
            &[("foo/d", "{action: DENY, rules: []}"), ALLOW_ALL],
            get(),
            AllowedBy("foo/allow-all"),
        ),
        row(
            "DENY before ALLOW",
            &[ALLOW_ALL, DENY_GET],
            get(),
            DeniedBy("foo/deny-get"),
        ),
        row(
            "DENY not matching falls to ALLOW",
            &[ALLOW_ALL, DENY_GET],
            get().method("POST"),
            AllowedBy("foo/allow-all"),
        ),
        row(
            "DENY not matching, no ALLOW: allow",
            &[DENY_GET],
            get().method("PUT"),
            Open,
        ),
        row(
            "deny-all beats allow-all",
            &[DENY_ALL, ALLOW_ALL],
            get(),
            DeniedBy("foo/deny-all"),
        ),
        row(
            "first matching DENY is named",
            &[
                (
                    "foo/deny-post",
                    "{action: DENY, rules: [{to: [{operation: {methods: [POST]}}]}]}",
                ),
                DENY_GET,
            ],
            get(),
            DeniedBy("foo/deny-get"),
        ),
        row(
            "ALLOW not matching: deny",
            &[ALLOW_DATA],
            get().path("/other"),
            NotAllowed,
        ),
        row(
            "ALLOW matching",
            &[ALLOW_DATA],
            get().path("/data"),
            AllowedBy("foo/allow-data"),
        ),
        row(
            "any ALLOW policy may allow",
            &[ALLOW_NOTHING, ALLOW_DATA],
            get().path("/data"),
            AllowedBy("foo/allow-data"),
        ),
        row(
            "allow-nothing does not veto another ALLOW",
            &[ALLOW_NOTHING, ALLOW_ALL],
            get(),
            AllowedBy("foo/allow-all"),
        ),
        row(
            "several ALLOW, none matching",
            &[
                ALLOW_DATA,
                (
                    "foo/allow-post",
                    "{rules: [{to: [{operation: {methods: [POST]}}]}]}",
                ),
            ],
            get(),
            NotAllowed,
        ),
        row(
            "a later rule of a policy may match",
            &[(
                "foo/two",
                "{rules: [{to: [{operation: {paths: [/a]}}]}, {to: [{operation: {paths: [/b]}}]}]}",
            )],
            get().path("/b"),
            AllowedBy("foo/two"),
        ),
        row("AUDIT alone never denies", &[AUDIT_GET], get(), Open).audited_by("foo/audit-get"),
        row(
            "AUDIT never allows",
            &[AUDIT_GET, ALLOW_NOTHING],
            get(),
            NotAllowed,
        )
        .audited_by("foo/audit-get"),
        row(
            "AUDIT is reported with DENY",
            &[AUDIT_GET, DENY_ALL],
            get(),
            DeniedBy("foo/deny-all"),
        )
        .audited_by("foo/audit-get"),
        row(
            "AUDIT is reported with ALLOW",
            &[AUDIT_GET, ALLOW_ALL],
            get(),
            AllowedBy("foo/allow-all"),
        )
        .audited_by("foo/audit-get"),
        row(
            "AUDIT not matching is not reported",
            &[AUDIT_GET, ALLOW_ALL],
            get().method("POST"),
            AllowedBy("foo/allow-all"),
        ),
        row(
            "AUDIT is not an ALLOW policy",
            &[("foo/audit-none", "{action: AUDIT}")],
            get(),
            Open,
        ),
        row(
            "from, to and when all must match",
            &[(
                "foo/and",
                "{rules: [{from: [{source: {namespaces: [default]}}], to: [{operation: {methods: [GET]}}], when: [{key: 'request.headers[x-user]', values: [alice]}]}]}",
            )],
            get(),
            NotAllowed,
        ),
        row(
            "from, to and when all matching",
            &[(
                "foo/and",
                "{rules: [{from: [{source: {namespaces: [default]}}], to: [{operation: {methods: [GET]}}], when: [{key: 'request.headers[x-user]', values: [alice]}]}]}",
            )],
            get().header("x-user", "alice"),
            AllowedBy("foo/and"),
        ),
        row(
            "every when condition must match",
            &[(
                "foo/w",
                "{rules: [{when: [{key: destination.port, values: ['8080']}, {key: source.namespace, values: [prod]}]}]}",
            )],
            get(),
            NotAllowed,
        ),
    ]);
}

#[test]
fn the_decision_names_the_rule() {
    let policies = compile(&[
        (
            "foo/two",
            "{rules: [{to: [{operation: {paths: [/a]}}]}, {to: [{operation: {paths: [/b]}}]}]}",
        ),
        AUDIT_GET,
    ])
    .unwrap();
    let decision = policies.evaluate(&get().path("/b").request());
    assert_eq!(decision.policy().map(|m| m.rule), Some(1));
    assert_eq!(
        decision.to_string(),
        "allowed by foo/two rules[1] (audited by foo/audit-get rules[0])"
    );
    let denied = policies.evaluate(&get().path("/c").request());
    assert!(!denied.is_allowed());
    assert_eq!(denied.policy(), None);
    assert_eq!(
        denied.to_string(),
        "denied: no ALLOW policy matched (audited by foo/audit-get rules[0])"
    );
    assert!(Policies::default().is_empty());
    assert!(Policies::default().evaluate(&tcp().request()).is_allowed());
}

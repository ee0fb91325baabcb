//! TCP traffic against HTTP-only fields, as Istio's authz-tcp task shows it:
//! <https://istio.io/latest/docs/tasks/security/authorization/authz-tcp/>.

use super::Want::*;
use super::*;

#[test]
fn matrix() {
    check(vec![
        row(
            "ALLOW ports",
            &[(
                "foo/tcp",
                "{rules: [{to: [{operation: {ports: ['8080', '9001']}}]}]}",
            )],
            tcp(),
            AllowedBy("foo/tcp"),
        ),
        row(
            "ALLOW ports, other port",
            &[(
                "foo/tcp",
                "{rules: [{to: [{operation: {ports: ['9000']}}]}]}",
            )],
            tcp(),
            NotAllowed,
        ),
        row(
            "ALLOW with methods is invalid for TCP",
            &[(
                "foo/tcp",
                "{rules: [{to: [{operation: {methods: [GET], ports: ['8080']}}]}]}",
            )],
            tcp(),
            NotAllowed,
        ),
        row(
            "ALLOW with methods still works for HTTP",
            &[(
                "foo/tcp",
                "{rules: [{to: [{operation: {methods: [GET], ports: ['8080']}}]}]}",
            )],
            get(),
            AllowedBy("foo/tcp"),
        ),
        row(
            "ALLOW with paths is invalid for TCP",
            &[("foo/tcp", "{rules: [{to: [{operation: {paths: ['*']}}]}]}")],
            tcp(),
            NotAllowed,
        ),
        row(
            "ALLOW with hosts is invalid for TCP",
            &[("foo/tcp", "{rules: [{to: [{operation: {notHosts: [x]}}]}]}")],
            tcp(),
            NotAllowed,
        ),
        row(
            "ALLOW with requestPrincipals is invalid for TCP",
            &[(
                "foo/tcp",
                "{rules: [{from: [{source: {requestPrincipals: ['*']}}]}]}",
            )],
            tcp(),
            NotAllowed,
        ),
        row(
            "ALLOW: one HTTP-only source voids the whole rule",
            &[(
                "foo/tcp",
                "{rules: [{from: [{source: {requestPrincipals: ['*']}}, {source: {namespaces: [default]}}]}]}",
            )],
            tcp(),
            NotAllowed,
        ),
        row(
            "ALLOW with a header condition is invalid for TCP",
            &[(
                "foo/tcp",
                "{rules: [{when: [{key: 'request.headers[x]', notValues: [y]}]}]}",
            )],
            tcp(),
            NotAllowed,
        ),
        row(
            "ALLOW with a claim condition is invalid for TCP",
            &[(
                "foo/tcp",
                "{rules: [{when: [{key: 'request.auth.claims[iss]', values: ['*']}]}]}",
            )],
            tcp(),
            NotAllowed,
        ),
        row(
            "ALLOW: another rule without HTTP fields still allows",
            &[(
                "foo/tcp",
                "{rules: [{to: [{operation: {methods: [GET]}}]}, {from: [{source: {principals: [cluster.local/ns/default/sa/sleep]}}]}]}",
            )],
            tcp(),
            AllowedBy("foo/tcp"),
        ),
        row(
            "ALLOW with TCP conditions",
            &[(
                "foo/tcp",
                "{rules: [{when: [{key: source.ip, values: [10.0.0.0/8]}, {key: destination.port, values: ['8080']}]}]}",
            )],
            tcp(),
            AllowedBy("foo/tcp"),
        ),
        row(
            "DENY with methods denies all TCP",
            &[(
                "foo/deny",
                "{action: DENY, rules: [{to: [{operation: {methods: [GET]}}]}]}",
            )],
            tcp(),
            DeniedBy("foo/deny"),
        ),
        row(
            "DENY with notMethods denies all TCP",
            &[(
                "foo/deny",
                "{action: DENY, rules: [{to: [{operation: {notMethods: [GET]}}]}]}",
            )],
            tcp(),
            DeniedBy("foo/deny"),
        ),
        row(
            "DENY with methods and the port",
            &[(
                "foo/deny",
                "{action: DENY, rules: [{to: [{operation: {methods: [GET], ports: ['8080']}}]}]}",
            )],
            tcp(),
            DeniedBy("foo/deny"),
        ),
        row(
            "DENY with methods and another port",
            &[(
                "foo/deny",
                "{action: DENY, rules: [{to: [{operation: {methods: [GET], ports: ['9000']}}]}]}",
            )],
            tcp(),
            Open,
        ),
        row(
            "DENY without a JWT denies all TCP",
            &[(
                "foo/deny",
                "{action: DENY, rules: [{from: [{source: {notRequestPrincipals: ['*']}}]}]}",
            )],
            tcp(),
            DeniedBy("foo/deny"),
        ),
        row(
            "DENY on a header denies all TCP",
            &[(
                "foo/deny",
                "{action: DENY, rules: [{when: [{key: 'request.headers[x-evil]', values: ['1']}]}]}",
            )],
            tcp(),
            DeniedBy("foo/deny"),
        ),
        row(
            "DENY keeps its TCP fields",
            &[(
                "foo/deny",
                "{action: DENY, rules: [{from: [{source: {namespaces: [prod]}}], to: [{operation: {paths: [/admin]}}]}]}",
            )],
            tcp(),
            Open,
        ),
        row(
            "AUDIT with paths audits all TCP",
            &[(
                "foo/audit",
                "{action: AUDIT, rules: [{to: [{operation: {paths: [/admin]}}]}]}",
            )],
            tcp(),
            Open,
        )
        .audited_by("foo/audit"),
    ]);
}

use clap::Parser;

use super::*;

fn rules(args: &[&str]) -> Rules {
    Rules::try_parse_from(std::iter::once("iptables").chain(args.iter().copied()))
        .expect("flags parse")
}

#[test]
fn defaults_redirect_everything_but_the_proxy_and_loopback() {
    let text = restore_input(&rules(&[]), Family::V4);
    assert_eq!(
        text,
        "\
*nat
:MESH_INBOUND - [0:0]
:MESH_IN_REDIRECT - [0:0]
:MESH_OUTPUT - [0:0]
:MESH_REDIRECT - [0:0]
-A MESH_INBOUND -p tcp --dport 15000 -j RETURN
-A MESH_INBOUND -p tcp --dport 15001 -j RETURN
-A MESH_INBOUND -p tcp --dport 15006 -j RETURN
-A MESH_INBOUND -p tcp --dport 15020 -j RETURN
-A MESH_INBOUND -p tcp --dport 15021 -j RETURN
-A MESH_INBOUND -p tcp -j MESH_IN_REDIRECT
-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A MESH_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A MESH_OUTPUT -d 127.0.0.1/32 -j RETURN
-A MESH_OUTPUT -o lo -j RETURN
-A MESH_OUTPUT -j MESH_REDIRECT
-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
"
    );
}

#[test]
fn exclusions_and_inclusions_of_one_family_only() {
    let rules = rules(&[
        "--proxy-uid=2000",
        "--inbound-port=16006",
        "--outbound-port=16001",
        "--exclude-inbound-ports=22,15021",
        "--exclude-outbound-ports=5432",
        "--exclude-outbound-cidrs=169.254.169.254/32,fd00::/8",
        "--include-outbound-cidrs=10.0.0.0/8,fd00:1::/64",
        "--include-inbound-ports=8080,9090",
        "--ipv6",
    ]);
    assert_eq!(
        restore_input(&rules, Family::V4),
        "\
*nat
:MESH_INBOUND - [0:0]
:MESH_IN_REDIRECT - [0:0]
:MESH_OUTPUT - [0:0]
:MESH_REDIRECT - [0:0]
-A MESH_INBOUND -p tcp --dport 22 -j RETURN
-A MESH_INBOUND -p tcp --dport 15000 -j RETURN
-A MESH_INBOUND -p tcp --dport 15001 -j RETURN
-A MESH_INBOUND -p tcp --dport 15006 -j RETURN
-A MESH_INBOUND -p tcp --dport 15020 -j RETURN
-A MESH_INBOUND -p tcp --dport 15021 -j RETURN
-A MESH_INBOUND -p tcp --dport 16001 -j RETURN
-A MESH_INBOUND -p tcp --dport 16006 -j RETURN
-A MESH_INBOUND -p tcp --dport 8080 -j MESH_IN_REDIRECT
-A MESH_INBOUND -p tcp --dport 9090 -j MESH_IN_REDIRECT
-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006
-A MESH_OUTPUT -m owner --uid-owner 2000 -j RETURN
-A MESH_OUTPUT -d 127.0.0.1/32 -j RETURN
-A MESH_OUTPUT -o lo -j RETURN
-A MESH_OUTPUT -p tcp --dport 5432 -j RETURN
-A MESH_OUTPUT -d 169.254.169.254/32 -j RETURN
-A MESH_OUTPUT -d 10.0.0.0/8 -j MESH_REDIRECT
-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports 16001
COMMIT
"
    );
    let v6 = restore_input(&rules, Family::V6);
    assert!(v6.contains("-A MESH_OUTPUT -d ::1/128 -j RETURN\n"), "{v6}");
    assert!(
        v6.contains("-A MESH_OUTPUT -d fd00::/8 -j RETURN\n"),
        "{v6}"
    );
    assert!(
        v6.contains("-A MESH_OUTPUT -d fd00:1::/64 -j MESH_REDIRECT\n"),
        "{v6}"
    );
    assert!(!v6.contains("10.0.0.0"), "{v6}");
    assert_eq!(rules.families(), vec![Family::V4, Family::V6]);
}

#[test]
fn flags_are_checked() {
    let parse = |args: &[&str]| {
        Rules::try_parse_from(std::iter::once("iptables").chain(args.iter().copied()))
    };
    assert!(parse(&["--exclude-outbound-cidrs=10.0.0.0/33"]).is_err());
    assert!(parse(&["--exclude-outbound-cidrs=fd00::/129"]).is_err());
    assert!(parse(&["--exclude-outbound-cidrs=example.com"]).is_err());
    assert!(parse(&["--include-outbound-cidrs=10.0.0.0/8,x"]).is_err());
    assert!(parse(&["--exclude-inbound-ports=70000"]).is_err());
    assert!(parse(&["--include-inbound-ports=http"]).is_err());
    let host = parse(&["--exclude-outbound-cidrs=10.1.2.3"]).expect("a bare address");
    assert_eq!(host.exclude_outbound_cidrs[0].to_string(), "10.1.2.3/32");
    assert_eq!(rules(&[]).families(), vec![Family::V4]);
}

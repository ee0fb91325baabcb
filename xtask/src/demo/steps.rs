//! The walkthrough's steps. Each applies Istio config to the running mesh, sends traffic
//! into the frontend (productpage), and checks what the echo apps down the chain report:
//! which reviews version answered, with what status, how long the hop took, and what the
//! hop to ratings came to.

use std::collections::BTreeMap;

use anyhow::Context;

use super::Ctx;
use super::client::{Answer, Hop};

/// The example's file of DestinationRules (the subsets of every service); steps that
/// change a rule rewrite its document there, and the walkthrough puts the file back.
pub const RULES_FILE: &str = "destination-rules.yaml";
/// Where the other steps write their objects.
const STEP_FILE: &str = "demo-step.yaml";

#[derive(Debug, Clone, Copy)]
pub enum Step {
    Baseline,
    HeaderRouting,
    Canary,
    Faults,
    Retries,
    OutlierDetection,
    ConsistentHash,
    MutualTls,
    Authorization,
}

pub const ALL: [Step; 9] = [
    Step::Baseline,
    Step::HeaderRouting,
    Step::Canary,
    Step::Faults,
    Step::Retries,
    Step::OutlierDetection,
    Step::ConsistentHash,
    Step::MutualTls,
    Step::Authorization,
];

impl Step {
    pub fn title(self) -> &'static str {
        match self {
            Step::Baseline => "No routing rules: reviews is balanced over its three versions",
            Step::HeaderRouting => {
                "Routing by header: end-user jason gets reviews v2, everyone else v1"
            }
            Step::Canary => "A canary: 90/10 between reviews v1 and v3, then 50/50",
            Step::Faults => "Fault injection: a 400 ms delay, then 503 for half the requests",
            Step::Retries => "Retries hide a flaky version: reviews v3 fails every other request",
            Step::OutlierDetection => "Outlier detection ejects the broken ratings endpoint",
            Step::ConsistentHash => {
                "Consistent hashing: each end-user sticks to one reviews version"
            }
            Step::MutualTls => "Mutual TLS STRICT: every hop authenticated, plaintext refused",
            Step::Authorization => "Authorization: only productpage may call reviews",
        }
    }

    pub fn why(self) -> &'static str {
        match self {
            Step::Baseline => {
                "Before any rule: the sidecars balance requests over every endpoint. ratings v2 is broken on purpose (it answers 500)."
            }
            Step::HeaderRouting => {
                "A VirtualService matches a header productpage forwards and picks a DestinationRule subset."
            }
            Step::Canary => {
                "Weighted destinations shift a share of live traffic to a new version without touching the apps."
            }
            Step::Faults => {
                "The caller's sidecar injects the delay or the error: resilience is tested without breaking anything."
            }
            Step::Retries => {
                "The caller's sidecar retries a 5xx on another attempt, so users never see v3's failures."
            }
            Step::OutlierDetection => {
                "A DestinationRule's outlierDetection takes an endpoint out of the pool after a 5xx: the circuit opens."
            }
            Step::ConsistentHash => {
                "loadBalancer.consistentHash on a header keeps a user's requests on one endpoint (session affinity)."
            }
            Step::MutualTls => {
                "Sidecars already talk mTLS to each other (auto-mTLS); PeerAuthentication STRICT refuses anything else. productpage stays PERMISSIVE: it is the edge this demo calls in plaintext."
            }
            Step::Authorization => {
                "An AuthorizationPolicy allows reviews' callers by SPIFFE identity; ratings' request is denied with 403."
            }
        }
    }

    pub async fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        match self {
            Step::Baseline => baseline(ctx).await,
            Step::HeaderRouting => header_routing(ctx).await,
            Step::Canary => canary(ctx).await,
            Step::Faults => faults(ctx).await,
            Step::Retries => retries(ctx).await,
            Step::OutlierDetection => outlier_detection(ctx).await,
            Step::ConsistentHash => consistent_hash(ctx).await,
            Step::MutualTls => mutual_tls(ctx).await,
            Step::Authorization => authorization(ctx).await,
        }
    }
}

/// `n` requests into productpage with `headers`, one after the other.
async fn browse(ctx: &Ctx, n: usize, headers: &[(&str, &str)]) -> anyhow::Result<Vec<Answer>> {
    let entry = ctx.service_workload("productpage")?.inbound;
    let mut answers = Vec::with_capacity(n);
    for _ in 0..n {
        answers.push(
            ctx.http
                .get(entry, "productpage:9080", "/", headers)
                .await?,
        );
    }
    Ok(answers)
}

/// productpage's hop to reviews in each answer; an answer without one is an error (the
/// frontend itself failed, which no step expects).
fn hops(answers: &[Answer]) -> anyhow::Result<Vec<Hop>> {
    answers
        .iter()
        .map(|a| {
            a.hop("reviews").with_context(|| {
                format!(
                    "productpage answered {} without its call to reviews: {}",
                    a.status, a.text
                )
            })
        })
        .collect()
}

/// How many hops each reviews version answered (failed calls count as `none`).
fn versions(hops: &[Hop]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for hop in hops {
        let version = hop.version.clone().unwrap_or_else(|| "none".to_owned());
        *counts.entry(version).or_insert(0) += 1;
    }
    counts
}

fn share(count: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        count as f64 * 100.0 / of as f64
    }
}

fn describe(counts: &BTreeMap<String, usize>, total: usize) -> String {
    counts
        .iter()
        .map(|(version, n)| format!("{version} {n} ({:.0}%)", share(*n, total)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn failed(hop: &Hop) -> bool {
    hop.status.is_none_or(|s| s >= 500)
}

/// The hops to ratings that reviews made, with whether each failed.
fn ratings_hops(hops: &[Hop]) -> Vec<&Hop> {
    hops.iter().filter_map(|h| h.next.as_deref()).collect()
}

async fn baseline(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = 90;
    let hops = hops(&browse(ctx, n, &[]).await?)?;
    let counts = versions(&hops);
    ctx.measured(format!(
        "reviews answered by version: {}",
        describe(&counts, n)
    ));
    ctx.measured(
        "v3 answers fewer: its 503s are retried on another version by productpage's sidecar (Istio's default retry policy)",
    );
    for version in ["v1", "v2", "v3"] {
        let got = counts.get(version).copied().unwrap_or(0);
        ctx.check(format!("reviews {version} answers requests"), got >= 2);
    }
    ctx.check(
        "no request to reviews failed",
        hops.iter().all(|h| h.status == Some(200)),
    );
    let ratings = ratings_hops(&hops);
    let failures = ratings.iter().filter(|h| failed(h)).count();
    ctx.measured(format!(
        "reviews -> ratings: {failures} of {} calls failed ({:.0}%)",
        ratings.len(),
        share(failures, ratings.len())
    ));
    ctx.check(
        "about half of the calls to ratings fail while its broken v2 is in the pool (20-80%)",
        (20.0..=80.0).contains(&share(failures, ratings.len())),
    );
    Ok(())
}

const SUBSET_ROUTE: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
"#;

async fn header_routing(ctx: &mut Ctx) -> anyhow::Result<()> {
    ctx.apply(&[(
        STEP_FILE,
        format!(
            "{SUBSET_ROUTE}  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]
    route: [{{destination: {{host: reviews, subset: v2}}}}]
  - route: [{{destination: {{host: reviews, subset: v1}}}}]
"
        ),
    )])
    .await?;
    let n = 20;
    let jason = versions(&hops(&browse(ctx, n, &[("end-user", "jason")]).await?)?);
    let others = versions(&hops(&browse(ctx, n, &[("end-user", "alice")]).await?)?);
    ctx.measured(format!("end-user jason: {}", describe(&jason, n)));
    ctx.measured(format!("end-user alice: {}", describe(&others, n)));
    ctx.check(
        "every request of jason reached v2",
        jason.get("v2") == Some(&n),
    );
    ctx.check(
        "every other request reached v1",
        others.get("v1") == Some(&n),
    );
    Ok(())
}

fn weighted(v1: u32, v3: u32) -> String {
    format!(
        "{SUBSET_ROUTE}  - route:
    - {{destination: {{host: reviews, subset: v1}}, weight: {v1}}}
    - {{destination: {{host: reviews, subset: v3}}, weight: {v3}}}
"
    )
}

async fn canary(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = 200;
    for (v1, v3, range) in [(90, 10, 4.0..=17.0), (50, 50, 38.0..=62.0)] {
        ctx.apply(&[(STEP_FILE, weighted(v1, v3))]).await?;
        let counts = versions(&hops(&browse(ctx, n, &[]).await?)?);
        let to_v3 = counts.get("v3").copied().unwrap_or(0);
        ctx.measured(format!("weights {v1}/{v3}: {}", describe(&counts, n)));
        ctx.check(
            format!(
                "v3 got about {v3}% ({:.0}-{:.0}%), v1 the rest",
                range.start(),
                range.end()
            ),
            range.contains(&share(to_v3, n)) && counts.get("v1").copied().unwrap_or(0) + to_v3 == n,
        );
    }
    Ok(())
}

fn faulted(fault: &str) -> String {
    format!(
        "{SUBSET_ROUTE}  - fault: {fault}
    route: [{{destination: {{host: reviews, subset: v1}}}}]
"
    )
}

async fn faults(ctx: &mut Ctx) -> anyhow::Result<()> {
    ctx.apply(&[(
        STEP_FILE,
        faulted("{delay: {fixedDelay: 400ms, percentage: {value: 100}}}"),
    )])
    .await?;
    let delayed = hops(&browse(ctx, 10, &[]).await?)?;
    let fastest = delayed
        .iter()
        .map(|h| h.duration_ms)
        .fold(f64::INFINITY, f64::min);
    ctx.measured(format!(
        "productpage -> reviews took at least {fastest:.0} ms in 10 requests"
    ));
    ctx.check(
        "every call to reviews was delayed 400 ms",
        fastest >= 395.0 && delayed.iter().all(|h| h.status == Some(200)),
    );

    ctx.apply(&[(
        STEP_FILE,
        faulted("{abort: {httpStatus: 503, percentage: {value: 50}}}"),
    )])
    .await?;
    let n = 100;
    let aborted = hops(&browse(ctx, n, &[]).await?)?;
    let injected = aborted
        .iter()
        .filter(|h| {
            h.status == Some(503)
                && h.text
                    .as_deref()
                    .is_some_and(|t| t.contains("fault filter abort"))
        })
        .count();
    ctx.measured(format!(
        "{injected} of {n} calls to reviews got the injected 503 ({:.0}%)",
        share(injected, n)
    ));
    ctx.check(
        "about half of the calls were aborted by the sidecar (30-70%), the rest reached v1",
        (30.0..=70.0).contains(&share(injected, n))
            && aborted.iter().filter(|h| h.status == Some(200)).count() == n - injected,
    );
    Ok(())
}

fn to_v3(retries: &str) -> String {
    format!(
        "{SUBSET_ROUTE}  - route: [{{destination: {{host: reviews, subset: v3}}}}]
{retries}"
    )
}

async fn retries(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = 100;
    ctx.apply(&[(STEP_FILE, to_v3("    retries: {attempts: 0}\n"))])
        .await?;
    let bare = hops(&browse(ctx, n, &[]).await?)?;
    let bare_failures = bare.iter().filter(|h| failed(h)).count();
    ctx.measured(format!(
        "without retries: {bare_failures} of {n} calls to reviews v3 failed"
    ));
    ctx.check(
        "reviews v3 fails about half of the requests (40-60%)",
        (40.0..=60.0).contains(&share(bare_failures, n)),
    );

    ctx.apply(&[(
        STEP_FILE,
        to_v3("    retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}\n"),
    )])
    .await?;
    let retried = hops(&browse(ctx, n, &[]).await?)?;
    let failures = retried.iter().filter(|h| failed(h)).count();
    let slowest = retried.iter().map(|h| h.duration_ms).fold(0.0, f64::max);
    ctx.measured(format!(
        "with retries: {failures} of {n} calls failed; the slowest took {slowest:.0} ms"
    ));
    ctx.check("no request failed", failures == 0);
    Ok(())
}

async fn outlier_detection(ctx: &mut Ctx) -> anyhow::Result<()> {
    // Only reviews v2 calls ratings in this step: one sidecar's view of ratings.
    let only_v2 =
        format!("{SUBSET_ROUTE}  - route: [{{destination: {{host: reviews, subset: v2}}}}]\n");
    ctx.apply(&[(STEP_FILE, only_v2)]).await?;
    let before = hops(&browse(ctx, 20, &[]).await?)?;
    let before_ratings = ratings_hops(&before);
    let before_failed = before_ratings.iter().filter(|h| failed(h)).count();
    ctx.measured(format!(
        "before: {before_failed} of {} calls to ratings failed",
        before_ratings.len()
    ));

    ctx.apply_rule(
        RULES_FILE,
        "ratings",
        r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3m, maxEjectionPercent: 100}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"#,
    )
    .await?;
    let n = 40;
    let after = hops(&browse(ctx, n, &[]).await?)?;
    let ratings = ratings_hops(&after);
    let failures: Vec<usize> = ratings
        .iter()
        .enumerate()
        .filter(|(_, h)| failed(h))
        .map(|(i, _)| i)
        .collect();
    ctx.measured(format!(
        "after: {} of {} calls to ratings failed, at positions {failures:?}",
        failures.len(),
        ratings.len()
    ));
    ctx.check(
        "before the rule, calls to the broken endpoint failed",
        before_failed > 0,
    );
    ctx.check(
        "with the rule, at most the first failure reached reviews, then none",
        failures.len() <= 1 && ratings.len() == n,
    );
    let reviews = ctx.workload("reviews-v2")?.admin;
    let clusters = ctx.http.get(reviews, "admin", "/clusters", &[]).await?;
    let ejected: Vec<String> = clusters
        .json
        .as_ref()
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter(|c| c["name"].as_str().is_some_and(|n| n.contains("ratings.")))
        .flat_map(|c| c["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["health"] == "ejected")
        .map(|e| format!("{} ({})", e["address"], e["labels"]["version"]))
        .collect();
    ctx.measured(format!(
        "reviews-v2's sidecar /clusters: ejected {ejected:?}"
    ));
    ctx.check(
        "the sidecar shows ratings v2's endpoint ejected",
        ejected.len() == 1 && ejected[0].contains("v2"),
    );
    Ok(())
}

async fn consistent_hash(ctx: &mut Ctx) -> anyhow::Result<()> {
    ctx.apply_rule(
        RULES_FILE,
        "reviews",
        r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: end-user}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"#,
    )
    .await?;
    let mut chosen = BTreeMap::new();
    let mut sticky = true;
    for user in 0..10 {
        let name = format!("user-{user}");
        let counts = versions(&hops(&browse(ctx, 6, &[("end-user", &name)]).await?)?);
        sticky &= counts.len() == 1;
        chosen.insert(name, counts.keys().cloned().collect::<Vec<_>>().join("+"));
    }
    let distinct: std::collections::BTreeSet<_> = chosen.values().collect();
    ctx.measured(format!("6 requests per user went to: {chosen:?}"));
    ctx.check("each user's requests all reached one version", sticky);
    ctx.check(
        "users are spread over more than one version",
        distinct.len() > 1,
    );
    Ok(())
}

async fn mutual_tls(ctx: &mut Ctx) -> anyhow::Result<()> {
    ctx.apply(&[(
        STEP_FILE,
        r#"apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: productpage}
spec:
  selector: {matchLabels: {app: productpage}}
  mtls: {mode: PERMISSIVE}
"#
        .to_owned(),
    )])
    .await?;
    let hops = hops(&browse(ctx, 10, &[]).await?)?;
    let productpage = ctx.service_workload("productpage")?.identity.clone();
    let reviews_id = ctx.service_workload("reviews")?.identity.clone();
    let reviews_saw: std::collections::BTreeSet<_> =
        hops.iter().filter_map(|h| h.peer.clone()).collect();
    let ratings_saw: std::collections::BTreeSet<_> = ratings_hops(&hops)
        .iter()
        .filter_map(|h| h.peer.clone())
        .collect();
    ctx.measured(format!("reviews saw callers {reviews_saw:?}"));
    ctx.measured(format!("ratings saw callers {ratings_saw:?}"));
    ctx.check(
        "every call to reviews succeeded over mTLS",
        hops.iter().all(|h| h.status == Some(200)),
    );
    ctx.check(
        "reviews' sidecar verified productpage's identity",
        reviews_saw.len() == 1 && reviews_saw.contains(&productpage),
    );
    ctx.check(
        "ratings' sidecar verified reviews' identity",
        ratings_saw.contains(&reviews_id),
    );
    let reviews = ctx.service_workload("reviews")?.inbound;
    let plaintext = ctx.http.get(reviews, "reviews:9080", "/", &[]).await;
    ctx.measured(match &plaintext {
        Ok(answer) => format!("plaintext to reviews' sidecar: {}", answer.status),
        Err(error) => format!("plaintext to reviews' sidecar: refused ({error:#})"),
    });
    ctx.check(
        "a plaintext client is refused by reviews",
        plaintext.is_err(),
    );
    Ok(())
}

async fn authorization(ctx: &mut Ctx) -> anyhow::Result<()> {
    // Principals are written without `spiffe://`.
    let caller = ctx.service_workload("productpage")?.identity.clone();
    let principal = caller.trim_start_matches("spiffe://").to_owned();
    ctx.apply(&[(
        STEP_FILE,
        format!(
            r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: reviews-callers}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  action: ALLOW
  rules:
  - from: [{{source: {{principals: [{principal}]}}}}]
"#
        ),
    )])
    .await?;
    let hops = hops(&browse(ctx, 10, &[]).await?)?;
    ctx.check(
        "productpage's calls to reviews are allowed",
        hops.iter().all(|h| h.status == Some(200)),
    );
    // ratings' app calling reviews, through ratings' own sidecar.
    let ratings = ctx.service_workload("ratings")?.outbound;
    let denied = ctx.http.get(ratings, "reviews:9080", "/", &[]).await?;
    ctx.measured(format!(
        "ratings -> reviews: {} {:?}",
        denied.status,
        denied.text.trim()
    ));
    ctx.check(
        "ratings' call to reviews is denied with 403",
        denied.status == http::StatusCode::FORBIDDEN && denied.text.contains("RBAC: access denied"),
    );
    let mut counted = 0.0;
    for workload in ctx
        .target
        .workloads
        .iter()
        .filter(|w| w.service == "reviews")
    {
        let metrics = ctx
            .http
            .get(workload.metrics, "metrics", "/stats/prometheus", &[])
            .await?;
        counted += metrics
            .text
            .lines()
            .filter(|l| l.starts_with("mesh_authz_denied_total"))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    ctx.measured(format!("reviews' sidecars count {counted} denial(s)"));
    ctx.check(
        "the denial is counted in mesh_authz_denied_total",
        counted >= 1.0,
    );
    Ok(())
}

/// `text`, a multi-document YAML file, with the DestinationRule named `name` replaced by
/// `rule` (added when absent); comments and the other documents are kept as they are.
pub(super) fn with_rule(text: &str, name: &str, rule: &str) -> anyhow::Result<String> {
    let mut documents: Vec<String> = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    let is_the_rule = |document: &str| -> bool {
        let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(document) else {
            return false;
        };
        value["kind"].as_str() == Some("DestinationRule")
            && value["metadata"]["name"].as_str() == Some(name)
    };
    match documents.iter().position(|d| is_the_rule(d)) {
        Some(index) => documents[index] = rule.to_owned(),
        None => documents.push(rule.to_owned()),
    }
    Ok(documents
        .into_iter()
        .filter(|d| !d.trim().is_empty())
        .collect::<Vec<_>>()
        .join("---\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_is_replaced_in_place_and_the_rest_kept() -> anyhow::Result<()> {
        let text = "# rules\napiVersion: v1\nkind: DestinationRule\nmetadata: {name: a}\n---\nkind: DestinationRule\nmetadata: {name: b}\nspec: {host: b}\n";
        let replaced = with_rule(
            text,
            "b",
            "kind: DestinationRule\nmetadata: {name: b}\nspec: {host: B}\n",
        )?;
        assert_eq!(
            replaced,
            "# rules\napiVersion: v1\nkind: DestinationRule\nmetadata: {name: a}\n---\nkind: DestinationRule\nmetadata: {name: b}\nspec: {host: B}\n"
        );
        let added = with_rule(text, "c", "kind: DestinationRule\nmetadata: {name: c}\n")?;
        assert!(
            added.ends_with("---\nkind: DestinationRule\nmetadata: {name: c}\n"),
            "{added}"
        );
        Ok(())
    }
}

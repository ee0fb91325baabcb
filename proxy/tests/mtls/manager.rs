//! The certificate manager: renewal at half-life and retries on tokio's paused clock with
//! an in-process CA; then the CA client and the manager against a fake citadel over TLS;
//! then the real binary with `--ca-addr`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use mesh_proxy::identity::{CaClient, CertificateManager, Policy};
use tokio::time::Instant;

use super::ca::{TestCa, TestSource, unix};
use super::citadel::FakeCitadel;
use super::id;
use super::net::within;
use crate::support::{DEADLINE, Proxy, get, metric_value};

const HOUR: Duration = Duration::from_secs(3600);

/// Waits (on whatever clock the test runs) until `done`.
async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn renews_at_half_life_less_a_little_jitter() {
    let source = Arc::new(TestSource::new(TestCa::root("root")));
    let (manager, task) = CertificateManager::start(id("cart"), source.clone(), Policy::new(HOUR));
    let first = manager.ready().await;
    let installed = Instant::now();
    let mut updates = manager.watch();
    updates.borrow_and_update();

    updates.changed().await.unwrap();
    let waited = installed.elapsed();
    let second = manager.current().unwrap();
    assert_ne!(second.leaf().serial, first.leaf().serial);
    assert_eq!(source.calls(), 2);
    // Half-life less up to a tenth of the lifetime; validity is in whole seconds, so the
    // lifetime left at install may be up to a second short.
    let (low, high) = (HOUR.mul_f64(0.4) - Duration::from_secs(1), HOUR / 2);
    assert!(waited >= low && waited <= high, "renewed after {waited:?}");
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_failing_ca_keeps_the_current_certificate_and_retries_with_growing_waits() {
    let mut source = TestSource::new(TestCa::root("root"));
    source.fail = Box::new(|call| (2..=4).contains(&call));
    let source = Arc::new(source);
    let (manager, task) = CertificateManager::start(id("cart"), source.clone(), Policy::new(HOUR));
    let first = manager.ready().await;

    until("three failed renewals", 2 * HOUR, || source.calls() >= 4).await;
    let current = manager.current().unwrap();
    assert_eq!(
        current.leaf().serial,
        first.leaf().serial,
        "still the first"
    );
    let status = manager.status();
    assert_eq!(status.failures, 3);
    let error = status.last_error.unwrap_or_default();
    assert!(error.contains("test CA unavailable (call 4)"), "{error}");

    until("renewed after the outage", HOUR, || source.calls() >= 5).await;
    let renewed = manager.current().unwrap();
    assert_ne!(renewed.leaf().serial, first.leaf().serial);
    assert_eq!(manager.status().failures, 0);
    let gaps = source.gaps();
    // Calls 2, 3, 4 failed: the waits after them are at most 1 s, 2 s, 4 s, and grow.
    let retries = &gaps[1..];
    assert!(retries.windows(2).all(|w| w[0] <= w[1]), "{retries:?}");
    assert!(
        retries.iter().all(|gap| *gap <= Duration::from_secs(4)),
        "{retries:?}"
    );
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_certificate_for_someone_else_is_never_installed() {
    let mut source = TestSource::new(TestCa::root("root"));
    source.impostor = Some(id("admin"));
    let source = Arc::new(source);
    let (manager, task) = CertificateManager::start(id("cart"), source.clone(), Policy::new(HOUR));

    until("two attempts", HOUR, || source.calls() >= 2).await;
    assert!(manager.current().is_none());
    let error = manager.status().last_error.unwrap_or_default();
    assert!(
        error.contains("sa/admin") && error.contains("sa/cart"),
        "{error}"
    );
    task.abort();
}

#[tokio::test]
async fn the_ca_client_sends_one_spiffe_san_and_the_current_token_over_verified_tls() {
    let citadel = FakeCitadel::start(TestCa::root("citadel root")).await;
    let client = ca_client(&citadel);

    let cert = client.request(&id("cart"), HOUR).await.unwrap();
    let seen = citadel.seen();
    assert_eq!(seen[0].sans, [format!("URI:{}", id("cart"))]);
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer first-token"));
    assert_eq!(seen[0].validity_seconds, 3600);
    assert_eq!(cert.identity(), &id("cart"));
    assert_eq!(Some(&cert.leaf().serial), seen[0].issued.as_ref());
    assert!(cert.bundle().info()[0].subject.contains("citadel root"));

    std::fs::write(&citadel.token_file, "rotated-token").unwrap();
    client.request(&id("cart"), HOUR).await.unwrap();
    let seen = citadel.seen();
    assert_eq!(
        seen[1].authorization.as_deref(),
        Some("Bearer rotated-token")
    );
}

#[tokio::test]
async fn the_ca_client_refuses_a_ca_the_trust_bundle_does_not_vouch_for() {
    let citadel = FakeCitadel::start(TestCa::root("citadel root")).await;
    let impostor_bundle = citadel.bundle_file.with_file_name("other-root.pem");
    std::fs::write(&impostor_bundle, TestCa::root("other root").root_pem).unwrap();
    let client = CaClient::new(&citadel.address(), impostor_bundle, None).unwrap();

    let error = client.request(&id("cart"), HOUR).await.err().unwrap();
    let text = error_chain(&error);
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(citadel.seen().is_empty(), "no CSR reached the CA");
}

#[tokio::test]
async fn the_manager_renews_from_citadel_at_half_life() {
    let citadel = FakeCitadel::start(TestCa::root("citadel root")).await;
    let ttl = Duration::from_secs(4);
    let (manager, task) =
        CertificateManager::start(id("cart"), Arc::new(ca_client(&citadel)), fast(ttl));
    let first = within(manager.ready()).await;

    let seen = citadel.wait_seen(2).await;
    let renewed_after = seen[1].at.duration_since(first.not_before()).unwrap();
    // 40-50 % of 4 s after `not_before`, plus the time to connect.
    assert!(
        renewed_after >= Duration::from_millis(1550)
            && renewed_after <= Duration::from_millis(2600),
        "renewed {renewed_after:?} after not_before"
    );
    until("the renewal installed", DEADLINE, || {
        manager
            .current()
            .is_some_and(|c| Some(&c.leaf().serial) == seen[1].issued.as_ref())
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn during_a_citadel_outage_the_current_certificate_stays_and_renewal_retries() {
    let citadel = FakeCitadel::start(TestCa::root("citadel root")).await;
    let (manager, task) = CertificateManager::start(
        id("cart"),
        Arc::new(ca_client(&citadel)),
        fast(Duration::from_secs(4)),
    );
    let first = within(manager.ready()).await;
    citadel.set_down(true);

    let seen = citadel.wait_seen(4).await;
    assert!(seen[1..].iter().all(|s| s.issued.is_none()));
    until("three failures counted", DEADLINE, || {
        manager.status().failures >= 3
    })
    .await;
    assert_eq!(
        manager.current().unwrap().leaf().serial,
        first.leaf().serial
    );
    let error = manager.status().last_error.unwrap_or_default();
    assert!(error.contains("fake citadel is down"), "{error}");

    citadel.set_down(false);
    until("renewed once citadel is back", DEADLINE, || {
        manager
            .current()
            .is_some_and(|c| c.leaf().serial != first.leaf().serial)
    })
    .await;
    assert_eq!(manager.status().failures, 0);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_is_ready_only_with_its_certificate_and_shows_it_on_certs() {
    let citadel = FakeCitadel::start(TestCa::root("mesh root")).await;
    citadel.set_down(true);
    let flags = [
        "--ca-addr",
        &citadel.address(),
        "--trust-bundle",
        citadel.bundle_file.to_str().unwrap(),
        "--ca-token-file",
        citadel.token_file.to_str().unwrap(),
        "--namespace",
        "shop",
        "--service-account",
        "cart",
        "--cert-ttl",
        "1h",
    ];
    let proxy = Proxy::start_with(SNAPSHOT, &flags);
    proxy.wait_applied(1).await;
    citadel.wait_seen(1).await;
    let (status, _, body) = get(proxy.health, "/healthz/ready", &[]).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "ready without a certificate"
    );
    assert!(String::from_utf8_lossy(&body).contains("workload certificate"));

    citadel.set_down(false);
    wait_ready(&proxy).await;
    let issued = citadel.seen().last().unwrap().issued.clone().unwrap();
    let (status, _, body) = get(proxy.admin, "/certs", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !String::from_utf8_lossy(&body).contains("PRIVATE"),
        "a key on /certs"
    );
    let certs: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(certs["identity"], "spiffe://cluster.local/ns/shop/sa/cart");
    assert_eq!(certs["serial"], issued.as_str());
    assert!(
        certs["chain"][0]["issuer"]
            .as_str()
            .unwrap()
            .contains("mesh root")
    );
    assert!(
        certs["trust_bundle"][0]["subject"]
            .as_str()
            .unwrap()
            .contains("mesh root")
    );
    assert!(
        certs["trust_bundle"][0]["not_after"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(certs["renewal"]["failures"], 0);

    let expiry = metric_value(&proxy, "mesh_cert_expiry_timestamp_seconds", &[]).await;
    let now = unix(SystemTime::now()) as f64;
    assert!(
        expiry > now + 3000.0 && expiry <= now + 3601.0,
        "expiry {expiry}, now {now}"
    );
    let failed = metric_value(&proxy, "mesh_cert_renewals_total", &[("result", "failure")]).await;
    let succeeded =
        metric_value(&proxy, "mesh_cert_renewals_total", &[("result", "success")]).await;
    assert!(failed >= 1.0, "failures {failed}");
    assert_eq!(succeeded, 1.0);
}

const SNAPSHOT: &str = r#"version: "1"
listeners: []
"#;

async fn wait_ready(proxy: &Proxy) {
    let start = std::time::Instant::now();
    loop {
        let (status, _, body) = get(proxy.health, "/healthz/ready", &[]).await;
        if status == StatusCode::OK {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "never ready: {}",
            String::from_utf8_lossy(&body)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ca_client(citadel: &FakeCitadel) -> CaClient {
    CaClient::new(
        &citadel.address(),
        citadel.bundle_file.clone(),
        Some(citadel.token_file.clone()),
    )
    .unwrap()
}

/// A short lifetime and quick retries, for tests on the real clock.
fn fast(ttl: Duration) -> Policy {
    Policy {
        ttl,
        retry_base: Duration::from_millis(100),
        retry_cap: Duration::from_millis(400),
        fetch_timeout: Duration::from_secs(5),
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

//! Two sidecars talk mTLS, configured by pilot and identified by citadel: the caller's
//! proxy originates mTLS to the endpoint (it carries Istio's `tlsMode: istio` label), the
//! callee's STRICT inbound listener verifies it, and the app sees the caller's SPIFFE ID.

#![allow(clippy::unwrap_used)]

mod support;

use support::mesh::{CALLEE_ID, CALLER_ID, Mesh, xfcc};

#[tokio::test]
async fn two_sidecars_talk_mtls_and_the_app_sees_the_callers_identity() {
    let mesh = Mesh::start(&[], &[]).await;
    let listeners = mesh.callee.admin_json("/listeners").await;
    assert!(
        listeners
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["mtls"] == "STRICT"),
        "{listeners}"
    );

    let (_, reply) = mesh.first_request().await;
    let xfcc = xfcc(&reply);
    assert!(
        xfcc.contains(&format!("URI={CALLER_ID}")),
        "the app sees the caller's identity: {reply}"
    );
    assert!(xfcc.contains(&format!("By={CALLEE_ID}")), "{xfcc}");

    // STRICT: a plaintext client straight to the callee's inbound port is refused.
    let plain = tokio::time::timeout(
        support::DEADLINE,
        tokio::net::TcpStream::connect(("127.0.0.2", mesh.port)),
    )
    .await
    .unwrap();
    if let Ok(mut stream) = plain {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(support::DEADLINE, stream.read_to_end(&mut answer)).await;
        assert!(
            answer.is_empty(),
            "plaintext was answered: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
}

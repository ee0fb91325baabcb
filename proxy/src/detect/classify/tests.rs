use super::*;

fn known(bytes: &[u8]) -> Protocol {
    match classify(bytes) {
        Verdict::Known(protocol) => protocol,
        Verdict::NeedMore => panic!("{:?} needs more", String::from_utf8_lossy(bytes)),
    }
}

#[test]
fn http1_request_lines() {
    for line in [
        &b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"[..],
        b"POST /orders?id=1 HTTP/1.0\r\n",
        b"OPTIONS * HTTP/1.1\r\n",
        b"CONNECT db:5432 HTTP/1.1\r\n",
        b"GET http://reviews:9080/x HTTP/1.1\r\n",
        b"PROPFIND /dav HTTP/1.1\r\n",
        b"GET / HTTP/1.1",
    ] {
        assert_eq!(
            known(line),
            Protocol::Http1,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn the_h2_preface_is_http2() {
    assert_eq!(known(H2_PREFACE), Protocol::Http2);
    let mut with_settings = H2_PREFACE.to_vec();
    with_settings.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    assert_eq!(known(&with_settings), Protocol::Http2);
}

#[test]
fn a_tls_client_hello_is_tls() {
    assert_eq!(known(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), Protocol::Tls);
    assert_eq!(known(&[0x16, 0x03, 0x03]), Protocol::Tls);
    assert_eq!(known(&[0x16, 0x02, 0x00]), Protocol::Opaque, "not TLS 1.x");
    assert_eq!(known(&[0x16, 0x03, 0x09]), Protocol::Opaque);
}

#[test]
fn every_prefix_of_a_known_protocol_asks_for_more() {
    let request = b"GET /some/path HTTP/1.1";
    for cut in 1..request.len() - 1 {
        assert_eq!(
            classify(&request[..cut]),
            Verdict::NeedMore,
            "{}",
            String::from_utf8_lossy(&request[..cut])
        );
    }
    for cut in 1..H2_PREFACE.len() {
        assert_eq!(classify(&H2_PREFACE[..cut]), Verdict::NeedMore, "{cut}");
    }
    assert_eq!(classify(&[0x16]), Verdict::NeedMore);
    assert_eq!(classify(&[0x16, 0x03]), Verdict::NeedMore);
    assert_eq!(classify(b""), Verdict::NeedMore);
}

#[test]
fn text_protocols_that_start_like_http_stay_opaque() {
    for bytes in [
        &b"GET key\r\n"[..],          // Redis inline command
        b"PING\r\n",                  // Redis
        b"*1\r\n$4\r\nPING\r\n",      // Redis RESP
        b"HELO mail.example.com\r\n", // SMTP, client side
        b"GET / HTTP/2.0\r\n",        // not 1.x
        b"GET / HTTPS/1.1\r\n",
        b"GET  / HTTP/1.1\r\n", // empty target
        b"GET /\r\n",           // HTTP/0.9
        b"GET / HTTP/1.x\r\n",
        b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", // a broken preface
        b"\x00\x00\x00\x08\x04\xd2\x16/",    // PostgreSQL SSLRequest
        b"\x03\x00\x00\x13\x0e\xe0",         // RDP
        b"averyveryveryverylongword and more",
    ] {
        assert_eq!(
            known(bytes),
            Protocol::Opaque,
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn a_request_target_longer_than_the_prefix_is_http() {
    let mut line = b"GET /".to_vec();
    line.resize(MAX_PREFIX, b'a');
    assert_eq!(known(&line), Protocol::Http1);
    line.truncate(MAX_PREFIX - 1);
    assert_eq!(classify(&line), Verdict::NeedMore);
}

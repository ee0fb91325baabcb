//! The server name in a TLS ClientHello, read from peeked bytes: a PASSTHROUGH server must
//! route by SNI and still forward every byte as the client sent it.
//!
//! Only the first handshake record is read (a ClientHello with SNI fits one record in
//! practice). Anything malformed is `Err`, never a panic: the bytes come from the network.

/// What the bytes so far say.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// The record is complete; the SNI if the client sent one.
    Complete(Option<String>),
    /// The record needs at least this many bytes in all.
    NeedMore(usize),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a TLS ClientHello: {0}")]
pub struct NotHello(&'static str);

const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const SERVER_NAME: u16 = 0;
const HOST_NAME: u8 = 0;
/// The record header: type, version, length.
const HEADER: usize = 5;

pub fn parse(bytes: &[u8]) -> Result<Hello, NotHello> {
    if bytes.len() < HEADER {
        return Ok(Hello::NeedMore(HEADER));
    }
    if bytes[0] != HANDSHAKE || bytes[1] != 3 {
        return Err(NotHello("not a handshake record"));
    }
    let length = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
    if bytes.len() < HEADER + length {
        return Ok(Hello::NeedMore(HEADER + length));
    }
    let mut r = Reader(&bytes[HEADER..HEADER + length]);
    if r.u8()? != CLIENT_HELLO {
        return Err(NotHello("not a ClientHello"));
    }
    // The handshake may continue in a later record; what this one holds is enough when
    // the extensions fit, and the common case.
    let _length = r.take(3)?;
    let _version = r.take(2)?;
    let _random = r.take(32)?;
    let session = usize::from(r.u8()?);
    r.take(session)?;
    let suites = usize::from(r.u16()?);
    r.take(suites)?;
    let compression = usize::from(r.u8()?);
    r.take(compression)?;
    if r.0.is_empty() {
        return Ok(Hello::Complete(None));
    }
    let extensions = usize::from(r.u16()?);
    let mut extensions = Reader(r.take(extensions)?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let length = usize::from(extensions.u16()?);
        let body = extensions.take(length)?;
        if kind == SERVER_NAME {
            return server_name(body).map(Hello::Complete);
        }
    }
    Ok(Hello::Complete(None))
}

fn server_name(body: &[u8]) -> Result<Option<String>, NotHello> {
    let mut r = Reader(body);
    let list = usize::from(r.u16()?);
    let mut list = Reader(r.take(list)?);
    while !list.0.is_empty() {
        let kind = list.u8()?;
        let length = usize::from(list.u16()?);
        let name = list.take(length)?;
        if kind == HOST_NAME {
            let name = std::str::from_utf8(name).map_err(|_| NotHello("SNI is not UTF-8"))?;
            return Ok(Some(name.to_ascii_lowercase()));
        }
    }
    Ok(None)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], NotHello> {
        if self.0.len() < n {
            return Err(NotHello("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, NotHello> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, NotHello> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The first flight of a real rustls client.
    fn client_hello(sni: &str) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).expect("name");
        let mut client = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
        let mut bytes = Vec::new();
        client.write_tls(&mut bytes).expect("hello");
        bytes
    }

    #[test]
    fn finds_the_name_a_real_client_sends() {
        let hello = client_hello("Shop.Example.com");
        assert_eq!(
            parse(&hello),
            Ok(Hello::Complete(Some("shop.example.com".into())))
        );
    }

    #[test]
    fn an_ip_address_sends_no_name() {
        assert_eq!(parse(&client_hello("127.0.0.1")), Ok(Hello::Complete(None)));
    }

    #[test]
    fn asks_for_the_rest_of_the_record() {
        let hello = client_hello("a.example.com");
        assert_eq!(parse(&hello[..3]), Ok(Hello::NeedMore(HEADER)));
        assert_eq!(parse(&hello[..40]), Ok(Hello::NeedMore(hello.len())));
    }

    #[test]
    fn garbage_and_every_truncation_are_errors_not_panics() {
        assert!(parse(b"GET / HTTP/1.1\r\n").is_err());
        let mut hello = client_hello("a.example.com");
        // Lie about the lengths inside a complete record: each cut must fail cleanly.
        for cut in HEADER..hello.len() {
            let mut bytes = hello[..cut].to_vec();
            let inner = u16::try_from(cut - HEADER).expect("small");
            bytes[3..5].copy_from_slice(&inner.to_be_bytes());
            let _ = parse(&bytes);
        }
        hello[HEADER] = 2;
        assert_eq!(parse(&hello), Err(NotHello("not a ClientHello")));
    }
}

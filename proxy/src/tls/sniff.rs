//! Telling a TLS client from a plaintext one by its first bytes, as PERMISSIVE listeners
//! must before choosing to terminate TLS or not. Envoy's `tls_inspector` does the same.
//!
//! A ClientHello opens with a handshake record: type 22, version 3.x, a length, and the
//! handshake type 1. No HTTP/1 method, HTTP/2 preface or common protocol starts with 22.

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    ClientHello,
    NotTls,
    /// Everything so far fits a ClientHello; read more (up to [`SNIFF_LEN`] bytes).
    NeedMore,
}

/// How many bytes decide: the record header and the handshake type.
pub const SNIFF_LEN: usize = 6;

const HANDSHAKE_RECORD: u8 = 22;
const CLIENT_HELLO: u8 = 1;
/// A plaintext record carries at most 2^14 bytes.
const MAX_RECORD: u16 = 1 << 14;

pub fn sniff(bytes: &[u8]) -> Sniff {
    let fits = |index: usize, byte: u8| match index {
        0 => byte == HANDSHAKE_RECORD,
        1 => byte == 3,
        // SSL 3.0 to TLS 1.3 (which still says 1.0 or 1.2 here).
        2 => byte <= 4,
        5 => byte == CLIENT_HELLO,
        _ => true,
    };
    if !bytes
        .iter()
        .take(SNIFF_LEN)
        .enumerate()
        .all(|(i, b)| fits(i, *b))
    {
        return Sniff::NotTls;
    }
    if let [_, _, _, high, low, ..] = bytes {
        let length = u16::from_be_bytes([*high, *low]);
        if length == 0 || length > MAX_RECORD {
            return Sniff::NotTls;
        }
    }
    if bytes.len() < SNIFF_LEN {
        Sniff::NeedMore
    } else {
        Sniff::ClientHello
    }
}

/// Whether `bytes` (at least [`SNIFF_LEN`] of them) begin a TLS ClientHello. Fewer bytes
/// are never a ClientHello here: use [`sniff`] to know whether to wait for more.
pub fn is_tls_client_hello(bytes: &[u8]) -> bool {
    sniff(bytes) == Sniff::ClientHello
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first bytes rustls sends.
    const HELLO: [u8; 6] = [22, 3, 1, 0, 200, 1];

    #[test]
    fn recognizes_a_client_hello() {
        assert!(is_tls_client_hello(&HELLO));
        assert!(is_tls_client_hello(&[22, 3, 3, 0x02, 0x00, 1, 3, 3]));
        assert_eq!(sniff(&HELLO), Sniff::ClientHello);
    }

    #[test]
    fn plaintext_protocols_are_not_tls() {
        for first in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"\x00\x00\x00\x01",
            b"SSH-2.0-OpenSSH",
            b"\x16\x03\x01\x00\xc8\x02", // a ServerHello
            b"\x16\x02\x00\x00\xc8\x01", // SSL 2
            b"\x16\x03\x01\x00\x00\x01", // an empty record
            b"\x16\x03\x01\xff\xff\x01", // too long a record
        ] {
            assert!(!is_tls_client_hello(first), "{first:?}");
            assert_eq!(sniff(first), Sniff::NotTls, "{first:?}");
        }
    }

    #[test]
    fn a_short_prefix_asks_for_more_or_decides_early() {
        assert_eq!(sniff(&[]), Sniff::NeedMore);
        assert_eq!(sniff(&HELLO[..3]), Sniff::NeedMore);
        assert!(!is_tls_client_hello(&HELLO[..5]));
        assert_eq!(sniff(b"G"), Sniff::NotTls);
        assert_eq!(sniff(&[22, 4]), Sniff::NotTls);
    }
}

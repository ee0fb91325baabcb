//! PEM in and out: certificates are kept as DER and written back in one canonical form, so
//! the same root always renders to the same text (bundles compare and deduplicate by DER).

use x509_parser::pem::Pem;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PemError {
    /// Never carries the text: it may be a key.
    #[error("not valid PEM (block {index}): check the BEGIN/END lines and the base64 between them")]
    Malformed { index: usize },
    #[error("expected CERTIFICATE blocks, found a {label:?} block (block {index})")]
    UnexpectedLabel { index: usize, label: String },
    #[error("no PEM block found")]
    Empty,
}

/// The DER of every block in `text`, each required to be labelled `label`.
pub fn decode_all(text: &str, label: &str) -> Result<Vec<Vec<u8>>, PemError> {
    let mut blocks = Vec::new();
    for (index, block) in Pem::iter_from_buffer(text.as_bytes()).enumerate() {
        let block = block.map_err(|_| PemError::Malformed { index })?;
        if block.label != label {
            return Err(PemError::UnexpectedLabel {
                index,
                label: block.label,
            });
        }
        blocks.push(block.contents);
    }
    if blocks.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(blocks)
}

/// The DER of the one block in `text`.
pub fn decode_one(text: &str, label: &str) -> Result<Vec<u8>, PemError> {
    let mut blocks = decode_all(text, label)?;
    match blocks.len() {
        1 => Ok(blocks.remove(0)),
        _ => Err(PemError::Malformed { index: 1 }),
    }
}

/// `der` as a PEM block with 64-character lines and a trailing newline.
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let der: Vec<u8> = (0..=200).collect();
        let text = encode("CERTIFICATE", &der);
        assert_eq!(decode_one(&text, "CERTIFICATE"), Ok(der.clone()));
        let two = format!("{text}{text}");
        assert_eq!(decode_all(&two, "CERTIFICATE"), Ok(vec![der.clone(), der]));
    }

    #[test]
    fn refuses_other_labels_without_echoing_them_back() {
        let text = encode("PRIVATE KEY", b"secret bytes");
        let error = decode_all(&text, "CERTIFICATE").unwrap_err();
        assert!(matches!(error, PemError::UnexpectedLabel { .. }));
        assert!(!error.to_string().contains(&base64(b"secret bytes")));
        assert_eq!(
            decode_all("nothing here", "CERTIFICATE"),
            Err(PemError::Empty)
        );
    }
}

//! What a connection speaks, from its first bytes. Pure, so every case is a unit test.

/// A protocol the proxy tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// An HTTP/1.x request line.
    Http1,
    /// The HTTP/2 prior-knowledge connection preface (h2c).
    Http2,
    /// A TLS record carrying a handshake: forwarded as opaque TCP until routing by SNI.
    Tls,
    /// Anything else.
    Opaque,
}

impl Protocol {
    pub fn is_http(self) -> bool {
        matches!(self, Self::Http1 | Self::Http2)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Known(Protocol),
    /// The bytes so far fit a protocol that needs more of them to be sure.
    NeedMore,
}

/// How many bytes the classifier may ask for. A request line longer than this that still
/// looks like one is taken as HTTP: nothing else starts with a method and a long URL.
pub const MAX_PREFIX: usize = 1024;

/// The HTTP/2 client connection preface (RFC 9113 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The longest method token taken for HTTP; real ones are at most 7 (WebDAV's
/// `PROPPATCH`, `MKCALENDAR` and `BASELINE-CONTROL` fit too).
const MAX_METHOD: usize = 20;

/// Classifies `bytes`, the start of what the client sent (at most [`MAX_PREFIX`] are read).
///
/// HTTP/1 is recognised by a whole request line, `METHOD SP target SP HTTP/1.x`, rather
/// than a method and a space alone: text protocols such as Redis's inline commands
/// (`GET key\r\n`) start the same way and must stay opaque.
pub fn classify(bytes: &[u8]) -> Verdict {
    if bytes.is_empty() {
        return Verdict::NeedMore;
    }
    if let Some(verdict) = h2_preface(bytes) {
        return verdict;
    }
    if bytes[0] == 0x16 {
        return tls_handshake(bytes);
    }
    request_line(bytes)
}

fn h2_preface(bytes: &[u8]) -> Option<Verdict> {
    let n = bytes.len().min(H2_PREFACE.len());
    if bytes[..n] != H2_PREFACE[..n] {
        return None;
    }
    Some(if n == H2_PREFACE.len() {
        Verdict::Known(Protocol::Http2)
    } else {
        Verdict::NeedMore
    })
}

/// A TLS handshake record: content type 22, then a 3.x record version (SSL 3.0 to TLS 1.3
/// all write 3.0 to 3.4 there).
fn tls_handshake(bytes: &[u8]) -> Verdict {
    match bytes.get(1..3) {
        None if bytes.get(1).is_none_or(|b| *b == 0x03) => Verdict::NeedMore,
        Some([0x03, minor]) if *minor <= 0x04 => Verdict::Known(Protocol::Tls),
        _ => Verdict::Known(Protocol::Opaque),
    }
}

fn request_line(bytes: &[u8]) -> Verdict {
    let opaque = Verdict::Known(Protocol::Opaque);
    // Out of bytes while everything so far fits: more are needed, unless the client sent
    // as much as the classifier reads, which only a long request target does.
    let incomplete = if bytes.len() >= MAX_PREFIX {
        Verdict::Known(Protocol::Http1)
    } else {
        Verdict::NeedMore
    };
    let method_len = bytes.iter().take_while(|b| is_tchar(**b)).count();
    if method_len == 0 || method_len > MAX_METHOD {
        return opaque;
    }
    let rest = &bytes[method_len..];
    match rest.first() {
        None => return incomplete,
        Some(b' ') => {}
        Some(_) => return opaque,
    }
    let rest = &rest[1..];
    let target_len = rest.iter().take_while(|b| is_target_byte(**b)).count();
    let after_target = &rest[target_len..];
    match after_target.first() {
        None => return incomplete,
        Some(b' ') if target_len > 0 => {}
        Some(_) => return opaque,
    }
    const VERSION: &[u8] = b"HTTP/1.";
    let version = &after_target[1..];
    let common = version.len().min(VERSION.len());
    if version[..common] != VERSION[..common] {
        return opaque;
    }
    match version.get(VERSION.len()) {
        None => incomplete,
        Some(digit) if digit.is_ascii_digit() => Verdict::Known(Protocol::Http1),
        Some(_) => opaque,
    }
}

/// RFC 9110 `tchar`: what a method token is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What a request target may hold: visible ASCII, and bytes above it (sent raw by some
/// clients; the HTTP parser decides what to do with them), never a space or a control.
fn is_target_byte(b: u8) -> bool {
    b > b' ' && b != 0x7f
}

#[cfg(test)]
mod tests;

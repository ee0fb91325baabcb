//! Reading a connection's first bytes without consuming them, within a deadline.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::classify::{MAX_PREFIX, Protocol, Verdict, classify};

/// What sniffing found, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// The first bytes said which protocol.
    Bytes(Protocol),
    /// Nothing (or not enough to tell) arrived in time: a client waiting for a
    /// server-first protocol's greeting, or a slow one. Forwarded as opaque TCP.
    Timeout,
    /// The client closed its side (or the socket failed) before sending anything telling.
    /// Forwarded as opaque TCP, which passes the half-close on.
    Closed,
}

impl Sniffed {
    pub fn protocol(self) -> Protocol {
        match self {
            Self::Bytes(protocol) => protocol,
            Self::Timeout | Self::Closed => Protocol::Opaque,
        }
    }
}

/// The longest pause between two looks at a partial prefix.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// Peeks at what the client sent until it is enough to classify, or `timeout` passes.
///
/// `peek` leaves the bytes in the socket, so whichever path serves the connection reads
/// them as if nobody had looked. The cost: while bytes wait unread the socket stays
/// readable, so after a partial prefix there is nothing to wait on but time; that case
/// (a first segment cut inside a request line) is rare and polled with a short, growing
/// pause.
pub async fn sniff(stream: &TcpStream, timeout: Duration) -> Sniffed {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0; MAX_PREFIX];
    let mut pause = Duration::from_millis(1);
    let mut seen = 0;
    loop {
        let read = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Err(_) => return Sniffed::Timeout,
            Ok(Err(_) | Ok(0)) => return Sniffed::Closed,
            Ok(Ok(read)) => read,
        };
        if let Verdict::Known(protocol) = classify(&buf[..read]) {
            return Sniffed::Bytes(protocol);
        }
        // A peek that returns no more than last time means the client has sent nothing new.
        if read <= seen {
            pause = (pause * 2).min(MAX_PAUSE);
        }
        seen = read;
        if tokio::time::timeout_at(deadline, tokio::time::sleep(pause))
            .await
            .is_err()
        {
            return Sniffed::Timeout;
        }
    }
}

#[cfg(test)]
mod tests;

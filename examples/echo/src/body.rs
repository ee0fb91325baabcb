//! Response bodies: a buffer (the JSON echo, short texts) or generated filler of an exact
//! size, streamed from one static chunk so a benchmark's large bodies cost no allocation.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Filler bytes; any size is served as repeated slices of this.
static CHUNK: [u8; 16 * 1024] = [b'x'; 16 * 1024];

/// Every response body the server sends. Its size is always known, so HTTP/1.1 answers carry
/// a `content-length` rather than chunked encoding.
#[derive(Debug)]
pub enum EchoBody {
    Bytes(Option<Bytes>),
    Filler { remaining: u64 },
}

impl EchoBody {
    pub fn empty() -> Self {
        Self::Bytes(None)
    }

    pub fn bytes(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Self::Bytes((!data.is_empty()).then_some(data))
    }

    /// `size` bytes of `x`.
    pub fn filler(size: u64) -> Self {
        Self::Filler { remaining: size }
    }
}

impl Body for EchoBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.get_mut() {
            Self::Bytes(data) => data.take(),
            Self::Filler { remaining } => {
                let len = usize::try_from(*remaining).map_or(CHUNK.len(), |r| r.min(CHUNK.len()));
                *remaining -= len as u64;
                (len > 0).then(|| Bytes::from_static(&CHUNK[..len]))
            }
        };
        Poll::Ready(frame.map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Bytes(data) => data.is_none(),
            Self::Filler { remaining } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Bytes(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Self::Filler { remaining } => SizeHint::with_exact(*remaining),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn collect(body: EchoBody) -> Bytes {
        body.collect().await.expect("infallible").to_bytes()
    }

    #[tokio::test]
    async fn filler_has_the_exact_size() {
        for size in [0, 1, 16 * 1024, 16 * 1024 + 1, 100_000] {
            let body = EchoBody::filler(size);
            assert_eq!(body.size_hint().exact(), Some(size));
            let data = collect(body).await;
            assert_eq!(data.len() as u64, size);
            assert!(data.iter().all(|b| *b == b'x'));
        }
    }

    #[tokio::test]
    async fn bytes_are_sent_once() {
        let body = EchoBody::bytes("ok");
        assert_eq!(body.size_hint().exact(), Some(2));
        assert_eq!(collect(body).await, "ok");
        assert!(EchoBody::empty().is_end_stream());
        assert!(EchoBody::bytes("").is_end_stream());
    }
}

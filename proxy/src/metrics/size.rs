//! Request body sizes for `mesh_request_bytes`: known when the proxy kept the body (to
//! retry or mirror it), else counted as the body streams upstream, read when the request
//! is recorded (its response has ended), as Istio reads it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Set on a forwarded response: the size of the request body sent upstream.
#[derive(Debug, Clone)]
pub enum RequestSize {
    Known(u64),
    Counted(Arc<AtomicU64>),
}

impl RequestSize {
    pub fn bytes(&self) -> u64 {
        match self {
            RequestSize::Known(n) => *n,
            RequestSize::Counted(count) => count.load(Ordering::Relaxed),
        }
    }
}

/// A request body that counts the data bytes passing through it.
pub struct Counted<B> {
    inner: B,
    count: Arc<AtomicU64>,
}

impl<B> Counted<B> {
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            count: Arc::default(),
        }
    }

    pub fn size(&self) -> RequestSize {
        RequestSize::Counted(self.count.clone())
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full, StreamBody};

    use super::*;

    #[tokio::test]
    async fn counts_every_data_frame() {
        let chunks = ["abc", "defgh", ""]
            .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(c))));
        let body = Counted::new(StreamBody::new(tokio_stream::iter(chunks)));
        let size = body.size();
        assert_eq!(size.bytes(), 0);
        let all = body.collect().await.expect("body").to_bytes();
        assert_eq!((all.len(), size.bytes()), (8, 8));
        let full = Counted::new(Full::new(Bytes::from_static(b"12345")));
        let size = full.size();
        full.collect().await.expect("body");
        assert_eq!(size.bytes(), 5);
    }
}

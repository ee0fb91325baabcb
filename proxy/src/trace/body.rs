//! The response body carries the request's span: it counts the bytes sent, and the span
//! ends when the body is done with (sent, or abandoned by the client).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use hyper::body::{Frame, SizeHint};

use super::span::ActiveSpan;
use crate::http::{Body, BoxError, RESPONSE_FLAGS, boxed};

/// Tags `span` with the response's status and flags and hands it to the body.
pub fn attach(span: Option<ActiveSpan>, response: Response<Body>) -> Response<Body> {
    let Some(mut span) = span else {
        return response;
    };
    let flags = response
        .headers()
        .get(RESPONSE_FLAGS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    span.set_response(response.status(), flags);
    response.map(|body| boxed(Traced { body, span }))
}

struct Traced {
    body: Body,
    span: ActiveSpan,
}

impl hyper::body::Body for Traced {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let len = data.len() as u64;
            self.span.add_response_bytes(len);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

//! Reading a request body with a size limit, so an oversize body is a clear 413 instead of memory growth.

use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use updraft_core::{FailureKind, codes};

use crate::api_error::ApiError;

/// Bodies of JSON endpoints are small; 1 MiB is far above any real one.
pub(crate) const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Reads the whole body, failing with 413 past `limit` bytes.
///
/// A body that arrives in one chunk (an update check's, nearly always) is returned as that chunk, not copied.
pub(crate) async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut first: Option<Bytes> = None;
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(codes::INVALID_REQUEST, format!("reading the body: {e}")))?;
        let so_far = first.as_ref().map_or(0, Bytes::len) + body.len();
        if so_far + chunk.len() > limit {
            return Err(ApiError::client(
                FailureKind::TooLarge,
                codes::BODY_TOO_LARGE,
                format!("the body is larger than {limit} bytes; send a smaller request"),
            ));
        }
        match first.take() {
            None if body.is_empty() => first = Some(chunk),
            earlier => {
                if let Some(earlier) = earlier {
                    body.extend_from_slice(&earlier);
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| body.freeze()))
}

/// A request body that a streaming parser (such as `Multipart`) reads, shared with the handler so that whatever the
/// parser leaves unread can be drained before the answer goes out. Closing a socket with unread bytes in it makes
/// the kernel reset the connection, and a client still sending then sees "broken pipe" instead of the answer.
pub(crate) struct SharedBody(std::rc::Rc<std::cell::RefCell<web::Payload>>);

impl SharedBody {
    pub(crate) fn new(payload: web::Payload) -> Self {
        Self(std::rc::Rc::new(std::cell::RefCell::new(payload)))
    }

    /// The stream to hand to the parser.
    pub(crate) fn reader(&self) -> Self {
        Self(self.0.clone())
    }

    /// Reads and discards the rest of the body: at most `limit` bytes, for at most `deadline`. Returns whether the
    /// body was read to its end (if not, the connection must not be kept alive).
    pub(crate) async fn drain(&self, limit: u64, deadline: std::time::Duration) -> bool {
        let discard = async {
            let mut seen = 0u64;
            while let Some(chunk) = futures::future::poll_fn(|cx| self.0.borrow_mut().poll_next_unpin(cx)).await {
                match chunk {
                    Ok(chunk) => seen += chunk.len() as u64,
                    Err(_) => return false,
                }
                if seen > limit {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(deadline, discard).await.unwrap_or(false)
    }
}

impl futures::Stream for SharedBody {
    type Item = Result<Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.borrow_mut().poll_next_unpin(cx)
    }
}

//! Reading a request body with a size limit, so an oversize body is a clear 413 instead of memory growth.

use std::task::Poll;

use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use updraft_core::{FailureKind, codes};

use crate::api_error::ApiError;

/// Bodies of JSON endpoints are small; 1 MiB is far above any real one.
pub(crate) const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Reads the whole body, failing with 413 past `limit` bytes and with 408 when it has not all arrived within the
/// body timeout (`UPDRAFT_LIMITS__BODY_TIMEOUT_SECONDS`), so a client that declares more than it sends holds its
/// connection for that long at most.
///
/// A body that arrives in one chunk (an update check's, nearly always) is returned as that chunk, not copied, and
/// without arming the timeout: actix polls a handler once before it hands over the body that came in with the head,
/// and again right after, so the body is taken as it stands at those two looks and the timer (a timer-wheel entry
/// made and cancelled on every check) only starts when a body is still incomplete at the second.
pub(crate) async fn read_limited<B: BodyStream>(mut payload: B, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = Collected::default();
    for look in 0..2 {
        // Each look registers this task's waker with the payload when it finds nothing more.
        loop {
            match futures::future::poll_fn(|cx| Poll::Ready(payload.poll_next_unpin(cx))).await {
                Poll::Ready(Some(chunk)) => body.push(chunk, limit)?,
                Poll::Ready(None) => return Ok(body.finish()),
                Poll::Pending => break,
            }
        }
        if look == 0 {
            // Yielding wakes the task itself, so the second look never depends on actix polling the handler again
            // nor on more of the body arriving (a stalled body then meets the timeout below).
            tokio::task::yield_now().await;
        }
    }
    let rest = async {
        while let Some(chunk) = payload.next().await {
            body.push(chunk, limit)?;
        }
        Ok(())
    };
    match tokio::time::timeout(crate::limits::body_timeout(), rest).await {
        Ok(Ok(())) => Ok(body.finish()),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(body_timed_out()),
    }
}

/// A request body as actix hands it over: to a handler (`web::Payload`) or to a middleware (`dev::Payload`).
pub(crate) trait BodyStream:
    futures::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin
{
}

impl<S: futures::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin> BodyStream for S {}

/// The 408 of a body that stopped arriving.
pub(crate) fn body_timed_out() -> ApiError {
    ApiError::client(
        FailureKind::TimedOut,
        codes::BODY_TIMEOUT,
        "the body did not arrive in time (it declared more bytes than were sent, or they came too slowly); send the \
         whole body at once",
    )
}

/// A body read so far: its first chunk as it came, copied into one buffer only once a second chunk arrives.
#[derive(Default)]
struct Collected {
    first: Option<Bytes>,
    rest: BytesMut,
}

impl Collected {
    fn push(&mut self, chunk: Result<Bytes, actix_web::error::PayloadError>, limit: usize) -> Result<(), ApiError> {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(codes::INVALID_REQUEST, format!("reading the body: {e}")))?;
        let so_far = self.first.as_ref().map_or(0, Bytes::len) + self.rest.len();
        if so_far + chunk.len() > limit {
            return Err(ApiError::client(
                FailureKind::TooLarge,
                codes::BODY_TOO_LARGE,
                format!("the body is larger than {limit} bytes; send a smaller request"),
            ));
        }
        match self.first.take() {
            None if self.rest.is_empty() => self.first = Some(chunk),
            earlier => {
                if let Some(earlier) = earlier {
                    self.rest.extend_from_slice(&earlier);
                }
                self.rest.extend_from_slice(&chunk);
            }
        }
        Ok(())
    }

    fn finish(self) -> Bytes {
        self.first.unwrap_or_else(|| self.rest.freeze())
    }
}

/// A request body that a streaming parser (such as `Multipart`) reads, shared with the handler so that whatever the
/// parser leaves unread can be drained before the answer goes out. Closing a socket with unread bytes in it makes
/// the kernel reset the connection, and a client still sending then sees "broken pipe" instead of the answer.
///
/// Reading fails with a timeout once no byte has arrived for the upload idle timeout
/// (`UPDRAFT_LIMITS__UPLOAD_IDLE_TIMEOUT_SECONDS`), and [`SharedBody::timed_out`] then says so.
pub(crate) struct SharedBody(std::rc::Rc<std::cell::RefCell<Reading>>);

struct Reading {
    payload: web::Payload,
    idle: std::time::Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    timed_out: bool,
    ended: bool,
    stuck: bool,
}

impl SharedBody {
    pub(crate) fn new(payload: web::Payload) -> Self {
        let idle = crate::limits::upload_idle_timeout();
        Self(std::rc::Rc::new(std::cell::RefCell::new(Reading {
            payload,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            timed_out: false,
            ended: false,
            stuck: false,
        })))
    }

    /// The stream to hand to the parser.
    pub(crate) fn reader(&self) -> Self {
        Self(self.0.clone())
    }

    /// Whether reading stopped because the client sent nothing for too long.
    pub(crate) fn timed_out(&self) -> bool {
        self.0.borrow().timed_out
    }

    /// Whether the whole body has been read.
    pub(crate) fn ended(&self) -> bool {
        self.0.borrow().ended
    }

    /// Whether a parser over this body stopped making progress after the body ended (see [`UntilStuck`]): the
    /// body ended in the middle of something, such as just before a multipart closing boundary.
    pub(crate) fn stuck(&self) -> bool {
        self.0.borrow().stuck
    }

    /// `stream` (a parser over this body), ended early when it waits for more after the whole body has arrived.
    pub(crate) fn until_stuck<S>(&self, stream: S) -> UntilStuck<S> {
        UntilStuck { stream, body: self.reader(), timer: None }
    }

    /// Reads and discards the rest of the body: at most `limit` bytes, for at most `deadline`, and only while the
    /// client keeps sending (a pause of `pause` ends it). Returns whether the body was read to its end (if not, the
    /// connection must not be kept alive).
    pub(crate) async fn drain(&self, limit: u64, deadline: std::time::Duration, pause: std::time::Duration) -> bool {
        if self.timed_out() {
            return false;
        }
        if self.ended() {
            return true;
        }
        let discard = async {
            let mut seen = 0u64;
            loop {
                let next = futures::future::poll_fn(|cx| self.0.borrow_mut().payload.poll_next_unpin(cx));
                match tokio::time::timeout(pause, next).await {
                    Err(_) => return false,
                    Ok(None) => return true,
                    Ok(Some(Ok(chunk))) => seen += chunk.len() as u64,
                    Ok(Some(Err(_))) => return false,
                }
                if seen > limit {
                    return false;
                }
            }
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
        use std::task::Poll;
        let mut reading = self.0.borrow_mut();
        let reading = &mut *reading;
        if reading.timed_out {
            return Poll::Ready(Some(Err(stalled())));
        }
        match reading.payload.poll_next_unpin(cx) {
            Poll::Ready(item) => {
                let idle = reading.idle;
                reading.deadline.as_mut().reset(tokio::time::Instant::now() + idle);
                reading.ended = item.is_none();
                Poll::Ready(item)
            }
            Poll::Pending => match reading.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    reading.timed_out = true;
                    Poll::Ready(Some(Err(stalled())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

fn stalled() -> actix_web::error::PayloadError {
    actix_web::error::PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the client sent nothing for too long",
    ))
}

/// How long a parser may wait once its whole body has arrived: parsing buffered bytes takes microseconds, so a
/// parser still pending after this waits for bytes that will never come (actix-multipart does, at some truncation
/// points, instead of failing).
const STUCK_AFTER_END: std::time::Duration = std::time::Duration::from_millis(200);

/// A stream over a [`SharedBody`] that ends (and marks the body stuck) when it stays pending after the body ended.
pub(crate) struct UntilStuck<S> {
    stream: S,
    body: SharedBody,
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S: futures::Stream + Unpin> futures::Stream for UntilStuck<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.body.stuck() {
            return Poll::Ready(None);
        }
        match this.stream.poll_next_unpin(cx) {
            Poll::Ready(item) => {
                this.timer = None;
                Poll::Ready(item)
            }
            Poll::Pending if this.body.ended() => {
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(STUCK_AFTER_END)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.body.0.borrow_mut().stuck = true;
                        Poll::Ready(None)
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

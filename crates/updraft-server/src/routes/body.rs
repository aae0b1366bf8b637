//! Reading a request body with a size limit, so an oversize body is a clear 413 instead of memory growth.

use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use updraft_capgo::error_codes;

use crate::api_error::ApiError;

/// Bodies of JSON endpoints are small; 1 MiB is far above any real one.
pub(crate) const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Reads the whole body, failing with 413 past `limit` bytes.
pub(crate) async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(error_codes::INVALID_REQUEST, format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::status(
                413,
                error_codes::BODY_TOO_LARGE,
                format!("the body is larger than {limit} bytes; send a smaller request"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

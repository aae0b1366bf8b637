//! Answering a download of a stored, content-addressed object, the one way every download route does it
//! (`/files/<key>` and the Expo asset route): `ETag` from the digest, `If-None-Match`, a presigned redirect when
//! configured, else the bytes with `Content-Length` and correct `Range` handling (206, or 416 past the end).
//! Android's downloader appends whatever a resumed request returns, so a wrong range answer corrupts the file on
//! the device.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use updraft_oss::{ByteRange, ObjectKey};

use crate::api_error::ApiError;
use crate::metrics::Representation;
use crate::ops::objects::{Download, open_download};
use crate::routes::encoded;
use crate::state::AppState;

/// What to serve.
pub(crate) struct Served<'a> {
    pub(crate) key: &'a ObjectKey,
    /// The content address (the strong validator).
    pub(crate) digest: &'a str,
    pub(crate) content_type: &'a str,
    /// Send `X-Content-Type-Options: nosniff` (Expo assets, whose type the manifest announced).
    pub(crate) nosniff: bool,
}

/// The answer to a GET (or HEAD) of `served`; `Ok(None)` when there is no such object (each route words its 404).
pub(crate) async fn serve(
    request: &HttpRequest,
    state: &AppState,
    served: &Served<'_>,
) -> Result<Option<HttpResponse>, ApiError> {
    let etag = format!("\"{}\"", served.digest);
    if if_none_match(request, &etag) {
        return Ok(Some(HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish()));
    }
    // A stored compressed copy, when the request accepts one and the object has it (`routes::encoded`).
    let encoding = encoded::wanted(request, served);
    if encoding != updraft_core::Encoding::Identity
        && let Some(answer) = encoded::serve_encoded(request, state, served, encoding).await?
    {
        return Ok(Some(answer));
    }
    let range = request.headers().get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(parse_range);
    let result = match open_download(state, served.key, range).await? {
        Download::Redirect(url) => {
            // The presigned URL is a bearer credential: it goes to the device, never to the log.
            return Ok(Some(
                HttpResponse::Found()
                    .insert_header((header::LOCATION, url))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish(),
            ));
        }
        Download::NotFound => return Ok(None),
        Download::RangeNotSatisfiable { size } => {
            return Ok(Some(
                HttpResponse::RangeNotSatisfiable()
                    .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                    .insert_header((header::ACCEPT_RANGES, "bytes"))
                    .finish(),
            ));
        }
        Download::Bytes(result) => result,
    };
    let length = result.range.end - result.range.start;
    let mut response = if range.is_some() {
        let mut partial = HttpResponse::PartialContent();
        partial.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", result.range.start, result.range.end.saturating_sub(1), result.meta.size),
        ));
        partial
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CONTENT_TYPE, served.content_type))
        .insert_header((header::ETAG, etag))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"));
    if served.nosniff {
        response.insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    }
    if encoded::may_be_encoded(served.content_type) {
        response.insert_header((header::VARY, "Accept-Encoding"));
    }
    state.metrics.served.add(Representation::Encoded(updraft_core::Encoding::Identity), length);
    Ok(Some(response.no_chunking(length).streaming(result.body)))
}

fn if_none_match(request: &HttpRequest, etag: &str) -> bool {
    request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|candidate| candidate.trim() == etag || candidate.trim() == "*"))
}

/// Parses a single `bytes=` range; anything else (several ranges, other units, garbage) is ignored and the whole
/// object is served, as RFC 9110 allows.
fn parse_range(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    match (start.trim(), end.trim()) {
        ("", suffix) => suffix.parse().ok().map(ByteRange::Suffix),
        (start, "") => start.parse().ok().map(ByteRange::From),
        (start, end) => Some(ByteRange::Bounded(start.parse().ok()?, end.parse().ok()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_header_forms() {
        assert_eq!(parse_range("bytes=100-"), Some(ByteRange::From(100)));
        assert_eq!(parse_range("bytes=0-99"), Some(ByteRange::Bounded(0, 99)));
        assert_eq!(parse_range("bytes=-5"), Some(ByteRange::Suffix(5)));
        assert_eq!(parse_range("bytes=0-1,4-5"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=x-"), None);
    }

    proptest::proptest! {
        /// Any `Range` header parses without panicking, and a parsed bounded range keeps its numbers.
        #[test]
        fn range_headers_never_panic(value in ".{0,60}") {
            let _ = parse_range(&value);
        }

        #[test]
        fn bounded_ranges_parse_exactly(start: u64, end: u64) {
            proptest::prop_assert_eq!(parse_range(&format!("bytes={start}-{end}")), Some(ByteRange::Bounded(start, end)));
        }
    }
}

//! `GET /files/<key>`: streams a stored bundle with `Content-Length`, a strong `ETag`, and correct `Range` handling
//! (206, or 416 past the end). Android's downloader appends whatever a resumed request returns, so a wrong range
//! answer corrupts the zip on the device.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use updraft_capgo::error_codes;
use updraft_capgo::management::error_body;
use updraft_oss::{ByteRange, GetOptions, ObjectKey};

use crate::api_error::ApiError;
use crate::state::AppState;
use crate::storage_layout::servable;

pub(crate) async fn download(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let not_found = || HttpResponse::NotFound().json(error_body(error_codes::NOT_FOUND, "no such file"));
    let Some((content_type, digest)) = servable(&key) else {
        return Ok(not_found());
    };
    let Ok(object_key) = ObjectKey::parse(&key) else {
        return Ok(not_found());
    };
    // Content-addressed: the digest in the name is the strong validator.
    let etag = format!("\"{digest}\"");
    if if_none_match(&request, &etag) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish());
    }
    if let Some(url) = state.redirect_url(&object_key).await {
        // The presigned URL is a bearer credential: it goes to the device, never to the log.
        return Ok(HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish());
    }
    let range = request.headers().get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(parse_range);
    let result = match state.objects.get(&object_key, GetOptions { range }).await {
        Ok(result) => result,
        Err(updraft_oss::Error::NotFound { .. }) => return Ok(not_found()),
        Err(updraft_oss::Error::RangeNotSatisfiable { size, .. }) => {
            return Ok(HttpResponse::RangeNotSatisfiable()
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .finish());
        }
        Err(error) => return Err(error.into()),
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
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::ETAG, etag))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"));
    Ok(response.no_chunking(length).streaming(result.body))
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
}

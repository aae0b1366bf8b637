//! The compressed representations of a download (see `ops::encodings`): which one a request gets, and its answer.
//! Each is a stored file served as it is, with its own `Content-Length`, `Content-Encoding` and strong `ETag`
//! (`"<sha256>.br"`, `"<sha256>.gz"`; the original's is `"<sha256>"`), and `Vary: Accept-Encoding` on every
//! representation of a compressible object, so a shared cache keeps them apart.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use updraft_core::{Encoding, compressible_type, negotiate_encoding};

use crate::api_error::ApiError;
use crate::metrics::Representation;
use crate::ops::encodings::open_encoded;
use crate::ops::objects::Download;
use crate::routes::download::Served;
use crate::state::AppState;

/// Whether objects of this content type may have compressed copies (so their answers vary by `Accept-Encoding`).
pub(crate) fn may_be_encoded(content_type: &str) -> bool {
    compressible_type(content_type) != Some(false)
}

/// The representation the request asks for, when the object may have copies and the request is for all of it (a
/// `Range` names bytes of the original: it always gets the original, so resumed downloads stay consistent).
pub(crate) fn wanted(request: &HttpRequest, served: &Served<'_>) -> Encoding {
    if !may_be_encoded(served.content_type) || request.headers().contains_key(header::RANGE) {
        return Encoding::Identity;
    }
    negotiate_encoding(request.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()))
}

/// The answer with the `encoding` copy of `served`, or `None` when it has none (the caller serves the original).
pub(crate) async fn serve_encoded(
    request: &HttpRequest,
    state: &AppState,
    served: &Served<'_>,
    encoding: Encoding,
) -> Result<Option<HttpResponse>, ApiError> {
    let etag = format!("\"{}{}\"", served.digest, encoding.key_suffix());
    let token = encoding.token().unwrap_or("identity");
    let matches = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|candidate| candidate.trim() == etag || candidate.trim() == "*"));
    if matches {
        return Ok(Some(
            HttpResponse::NotModified()
                .insert_header((header::ETAG, etag))
                .insert_header((header::VARY, "Accept-Encoding"))
                .finish(),
        ));
    }
    let result = match open_encoded(state, served.key, encoding).await? {
        None | Some(Download::NotFound | Download::RangeNotSatisfiable { .. }) => return Ok(None),
        Some(Download::Redirect(url)) => {
            return Ok(Some(
                HttpResponse::Found()
                    .insert_header((header::LOCATION, url))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .insert_header((header::VARY, "Accept-Encoding"))
                    .finish(),
            ));
        }
        Some(Download::Bytes(result)) => result,
    };
    let length = result.range.end - result.range.start;
    state.metrics.served.add(Representation::Encoded(encoding), length);
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_TYPE, served.content_type))
        .insert_header((header::CONTENT_ENCODING, token))
        .insert_header((header::VARY, "Accept-Encoding"))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"));
    if served.nosniff {
        response.insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    }
    Ok(Some(response.no_chunking(length).streaming(result.body)))
}

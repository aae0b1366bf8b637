//! `GET /files/<key>`: a stored bundle zip or delta file, by its content address (see `routes::download`).

use actix_web::{HttpRequest, HttpResponse, web};
use updraft_capgo::management::error_body;
use updraft_core::codes;
use updraft_oss::ObjectKey;

use crate::api_error::ApiError;
use crate::routes::download::{Served, serve};
use crate::state::AppState;
use crate::storage_layout::servable;

pub(crate) async fn download(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let not_found = || HttpResponse::NotFound().json(error_body(codes::NOT_FOUND, "no such file"));
    let Some((content_type, digest)) = servable(&key) else {
        return Ok(not_found());
    };
    let Ok(object_key) = ObjectKey::parse(&key) else {
        return Ok(not_found());
    };
    let served = Served { key: &object_key, digest, content_type, nosniff: false };
    Ok(serve(&request, &state, &served).await?.unwrap_or_else(not_found))
}

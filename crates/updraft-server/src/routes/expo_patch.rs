//! The bsdiff answer to an Expo launch-asset request (`A-IM: bsdiff`), as both clients check it
//! (`loader/FileDownloader.kt` `parsePatchResponseMetadata` / `validatePatchResponseMetadata`; iOS
//! `FileDownloader.swift`): status 226 with `im: bsdiff` and `expo-base-update-id` naming the update the device
//! runs, the body a BSDIFF40 patch of that update's launch asset. A client applies it and checks the result against
//! the manifest's `hash`; on any mismatch it downloads the full file again without `A-IM`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use updraft_core::AppId;

use crate::metrics::Representation;
use crate::ops::expo_patches::ready_patch;
use crate::state::AppState;

/// Whether the request asks for a bsdiff patch: `A-IM` lists `bsdiff` (case-insensitive, parameters ignored).
fn wants_bsdiff(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all("a-im")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| item.split(';').next().is_some_and(|name| name.trim().eq_ignore_ascii_case("bsdiff")))
}

/// The 226 answer with a ready patch from the update the device runs (`Expo-Current-Update-ID`) to the launch
/// asset `sha256`; `None` (serve the full file) when the request asks for none or no verified patch is ready.
/// Only for a launch asset (`launch`): a client refuses a patch for any other asset.
pub(crate) async fn patch_answer(
    request: &HttpRequest,
    state: &AppState,
    app_id: &AppId,
    sha256: &str,
    launch: bool,
) -> Option<HttpResponse> {
    if !launch || !wants_bsdiff(request) {
        return None;
    }
    let current = request.headers().get("expo-current-update-id")?.to_str().ok()?.trim().to_ascii_lowercase();
    let patch = ready_patch(state, app_id, &current, sha256).await?;
    state.metrics.served.add(Representation::Patch, patch.bytes.len() as u64);
    Some(
        HttpResponse::build(StatusCode::IM_USED)
            .insert_header(("im", "bsdiff"))
            .insert_header(("expo-base-update-id", current))
            .insert_header((header::CONTENT_TYPE, "application/octet-stream"))
            .insert_header((header::ETAG, format!("\"{}\"", patch.sha256)))
            // The body depends on request headers a URL-keyed cache does not see: never stored by one.
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::VARY, "A-IM, Expo-Current-Update-ID"))
            .body(patch.bytes),
    )
}

//! Whether an image is present on the engine (nothing is pulled): what a deploy checks before it
//! touches anything.

use bluegreen_core::{Error, Release, Result};
use bollard::models::ImageInspect;

use crate::engine::Engine;
use crate::error::{backend, is_not_found};

/// The inspection of `image` (a reference or an id); [`Error::NotFound`] naming it when the
/// engine does not have it.
pub(crate) async fn require_image(engine: &Engine, image: &str) -> Result<ImageInspect> {
    match engine.client().inspect_image(image).await {
        Ok(info) => Ok(info),
        Err(e) if is_not_found(&e) => Err(Error::NotFound {
            what: "image",
            name: image.to_string(),
        }),
        Err(e) => Err(backend(format_args!("inspecting image {image}"), e)),
    }
}

/// Checks that image `id`, pinned by a snapshot of `release`, is still present: else
/// [`Error::NotFound`] naming the image and the release.
pub(crate) async fn require_pinned(engine: &Engine, release: &Release, id: &str) -> Result<ImageInspect> {
    require_image(engine, id).await.map_err(|e| match e {
        Error::NotFound { .. } => Error::NotFound {
            what: "image",
            name: format!("{id} (pinned for release {release})"),
        },
        other => other,
    })
}

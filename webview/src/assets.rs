//! The page: the built front end (`web/dist`), embedded in release builds and read from disk in debug
//! builds (rust-embed), so a rebuilt front end shows without recompiling.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "../web/dist"]
struct Dist;

/// The file at `path` (without its leading `/`), or `index.html` for any other page path, so the page's
/// own routes (`/r/api/overview`) load it.
pub fn serve(path: &str) -> Response {
    let path = path.trim_start_matches('/');
    let (file, name) = match Dist::get(path).filter(|_| !path.is_empty()) {
        Some(f) => (f, path),
        None => match Dist::get("index.html") {
            Some(f) => (f, "index.html"),
            None => {
                return (StatusCode::NOT_FOUND, "the web UI was not built (web/dist/index.html is missing)")
                    .into_response();
            }
        },
    };
    let mut response = Response::new(Body::from(file.data.into_owned()));
    let mime = file.metadata.mimetype();
    if let Ok(v) = HeaderValue::from_str(mime) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    // Bundles have content hashes in their names; the page itself must always be fresh.
    let cache = if name.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

//! The admin dashboard: one HTML page, its script and its style sheet, embedded in the binary
//! and served at `/` by the admin listener. The page is a client of the admin API like any
//! other: it holds the token in session storage (never in a URL), sends it as a bearer header,
//! and follows `/v1/admin/feed` with `fetch` (an `EventSource` cannot send the header).
//!
//! Why hand-written HTML and a small script rather than a framework bundle: the page is a view
//! over JSON routes that exist, it must work offline and be served from the binary, and a
//! vendored build toolchain would be the largest part of it. What it may load is pinned by the
//! Content-Security-Policy below: its own origin only, no inline script, no other host.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AdminState;

mod setup;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// Nothing but this origin: scripts, styles, images, and the API the page calls.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' \
                      data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
                      frame-ancestors 'none'";

pub fn routes() -> Router<AdminState> {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/dashboard/app.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/dashboard/app.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/github/setup", get(setup::setup))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    secure(&mut response, content_type);
    response
}

/// The content type and the headers every page and asset carries.
fn secure(response: &mut Response, content_type: &'static str) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

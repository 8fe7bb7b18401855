//! The admin page (SPEC §8): the files of `static/`, embedded in the binary with
//! rust-embed (`debug-embed`, so debug builds serve the embedded copy too), served at
//! `/` and `/static/{file}` with their content type, a strong ETag (304 on
//! `If-None-Match`), `Cache-Control: no-cache` so browsers revalidate, and a strict
//! Content-Security-Policy (no inline script or style, no other origin).

use rust_embed::RustEmbed;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

use super::request::Ctx;
use crate::error::Error;

/// The page's files, compiled into the binary.
#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// Only our own origin, nothing inline: a script injected into the page cannot run and
/// cannot send what it reads anywhere else; the page cannot be framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `GET /`: the page itself.
pub async fn page(ctx: &mut Ctx) -> Result<Response, Error> {
    serve(ctx, "index.html")
}

/// `GET /static/{file}`: a script, style sheet or image of the page.
pub async fn asset(ctx: &mut Ctx) -> Result<Response, Error> {
    let name = ctx.param(0).to_owned();
    serve(ctx, &name)
}

fn serve(ctx: &Ctx, name: &str) -> Result<Response, Error> {
    // The route has one path segment, so `name` cannot climb out of `static/`;
    // rust-embed only knows the files it embedded anyway.
    let file = Assets::get(name).ok_or_else(|| Error::not_found("NOT_FOUND", "no such file"))?;
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let fresh = ctx.header("if-none-match").is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
    let mut reply = if fresh {
        let mut r = Response::new(Vec::new().into());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(file.data.into_owned().into());
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
        r
    };
    let h = reply.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    Ok(reply)
}

/// The content type of a file of the page, by extension.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_scripts_are_embedded() {
        let index = Assets::get("index.html").expect("index.html is embedded");
        let text = String::from_utf8_lossy(&index.data);
        assert!(text.contains("src=\"/static/app.js\""), "absolute, double-quoted script path");
        assert!(!text.contains("<script>"), "no inline script");
        assert!(!text.contains("style=\""), "no inline style");
        assert!(Assets::get("app.js").is_some() && Assets::get("api.js").is_some());
    }

    #[test]
    fn every_embedded_file_has_a_known_content_type() {
        for name in Assets::iter() {
            assert_ne!(content_type(&name), "application/octet-stream", "{name}");
        }
    }
}

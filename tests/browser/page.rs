//! The page as HTTP serves it (no browser needed): content types, the security
//! headers of SPEC §7, ETag revalidation, and every `/static/…` reference resolving.

use std::collections::{BTreeSet, HashMap};

use crate::support::spawn_server;

struct Got {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

fn get(agent: &ureq::Agent, url: &str, if_none_match: Option<&str>) -> Got {
    let mut req = agent.get(url);
    if let Some(tag) = if_none_match {
        req = req.header("if-none-match", tag);
    }
    let mut r = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let headers =
        r.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
    Got { status: r.status().as_u16(), headers, body: r.body_mut().read_to_string().unwrap_or_default() }
}

/// The `"/static/…"` paths a file refers to (absolute and double-quoted, SPEC §8).
fn references(text: &str) -> BTreeSet<String> {
    text.split("\"/static/").skip(1).filter_map(|rest| rest.split('"').next()).map(|f| format!("/static/{f}")).collect()
}

#[test]
fn the_page_is_served_with_its_content_type_and_security_headers() {
    let server = spawn_server(&[]);
    let page = get(server.agent(), &format!("{}/", server.base), None);
    assert_eq!(page.status, 200);
    let h = &page.headers;
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        h["content-security-policy"],
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-cache");
    assert!(page.body.contains("<script type=\"module\" src=\"/static/app.js\"></script>"), "{}", page.body);
    assert!(!page.body.contains("<script>") && !page.body.contains(" style="), "no inline script or style");
    let handler = page.body.split(" on").skip(1).any(|rest| {
        let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    });
    assert!(!handler, "no inline event handler attributes");
    let api = get(server.agent(), &format!("{}/healthz", server.base), None);
    assert_eq!(api.headers["cache-control"], "no-store", "the API is never cached");
}

#[test]
fn assets_revalidate_with_their_etag() {
    let server = spawn_server(&[]);
    let url = format!("{}/static/app.js", server.base);
    let first = get(server.agent(), &url, None);
    assert_eq!((first.status, first.headers["content-type"].as_str()), (200, "text/javascript; charset=utf-8"));
    let etag = first.headers["etag"].clone();
    assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
    let again = get(server.agent(), &url, Some(&etag));
    assert_eq!((again.status, again.body.as_str()), (304, ""));
    assert_eq!(again.headers["etag"], etag);
    let changed = get(server.agent(), &url, Some("\"something-else\""));
    assert_eq!(changed.status, 200);
    let css = get(server.agent(), &format!("{}/static/style.css", server.base), None);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    for missing in ["/static/nope.js", "/static/..%2FCargo.toml", "/static/"] {
        let r = get(server.agent(), &format!("{}{missing}", server.base), None);
        assert_eq!(r.status, 404, "{missing}");
    }
}

#[test]
fn every_static_reference_of_the_page_resolves() {
    let server = spawn_server(&[]);
    let mut seen = BTreeSet::new();
    let mut queue: Vec<String> = vec!["/".to_owned()];
    while let Some(path) = queue.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let r = get(server.agent(), &format!("{}{path}", server.base), None);
        assert_eq!(r.status, 200, "{path}");
        queue.extend(references(&r.body));
    }
    for module in ["/static/api.js", "/static/ui.js", "/static/job.js", "/static/favicon.svg", "/static/style.css"] {
        assert!(seen.contains(module), "{module} is not reached from the page: {seen:?}");
    }
}

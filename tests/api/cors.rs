//! CORS (SPEC §7): a preflight names only the methods the API serves.

use std::collections::BTreeSet;

use crate::support::{spawn_app_with, Options};

#[test]
fn a_preflight_allows_exactly_the_methods_of_the_route_table() {
    let app = spawn_app_with(Options {
        extra: vec![("CORS_ALLOWED_ORIGINS", "https://admin.example.com".into())],
        ..Options::default()
    });
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let reply = agent
        .options(&app.url("/api/v1/transfers/"))
        .header("origin", "https://admin.example.com")
        .header("access-control-request-method", "POST")
        .call()
        .expect("exchange");
    assert_eq!(reply.status().as_u16(), 204);
    let allowed: BTreeSet<String> = reply
        .headers()
        .get("access-control-allow-methods")
        .and_then(|v| v.to_str().ok())
        .expect("access-control-allow-methods")
        .split(',')
        .map(|m| m.trim().to_owned())
        .collect();
    let served: BTreeSet<String> = sysgp::http::router::ROUTES.iter().map(|r| r.method.to_owned()).collect();
    assert_eq!(allowed, served, "a browser is told of no method the API does not serve");
    assert!(!allowed.contains("PUT") && !allowed.contains("DELETE"), "{allowed:?}");
}

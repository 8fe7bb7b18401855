//! The OpenAPI document is the contract: every route is in it, and every JSON reply the
//! integration tests see is checked against the schema of its route and status.

use std::sync::OnceLock;

use serde_json::Value;
use sysgp::http::router::{find, Matched, ROUTES};
use warp::http::Method;

use crate::support::{spawn_app, Reply};

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(sysgp::http::openapi::document)
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// Validates `v` against the subset of JSON Schema the document uses.
fn validate(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    match &schema["type"] {
        Value::String(t) if !type_ok(t, v) => return Err(format!("{at}: expected {t}, got {v}")),
        Value::Array(ts) if !ts.iter().filter_map(Value::as_str).any(|t| type_ok(t, v)) => {
            return Err(format!("{at}: expected one of {ts:?}, got {v}"));
        }
        _ => {}
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(v) {
            return Err(format!("{at}: {v} is not one of {options:?}"));
        }
    }
    if let (Some(obj), Some(required)) = (v.as_object(), schema["required"].as_array()) {
        for name in required.iter().filter_map(Value::as_str) {
            if !obj.contains_key(name) {
                return Err(format!("{at}: missing required {name:?}"));
            }
        }
    }
    if let (Some(obj), Some(props)) = (v.as_object(), schema["properties"].as_object()) {
        for (name, sub) in props {
            if let Some(value) = obj.get(name) {
                validate(doc, sub, value, &format!("{at}.{name}"))?;
            }
        }
    }
    if let (Some(items), Some(sub)) = (v.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(doc, sub, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Checks a reply against the document: its status must be documented for the route
/// and a JSON body must match the schema. Called by the harness on every request.
pub fn check_reply(method: &str, url: &str, reply: &Reply) {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    let path = path.split('?').next().unwrap_or(path);
    let Ok(method) = method.parse::<Method>() else { return };
    let Matched::Found(route, _) = find(&method, path) else { return };
    let doc = document();
    let operation = &doc["paths"][route.pattern][route.method.to_ascii_lowercase()];
    let documented = &operation["responses"][reply.status.to_string()];
    assert!(
        !documented.is_null(),
        "{} {} answered {}, which the OpenAPI document does not list: {}",
        route.method,
        route.pattern,
        reply.status,
        reply.text
    );
    let is_json = reply.header("content-type").is_some_and(|c| c.starts_with("application/json"));
    if let (true, Some(schema)) = (is_json, documented.pointer("/content/application~1json/schema")) {
        if let Err(why) = validate(doc, schema, &reply.body, "$") {
            panic!(
                "{} {} {}: the reply does not match the OpenAPI schema: {why}\n{}",
                route.method, route.pattern, reply.status, reply.text
            );
        }
    }
}

#[test]
fn the_served_openapi_document_describes_every_route() {
    let app = spawn_app();
    let r = app.get_token("", "/api/v1/openapi.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["openapi"], "3.1.0");
    for route in ROUTES {
        let op = &r.body["paths"][route.pattern][route.method.to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} is missing from openapi.json", route.method, route.pattern);
        assert!(
            op["responses"].as_object().is_some_and(|m| !m.is_empty()),
            "{} {} documents no response",
            route.method,
            route.pattern
        );
    }
    let paths = r.body["paths"].as_object().expect("paths");
    let documented: usize = paths.values().map(|p| p.as_object().map_or(0, |m| m.len())).sum();
    assert_eq!(documented, ROUTES.len(), "the document lists operations the router does not have");
}

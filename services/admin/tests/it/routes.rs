//! Every route of the admin listener, once: the auth matrix walks it and the OpenAPI document
//! must list exactly these.

use reqwest::Method;

/// (method, path template as in the OpenAPI document).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/admin/session"),
    ("POST", "/v1/admin/dead-letters/{stream_sequence}/redrive"),
    ("POST", "/v1/admin/github/install"),
    ("GET", "/v1/admin/instances/{id}/repositories"),
    ("GET", "/v1/admin/instances"),
    ("POST", "/v1/admin/instances"),
    ("GET", "/v1/admin/instances/{id}"),
    ("PATCH", "/v1/admin/instances/{id}"),
    ("DELETE", "/v1/admin/instances/{id}"),
    ("GET", "/v1/admin/repositories"),
    ("POST", "/v1/admin/repositories"),
    ("GET", "/v1/admin/repositories/{id}"),
    ("DELETE", "/v1/admin/repositories/{id}"),
    ("POST", "/v1/admin/repositories/{id}/retry"),
    ("GET", "/v1/admin/repositories/{id}/health"),
    ("GET", "/v1/admin/incidents"),
    ("GET", "/v1/admin/incidents/{id}"),
    ("GET", "/v1/admin/pull-requests"),
    ("GET", "/v1/admin/targets"),
    ("POST", "/v1/admin/targets"),
    ("GET", "/v1/admin/targets/{id}"),
    ("PATCH", "/v1/admin/targets/{id}"),
    ("DELETE", "/v1/admin/targets/{id}"),
    ("POST", "/v1/admin/targets/{id}/sync"),
    ("GET", "/v1/admin/targets/{id}/syncs"),
    ("GET", "/v1/admin/targets/{id}/files"),
    ("GET", "/v1/admin/targets/{id}/file"),
    ("GET", "/v1/admin/targets/{id}/discovery"),
    ("GET", "/v1/admin/syncs"),
    ("GET", "/v1/admin/syncs/{sync_id}"),
    ("POST", "/v1/admin/syncs/{sync_id}/retry"),
    ("GET", "/v1/admin/deliveries"),
    ("GET", "/v1/admin/deliveries/{delivery_id}"),
    ("GET", "/v1/admin/github/deliveries"),
    ("POST", "/v1/admin/github/deliveries/redeliver-missing"),
    ("GET", "/v1/admin/github/deliveries/{guid}"),
    ("POST", "/v1/admin/github/deliveries/{guid}/redeliver"),
    ("GET", "/v1/admin/dead-letters"),
    ("GET", "/v1/admin/aggregates/{type}/{id}/events"),
    ("GET", "/v1/admin/aggregates/{type}/{id}/state"),
    ("GET", "/v1/admin/feed"),
    ("GET", "/v1/admin/openapi.json"),
    ("GET", "/v1/audit/key"),
    ("GET", "/v1/audit/{log}/checkpoint"),
    ("GET", "/v1/audit/{log}/tile/{path}"),
];

pub const UNKNOWN_TARGET: &str = "0b5e1c9a-3c1f-5d0e-8f7a-2a4b6c8d0e1f";

/// A path of the route with well-formed ids of things that do not exist.
pub fn concrete(template: &str) -> String {
    let path = if template.starts_with("/v1/admin/instances/") {
        template.replace("{id}", "github-installation-999999")
    } else if template.starts_with("/v1/admin/aggregates/") {
        template
            .replace("{type}", "ConnectorTarget")
            .replace("{id}", UNKNOWN_TARGET)
    } else {
        template.replace("{id}", UNKNOWN_TARGET)
    };
    let path = path
        .replace("{log}", "deliveries")
        .replace("{path}", "0/000")
        .replace("{sync_id}", "7d1f3a5e-9b2c-5e4d-8a6f-1c3e5a7b9d0f")
        .replace("{delivery_id}", "no-such-delivery")
        .replace("{guid}", "no-such-github-delivery");
    // `/file` names the file in its query; without one it never reaches the target lookup.
    match path.ends_with("/file") {
        true => format!("{path}?path=README.md"),
        false => path,
    }
}

pub fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap()
}

pub fn is_admin(template: &str) -> bool {
    template.starts_with("/v1/admin/")
}

pub fn is_write(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD")
}

//! The OpenAPI 3.1 document of the admin listener, generated from the handlers' `#[utoipa::path]`
//! annotations, served at `GET /v1/admin/openapi.json`. Every `/v1/admin` route needs the bearer
//! token; the health checks, `/metrics` and the audit logs' checkpoints and hash tiles are open
//! (`security: [{}]`).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    connect, deliveries, events, feed, files, github, instances, repositories, session, syncs,
    targets,
};
use crate::{audit, error, health, metrics};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hooklog admin API",
        description = "Installations, tracked branches, syncs, synced files, deliveries, the GitHub reconciler's findings and the event record of hooklog. \
            Commands answer 202 with the events they committed and their `HOOKLOG_EVENTS` position; \
            pass it as `min_position` to a read to see the change.",
    ),
    paths(
        health::healthz,
        health::readyz,
        metrics::metrics,
        session::get,
        events::redrive,
        connect::install,
        connect::repositories,
        instances::list,
        instances::create,
        instances::get,
        instances::update,
        instances::delete,
        repositories::list,
        repositories::create,
        repositories::get,
        repositories::delete,
        repositories::retry,
        repositories::health,
        repositories::incidents,
        repositories::incident,
        repositories::pull_requests,
        targets::list,
        targets::create,
        targets::get,
        targets::update,
        targets::delete,
        syncs::request,
        syncs::list_for_target,
        syncs::list,
        syncs::get,
        syncs::retry,
        files::list,
        files::get,
        files::discovery,
        deliveries::list,
        deliveries::get,
        github::list,
        github::get,
        github::redeliver,
        github::redeliver_missing,
        events::dead_letters,
        events::aggregate_events,
        events::aggregate_state,
        feed::feed,
        document,
        audit::key,
        audit::checkpoint,
        audit::tile,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerAuth, &UniqueOperationIds),
    security(("bearer" = [])),
    tags(
        (name = "session", description = "The presented token's holder and access"),
        (name = "instances", description = "GitHub App installations"),
        (name = "repositories", description = "Repositories connected without the App, through webhooks hooklog creates and removes at GitHub or GitLab"),
        (name = "targets", description = "Tracked repository branches"),
        (name = "syncs", description = "Sync runs"),
        (name = "files", description = "What the syncer holds of each tracked branch"),
        (name = "deliveries", description = "What GitHub sent"),
        (name = "github", description = "What GitHub attempted that the stream lacked (the GitHub reconciler's findings), and operators' redeliveries"),
        (name = "events", description = "The event record"),
        (name = "health", description = "Open: health, readiness, metrics"),
        (name = "audit", description = "The transparency logs as C2SP tlog-tiles: checkpoints and hash tiles open, entry bundles with a token"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

/// Operation ids are the handlers' names, which repeat across modules (`list`, `get`…);
/// OpenAPI wants them unique, so each is prefixed with its first tag: `instances_list`.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                let tag = operation
                    .tags
                    .as_ref()
                    .and_then(|tags| tags.first())
                    .cloned();
                if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
                    if !id.starts_with(&format!("{tag}_")) {
                        *id = format!("{tag}_{id}");
                    }
                }
            }
        }
    }
}

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "HOOKLOG_ADMIN_TOKEN (read-write) or HOOKLOG_ADMIN_READ_TOKEN (read-only)",
                    ))
                    .build(),
            ),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/v1/admin/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

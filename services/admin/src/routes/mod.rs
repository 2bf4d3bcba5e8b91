//! The admin API under `/v1/admin`, behind the bearer-token check. One module per resource;
//! this one only lists the routes (the same list the OpenAPI document describes).

pub mod connect;
pub mod deliveries;
pub mod events;
pub mod feed;
pub mod files;
pub mod github;
pub mod instances;
pub mod repositories;
pub mod session;
pub mod syncs;
pub mod targets;

use axum::http::{Method, Uri};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::state::AdminState;

/// The parameter every single-resource read accepts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Answer only once the read model applied this stream position (read your writes).
    pub min_position: Option<u64>,
}

/// The `/v1/admin` routes, without the token check (see `crate::router`).
pub fn api() -> Router<AdminState> {
    Router::new()
        .route("/session", get(session::get))
        .route("/github/install", post(connect::install))
        .route("/instances/{id}/repositories", get(connect::repositories))
        .route("/instances", get(instances::list).post(instances::create))
        .route(
            "/instances/{id}",
            get(instances::get)
                .patch(instances::update)
                .delete(instances::delete),
        )
        .route(
            "/repositories",
            get(repositories::list).post(repositories::create),
        )
        .route(
            "/repositories/{id}",
            get(repositories::get).delete(repositories::delete),
        )
        .route("/repositories/{id}/retry", post(repositories::retry))
        .route("/repositories/{id}/health", get(repositories::health))
        .route("/incidents", get(repositories::incidents))
        .route("/incidents/{id}", get(repositories::incident))
        .route("/pull-requests", get(repositories::pull_requests))
        .route("/targets", get(targets::list).post(targets::create))
        .route(
            "/targets/{id}",
            get(targets::get)
                .patch(targets::update)
                .delete(targets::delete),
        )
        .route("/targets/{id}/sync", post(syncs::request))
        .route("/targets/{id}/syncs", get(syncs::list_for_target))
        .route("/targets/{id}/files", get(files::list))
        .route("/targets/{id}/file", get(files::get))
        .route("/targets/{id}/discovery", get(files::discovery))
        .route("/syncs", get(syncs::list))
        .route("/syncs/{sync_id}", get(syncs::get))
        .route("/syncs/{sync_id}/retry", post(syncs::retry))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{delivery_id}", get(deliveries::get))
        .route("/github/deliveries", get(github::list))
        .route(
            "/github/deliveries/redeliver-missing",
            post(github::redeliver_missing),
        )
        .route("/github/deliveries/{guid}", get(github::get))
        .route(
            "/github/deliveries/{guid}/redeliver",
            post(github::redeliver),
        )
        .route("/dead-letters", get(events::dead_letters))
        .route(
            "/dead-letters/{stream_sequence}/redrive",
            post(events::redrive),
        )
        .route(
            "/aggregates/{type}/{id}/events",
            get(events::aggregate_events),
        )
        .route(
            "/aggregates/{type}/{id}/state",
            get(events::aggregate_state),
        )
        .route("/feed", get(feed::feed))
        .route("/openapi.json", get(crate::openapi::document))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn unknown_route(uri: Uri) -> ApiError {
    ApiError::not_found("route_not_found", format!("route {}", uri.path()))
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
    }
}

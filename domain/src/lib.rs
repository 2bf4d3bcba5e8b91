//! hooklog's pure core.
//!
//! Everything here is plain data and rules: no HTTP, SQL or NATS. The service crates wrap it with
//! adapters.
//! - `github`: the GitHub delivery envelope (typed header values, the `X-Hub-Signature-256` check,
//!   the payload format check), shared by the ingress (which verifies) and auditors (who re-verify).
//! - `connector_instance` and `connector_target`: the cqrs-es aggregates that decide what a
//!   delivery or an operator's command makes happen.
//! - `github_delivery`: the GitHub reconciler's aggregate: a delivery GitHub attempted that the
//!   stream lacks, and each redelivery asked for.
//! - `repository_connection`: a repository connected without the App, through a webhook
//!   hooklog creates and removes at GitHub or GitLab.
//! - `ids`, `metadata`, `clock`: the typed ids, command metadata and time those aggregates use.
//! - `source`: a target's git source, and the prefixes (`HOOKLOG_SYNCER_ALLOWED_SOURCES`) it must
//!   be under.
#![forbid(unsafe_code)]

/// A newtype over `String` with `as_str` and `Display`, for values checked once at the boundary
/// (`DeliveryId`, `Branch`, …). Derives and other attributes come with the invocation.
macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pub mod clock;
pub mod connector_instance;
pub mod connector_target;
pub mod delivery;
pub mod github;
pub mod github_delivery;
pub mod gitlab;
pub mod ids;
pub mod metadata;
pub mod repository_connection;
pub mod source;

//! hooklog's pure core.
//!
//! Everything here is plain data and rules: no HTTP, SQL or NATS. The service crates wrap it with
//! adapters. Today it holds the GitHub delivery envelope (`github`): the typed header values of a
//! webhook delivery, the `X-Hub-Signature-256` check and the payload format check, shared by the
//! ingress (which verifies) and by auditors (who re-verify what was stored).
#![forbid(unsafe_code)]

pub mod github;

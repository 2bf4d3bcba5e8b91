//! hooklog's read side: the read models admins and their dashboard query, the projector that
//! keeps them from `HOOKLOG_EVENTS` and `GITHUB_DELIVERIES` with checkpoints committed in the same
//! transaction as their rows, and rebuild and drift checks.
//!
//! Empty for now: the ingress stores deliveries, and nothing consumes them into read models yet.
#![forbid(unsafe_code)]

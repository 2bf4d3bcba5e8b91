//! The ingress against a real `nats-server` (one per test, free port, temporary store), through
//! real HTTP on a free port. GitHub is the only fake: requests are built the way it sends them.

mod support;

mod bad_input;
mod examples;
mod fuzz;
mod hostile;
mod outage;
mod storage;

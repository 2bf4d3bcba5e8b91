//! The bounded form of the fault-injection suite (`examples/faults/`), run by `cargo test`
//! against the debug binary: every role its own process, two of the worker, projector, syncer
//! and process manager, one round of faults while deliveries stream in (each role SIGKILLed
//! and started again, nats-server SIGKILLed and restarted, PostgreSQL crashed and restarted),
//! then the checks. About a minute; its own test binary, so nothing else of this crate runs
//! beside it. `services/hooklog/bench/faults.sh --full` is the long form.

// The example uses the rest of the module: the full form and the deliberate faults.
#[allow(dead_code)]
#[path = "../examples/faults/suite/mod.rs"]
mod suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_acknowledged_delivery_is_lost_or_synced_twice_while_each_role_and_server_fails_in_turn()
{
    let options = suite::Options::bounded(env!("CARGO_BIN_EXE_hooklog").into());
    let report = suite::run(options).await.expect("the suite runs");
    println!("{report}");
    assert!(report.passed(), "{report}");
}

//! The bounded form of the fault-injection suite (`examples/faults/`) against a three-node
//! JetStream cluster on loopback ports, every stream with three replicas: the same processes,
//! load, faults and checks as `tests/faults.rs`, except that the NATS fault loses the node
//! leading `GITHUB_DELIVERIES` (SIGKILL, then started again on its store), and that every
//! request answered 503 must fall within that node's leader election. A test binary of its own,
//! so it never runs beside the single-server form. `services/hooklog/bench/faults.sh --cluster
//! --full` is the long form.

// The example uses the rest of the module: the full form and the deliberate faults.
#[allow(dead_code)]
#[path = "../examples/faults/suite/mod.rs"]
mod suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_losing_its_stream_leader_under_load_loses_nothing_acknowledged() {
    let mut options = suite::Options::bounded(env!("CARGO_BIN_EXE_hooklog").into());
    options.cluster = true;
    options.form.push_str(", three-node cluster");
    let report = suite::run(options).await.expect("the suite runs");
    println!("{report}");
    assert!(report.passed(), "{report}");
}

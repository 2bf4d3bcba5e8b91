#!/usr/bin/env bash
# Fault-injection suite, by hand: builds the release binary and `examples/faults`, then runs
# every role of `hooklog serve` as its own process (two workers, projectors, syncers and process
# managers) against its own nats-server and PostgreSQL while signed deliveries stream in, kills
# each role in turn, stops and restarts nats-server and PostgreSQL, and checks that nothing
# answered 2xx was lost or left undecided, that no head was synced twice, that every projection
# equals a rebuild and that `hooklog audit verify` passes. Exits non-zero on any finding.
#
# Usage: services/hooklog/bench/faults.sh [--full] [--cluster] [--rate N] [--rounds N] [--gap SECONDS]
#                                         [--sabotage lose-tail|lose-decision|double-sync] [--keep]
#   (no flag: the bounded form CI runs as `cargo test -p hooklog --test faults`, on the release
#   build here; --full: four rounds at 40 deliveries/s and every process killed at once, about 5.5 minutes;
#   --cluster: against a three-node JetStream cluster with three replicas of every stream, the node
#   leading GITHUB_DELIVERIES lost instead of the one server, as CI runs it with
#   `cargo test -p hooklog --test faults_cluster`)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../../.ci/setup"
cd "$HOOKLOG_ROOT"
cargo build --release --quiet -p hooklog --bin hooklog --example faults
echo "$(nproc) cores; $(./target/release/hooklog --version)"
exec ./target/release/examples/faults --bin "$PWD/target/release/hooklog" "$@"

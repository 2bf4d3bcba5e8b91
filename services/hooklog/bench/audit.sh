#!/usr/bin/env bash
# Audit benchmark: stores N push deliveries (default 100,000, 7 KB each, the ingress's headers)
# on GITHUB_DELIVERIES and N small events on HOOKLOG_EVENTS of a local nats-server, then
#  - starts the sealer on them and prints how fast it builds and commits both trees (leaves/s)
#    and when the checkpoint of that size is signed;
#  - replays each stream to a file with `hooklog replay` and prints the rate it reports.
#
# Usage: services/hooklog/bench/audit.sh [deliveries, default 100000]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../../.ci/setup"
cd "$HOOKLOG_ROOT"
DELIVERIES="${1:-100000}"

cargo build --release --quiet -p hooklog --bin hooklog --example seal_bench

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
write_push "$work/push.json"
start_nats

echo "$(nproc) cores; the sealer alone (in the bench process), nats-server and PostgreSQL"
HOOKLOG_LOG="${HOOKLOG_LOG:-warn}" ./target/release/examples/seal_bench --deliveries "$DELIVERIES" \
  --payload "$work/push.json" --nats-url "nats://127.0.0.1:$nats_port" \
  --database-url "postgres://postgres@127.0.0.1:5432/$db"

for log in events deliveries; do
  HOOKLOG_NATS_URL="nats://127.0.0.1:$nats_port" HOOKLOG_LOG=warn \
    ./target/release/hooklog replay "$log" --out "$work/$log.jsonl" 2>&1 | grep replayed
  echo "  $(wc -l < "$work/$log.jsonl") lines, $(du -h "$work/$log.jsonl" | cut -f1)"
done

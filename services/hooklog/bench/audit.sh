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

work="$(mktemp -d)"
db="hooklog_bench_$$"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" postgres >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$work/push.json" <<'PY'
import json, sys
events = json.load(open("services/ingress/tests/fixtures/octokit-webhooks-examples/api.github.com.json"))
push = next(x for e in events if e["name"] == "push" for x in e["examples"] if x.get("installation") and x["ref"] == "refs/heads/master")
open(sys.argv[1], "w").write(json.dumps(push))
PY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 400); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

nats_port=$(free_port)
"$HOOKLOG_NATS_SERVER_BIN" --config nats.conf --addr 127.0.0.1 --port "$nats_port" \
  --jetstream --store_dir "$work/jetstream" 2> "$work/nats.log" &
pids+=("$!")
wait_port "$nats_port"

echo "$(nproc) cores; the sealer alone (in the bench process), nats-server and PostgreSQL"
HOOKLOG_LOG="${HOOKLOG_LOG:-warn}" ./target/release/examples/seal_bench --deliveries "$DELIVERIES" \
  --payload "$work/push.json" --nats-url "nats://127.0.0.1:$nats_port" \
  --database-url "postgres://postgres@127.0.0.1:5432/$db"

for log in events deliveries; do
  HOOKLOG_NATS_URL="nats://127.0.0.1:$nats_port" HOOKLOG_LOG=warn \
    ./target/release/hooklog replay "$log" --out "$work/$log.jsonl" 2>&1 | grep replayed
  echo "  $(wc -l < "$work/$log.jsonl") lines, $(du -h "$work/$log.jsonl" | cut -f1)"
done

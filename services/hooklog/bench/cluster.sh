#!/usr/bin/env bash
# Cluster benchmark: a three-node JetStream cluster on loopback ports, `hooklog serve --role
# ingress` with HOOKLOG_STREAM_REPLICAS=3 connected to all three, signed push deliveries at a
# steady rate; after a while the node leading GITHUB_DELIVERIES is killed (SIGKILL). Prints the
# answers around the kill, how long non-2xx answers lasted against the leader election, and
# whether every acknowledged delivery is on the two nodes left; exits 1 on a loss. The load is
# `services/hooklog/examples/cluster_bench.rs`.
#
# Usage: services/hooklog/bench/cluster.sh [rate/s, default 200] [seconds, default 30] [kill after, default 10]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../../.ci/setup"
cd "$HOOKLOG_ROOT"
RATE="${1:-200}"
SECONDS_TOTAL="${2:-30}"
KILL_AFTER="${3:-10}"

cargo build --release --quiet -p hooklog --bin hooklog --example cluster_bench

BENCH_DB_PREFIX=hooklog_cluster source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
write_push "$work/push.json"

names=(n1 n2 n3)
declare -A client_port cluster_port node_pid
for name in "${names[@]}"; do client_port[$name]=$(free_port); cluster_port[$name]=$(free_port); done
for name in "${names[@]}"; do
  routes=""
  for other in "${names[@]}"; do
    [ "$other" = "$name" ] || routes="${routes:+$routes,}nats://127.0.0.1:${cluster_port[$other]}"
  done
  "$HOOKLOG_NATS_SERVER_BIN" --config nats.conf --name "$name" --addr 127.0.0.1 --port "${client_port[$name]}" \
    --cluster_name hooklog --cluster "nats://127.0.0.1:${cluster_port[$name]}" --routes "$routes" \
    --jetstream --store_dir "$work/js-$name" 2> "$work/nats-$name.log" &
  node_pid[$name]=$!
  pids+=("$!")
done
for name in "${names[@]}"; do wait_port "${client_port[$name]}"; done
nats_urls=""
nodes=""
for name in "${names[@]}"; do
  nats_urls="${nats_urls:+$nats_urls,}nats://127.0.0.1:${client_port[$name]}"
  nodes="${nodes:+$nodes,}$name=${node_pid[$name]}=nats://127.0.0.1:${client_port[$name]}"
done

secret="bench-secret-$RANDOM$RANDOM"
ingress_port=$(free_port)
# The cluster needs a moment to elect its meta leader before streams can be created.
for attempt in $(seq 1 30); do
  HOOKLOG_INGRESS_ADDR="127.0.0.1:$ingress_port" HOOKLOG_NATS_URL="$nats_urls" HOOKLOG_STREAM_REPLICAS=3 \
    HOOKLOG_GITHUB_WEBHOOK_SECRET="$secret" HOOKLOG_LOG="${HOOKLOG_LOG:-warn}" \
    ./target/release/hooklog serve --role ingress 2>> "$work/hooklog.log" &
  hooklog_pid=$!
  sleep 1
  kill -0 "$hooklog_pid" 2>/dev/null && break
  [ "$attempt" = 30 ] && { echo "hooklog did not start:" >&2; tail -5 "$work/hooklog.log" >&2; exit 1; }
done
pids+=("$hooklog_pid")
wait_port "$ingress_port"

echo "$(nproc) cores shared by three nats-servers, hooklog serve --role ingress and the load; replicas 3"
./target/release/examples/cluster_bench --url "http://127.0.0.1:$ingress_port/v1/webhooks/connectors/github" \
  --secret "$secret" --payload "$work/push.json" --rate "$RATE" --seconds "$SECONDS_TOTAL" \
  --kill-after "$KILL_AFTER" --nodes "$nodes"

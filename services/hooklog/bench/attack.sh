#!/usr/bin/env bash
# Attack benchmark: valid deliveries' latency while the ingress is attacked (slow forged uploads
# from one address, then from twenty, then a flood of bad signatures). Starts its own
# nats-server and `hooklog serve --role ingress` (release build, the default ingress settings);
# the load and the table are `services/ingress/examples/attack_bench.rs`. Every valid delivery
# must be answered 202 and stored; the script exits 1 otherwise.
#
# Usage: services/hooklog/bench/attack.sh [valid deliveries/s, default 50] [seconds per scenario, default 15]
# Environment: ATTACK_SCENARIOS (none,slow-one,slow-twenty,bad-signatures), HOOKLOG_LOG (warn),
# and any HOOKLOG_INGRESS_* setting to try other limits.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../../.ci/setup"
cd "$HOOKLOG_ROOT"
RATE="${1:-50}"
SECONDS_PER="${2:-15}"

cargo build --release --quiet -p hooklog --bin hooklog
cargo build --release --quiet -p hooklog-ingress --example attack_bench

BENCH_DB_PREFIX=hooklog_attack source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
write_push "$work/push.json"
start_nats

secret="bench-secret-$RANDOM$RANDOM"
ingress_port=$(free_port)
admin_port=$(free_port)
HOOKLOG_INGRESS_ADDR="127.0.0.1:$ingress_port" HOOKLOG_ADMIN_ADDR="127.0.0.1:$admin_port" \
  HOOKLOG_NATS_URL="nats://127.0.0.1:$nats_port" HOOKLOG_GITHUB_WEBHOOK_SECRET="$secret" \
  HOOKLOG_LOG="${HOOKLOG_LOG:-warn}" ./target/release/hooklog serve --role ingress 2> "$work/hooklog.log" &
hooklog_pid=$!
pids+=("$hooklog_pid")
wait_port "$ingress_port"

echo "$(nproc) cores shared by nats-server, hooklog serve --role ingress and the load; valid deliveries: $RATE/s from 127.0.0.1 for ${SECONDS_PER}s per scenario"
status=0
./target/release/examples/attack_bench \
  --url "http://127.0.0.1:$ingress_port/v1/webhooks/connectors/github" --secret "$secret" \
  --payload "$work/push.json" --rate "$RATE" --seconds "$SECONDS_PER" \
  --nats-url "nats://127.0.0.1:$nats_port" \
  --scenarios "${ATTACK_SCENARIOS:-none,slow-one,slow-twenty,bad-signatures}" || status=$?
ticks=$(getconf CLK_TCK)
read -r utime stime < <(awk '{print $14, $15}' "/proc/$hooklog_pid/stat")
echo "hooklog: peak RSS $(( $(awk '/VmHWM/ {print $2}' "/proc/$hooklog_pid/status") / 1024 )) MiB, CPU $(awk -v t="$((utime + stime))" -v hz="$ticks" 'BEGIN {printf "%.1f", t / hz}') s; warnings in its log: $(grep -c '"WARN"' "$work/hooklog.log" || true)"
exit "$status"

#!/usr/bin/env bash
# Write-path benchmark: `hooklog serve` (ingress, worker, relay, admin, projector; not the syncer,
# which has no GitHub App to reach here and would turn each request into a failure) against a local
# nats-server and PostgreSQL; 10,000 signed push deliveries for 100 tracked targets, a distinct
# head each. Prints the ingress rate, the worker's commands/s and the time from the last 202 to
# the last resulting event on HOOKLOG_EVENTS.
#
# Usage: services/hooklog/bench/pipeline.sh [deliveries, default 10000] [targets, default 100] [concurrency, default 32]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../../.ci/setup"
cd "$HOOKLOG_ROOT"
DELIVERIES="${1:-10000}"
TARGETS="${2:-100}"
CONCURRENCY="${3:-32}"

cargo build --release --quiet -p hooklog --bin hooklog --example pipeline_bench

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
write_push "$work/push.json"
start_nats

secret="bench-secret-$RANDOM$RANDOM"
ingress_port=$(free_port)
admin_port=$(free_port)
export HOOKLOG_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
HOOKLOG_INGRESS_ADDR="127.0.0.1:$ingress_port" HOOKLOG_ADMIN_ADDR="127.0.0.1:$admin_port" \
  HOOKLOG_NATS_URL="nats://127.0.0.1:$nats_port" HOOKLOG_GITHUB_WEBHOOK_SECRET="$secret" \
  HOOKLOG_LOG="${HOOKLOG_LOG:-warn}" ./target/release/hooklog serve \
  --role ingress,admin,worker,relay,projector,process-manager,sealer 2> "$work/hooklog.log" &
hooklog_pid=$!
pids+=("$hooklog_pid")
wait_port "$admin_port"
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null && break; sleep 0.05; done

# CPU seconds a process used, its reaped children's included (the PostgreSQL server: every
# backend, living or gone, is the postmaster's child).
ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }
postgres_ticks() {
  local main total=0
  main=$(pgrep -o -x postgres || true)
  [ -z "$main" ] && { echo 0; return; }
  total=$(ticks "$main")
  for pid in $(pgrep -P "$main"); do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0))); done
  echo "$total"
}
nats_pid=${pids[0]}
before=("$(ticks "$hooklog_pid")" "$(postgres_ticks)" "$(ticks "$nats_pid")")

echo "$(nproc) cores; hooklog serve with every role but the syncer in one process"
./target/release/examples/pipeline_bench --url "http://127.0.0.1:$ingress_port/v1/webhooks/connectors/github" \
  --secret "$secret" --database-url "$HOOKLOG_DATABASE_URL" --nats-url "nats://127.0.0.1:$nats_port" \
  --targets "$TARGETS" --deliveries "$DELIVERIES" --concurrency "$CONCURRENCY" --payload "$work/push.json"
after=("$(ticks "$hooklog_pid")" "$(postgres_ticks)" "$(ticks "$nats_pid")")
hz=$(getconf CLK_TCK)
per() { awk -v a="$1" -v b="$2" -v hz="$hz" -v n="$DELIVERIES" 'BEGIN { printf "%.1f s (%.2f ms per delivery)", (b - a) / hz, (b - a) / hz * 1000 / n }'; }
echo "CPU during the run: hooklog $(per "${before[0]}" "${after[0]}"), PostgreSQL $(per "${before[1]}" "${after[1]}"), nats-server $(per "${before[2]}" "${after[2]}")"
echo "warnings in hooklog's log: $(grep -c '"WARN"' "$work/hooklog.log" || true)"; grep '"WARN"' "$work/hooklog.log" | head -3 || true
[ -n "${BENCH_KEEP_LOG:-}" ] && cp "$work/hooklog.log" "$BENCH_KEEP_LOG"
echo "hooklog peak RSS: $(( $(awk '/VmHWM/ {print $2}' "/proc/$hooklog_pid/status") / 1024 )) MiB"

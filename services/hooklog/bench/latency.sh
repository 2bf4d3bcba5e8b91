#!/usr/bin/env bash
# Latency benchmark: the time from the ingress's 202 for a signed push to the sync run it
# requested being listed by the admin API (GET /v1/admin/syncs), at a steady rate. Starts its own
# nats-server, a fresh database and `hooklog serve` (every role but the syncer, release build:
# with no GitHub App to reach, each run would only add a failure to the load; the runs measured
# here are visible as soon as they are requested); the load and the
# measurement are `examples/latency_bench.rs`: it first tracks one branch per push through the
# admin API (a target has one sync in flight and later pushes only queue), waits for the
# projector, then sends one push per target, open loop, while one observer polls the runs.
#
# Usage: services/hooklog/bench/latency.sh [rate/s, default 500] [seconds, default 60]
# Environment: LATENCY_RATE, LATENCY_DURATION (instead of the arguments), LATENCY_INSTALLATIONS
# (100), LATENCY_SETUP_CONCURRENCY (32), LATENCY_POLL_MS (5), LATENCY_DRAIN_SECS (300),
# LATENCY_ROLES (the roles `serve` runs, default all but the syncer), HOOKLOG_LOG (warn),
# BENCH_KEEP_LOG (copy hooklog's log there), BENCH_KEEP_DB (keep the database, to look at where
# the time went).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../../.ci/setup"
cd "$HOOKLOG_ROOT"
RATE="${1:-${LATENCY_RATE:-500}}"
DURATION="${2:-${LATENCY_DURATION:-60}}"

cargo build --release --quiet -p hooklog --bin hooklog --example latency_bench

BENCH_DB_PREFIX=hooklog_latency source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
write_push "$work/push.json"
start_nats

secret="bench-secret-$RANDOM$RANDOM"
write_token="bench-write-$RANDOM$RANDOM"
read_token="bench-read-$RANDOM$RANDOM"
ingress_port=$(free_port)
admin_port=$(free_port)
export HOOKLOG_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
HOOKLOG_INGRESS_ADDR="127.0.0.1:$ingress_port" HOOKLOG_ADMIN_ADDR="127.0.0.1:$admin_port" \
  HOOKLOG_NATS_URL="nats://127.0.0.1:$nats_port" HOOKLOG_GITHUB_WEBHOOK_SECRET="$secret" \
  HOOKLOG_ADMIN_TOKEN="$write_token" HOOKLOG_ADMIN_READ_TOKEN="$read_token" \
  HOOKLOG_LOG="${HOOKLOG_LOG:-warn}" ./target/release/hooklog serve \
  --role "${LATENCY_ROLES:-ingress,admin,worker,relay,projector,process-manager,sealer}" 2> "$work/hooklog.log" &
hooklog_pid=$!
pids+=("$hooklog_pid")
wait_port "$admin_port"
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null && break; sleep 0.05; done

echo "$(nproc) cores shared by nats-server, PostgreSQL, hooklog serve (every role but the syncer, one process) and the load generator"
status=0
./target/release/examples/latency_bench \
  --ingress-url "http://127.0.0.1:$ingress_port/v1/webhooks/connectors/github" \
  --admin-url "http://127.0.0.1:$admin_port/v1/admin" \
  --secret "$secret" --write-token "$write_token" --read-token "$read_token" \
  --rate "$RATE" --duration "$DURATION" --payload "$work/push.json" \
  --installations "${LATENCY_INSTALLATIONS:-100}" \
  --setup-concurrency "${LATENCY_SETUP_CONCURRENCY:-32}" \
  --poll-ms "${LATENCY_POLL_MS:-5}" --nats-url "nats://127.0.0.1:$nats_port" --drain-secs "${LATENCY_DRAIN_SECS:-300}" || status=$?
echo "warnings in hooklog's log: $(grep -c '"WARN"' "$work/hooklog.log" || true)"; grep '"WARN"' "$work/hooklog.log" | head -3 || true
[ -n "${BENCH_KEEP_LOG:-}" ] && cp "$work/hooklog.log" "$BENCH_KEEP_LOG"
echo "hooklog peak RSS: $(( $(awk '/VmHWM/ {print $2}' "/proc/$hooklog_pid/status") / 1024 )) MiB"
exit "$status"

#!/usr/bin/env bash
# Burst benchmark: 50,000 signed push deliveries over 1,000 concurrent connections, as fast as
# the ingress answers, against every role but the syncer each in its own `hooklog serve --role`
# process (release build) on a local nats-server and PostgreSQL. Checks that every delivery
# answered 2xx is stored and decided, and that overload is answered 503 with Retry-After in time
# (no answer after GitHub's 10 s); prints the answers, their latency and each role's peak RSS.
# The load is `services/hooklog/examples/burst_bench.rs`.
#
# Usage: services/hooklog/bench/burst.sh [deliveries, default 50000] [connections, default 1000]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../../.ci/setup"
cd "$HOOKLOG_ROOT"
DELIVERIES="${1:-50000}"
CONNECTIONS="${2:-1000}"

cargo build --release --quiet -p hooklog --bin hooklog --example burst_bench

BENCH_DB_PREFIX=hooklog_burst source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
write_push "$work/push.json"
start_nats

secret="bench-secret-$RANDOM$RANDOM"
ingress_port=$(free_port)
admin_port=$(free_port)
export HOOKLOG_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export HOOKLOG_NATS_URL="nats://127.0.0.1:$nats_port" HOOKLOG_GITHUB_WEBHOOK_SECRET="$secret"
export HOOKLOG_LOG="${HOOKLOG_LOG:-warn}"
./target/release/hooklog migrate > /dev/null
roles=(ingress worker relay projector process-manager sealer admin)
declare -A role_pid
for role in "${roles[@]}"; do
  HOOKLOG_INGRESS_ADDR="127.0.0.1:$ingress_port" HOOKLOG_ADMIN_ADDR="127.0.0.1:$admin_port" \
    HOOKLOG_DATA_DIR="$work/data-$role" ./target/release/hooklog serve --role "$role" 2> "$work/$role.log" &
  role_pid[$role]=$!
  pids+=("$!")
done
wait_port "$ingress_port"
wait_port "$admin_port"
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null && break; sleep 0.05; done

echo "$(nproc) cores shared by nats-server, PostgreSQL, one process per role and the load"
status=0
./target/release/examples/burst_bench --url "http://127.0.0.1:$ingress_port/v1/webhooks/connectors/github" \
  --secret "$secret" --payload "$work/push.json" --deliveries "$DELIVERIES" --connections "$CONNECTIONS" \
  --database-url "$HOOKLOG_DATABASE_URL" --nats-url "$HOOKLOG_NATS_URL" || status=$?
line="peak RSS:"
for role in "${roles[@]}"; do
  line="$line $role $(( $(awk '/VmHWM/ {print $2}' "/proc/${role_pid[$role]}/status") / 1024 )) MiB,"
done
echo "${line%,}; nats-server $(( $(awk '/VmHWM/ {print $2}' "/proc/${pids[0]}/status") / 1024 )) MiB"
echo "warnings: $(cat "$work"/*.log | grep -c '"WARN"' || true)"; cat "$work"/*.log | grep '"WARN"' | head -3 || true
exit "$status"

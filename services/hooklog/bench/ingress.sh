#!/usr/bin/env bash
# Ingress benchmark: signed push deliveries (a real ~7 KB payload from the vendored GitHub examples,
# a fresh delivery id each) at 32 concurrent connections for 10 s against `hooklog serve --role
# ingress` and a local nats-server with the repository's nats.conf, then the same load against a bare axum handler that answers
# 202 without verifying or storing, and against a minimal receiver that does only what GitHub's
# promise needs (`services/ingress/examples/minimal_receiver.rs`: HMAC verify, JetStream publish
# with Nats-Msg-Id, PubAck, 202). Prints deliveries/s, p50, p99, hooklog's peak RSS and the ratios.
#
# Usage: services/hooklog/bench/ingress.sh [duration, default 10s] [connections, default 32]
# INGRESS_ROUNDS (default 3): rounds of hooklog then the minimal receiver; the ratio is their median.
# Environment: BENCH_NATS_SYNC sets JetStream's `sync_interval` for the run (`always`: an fsync
# before every PubAck; a duration such as `2m`: fsync on that interval); unset, nats.conf as is.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../../.ci/setup"
cd "$HOOKLOG_ROOT"
DURATION="${1:-10s}"
CONNECTIONS="${2:-32}"
ROUNDS="${INGRESS_ROUNDS:-3}"
command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

cargo build --release --quiet -p hooklog
cargo build --release --quiet -p hooklog-ingress --example bare_receiver --example minimal_receiver

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

secret="bench-secret-$RANDOM$RANDOM"
python3 - "$work/push.json" <<'PY'
import json, sys
events = json.load(open("services/ingress/tests/fixtures/octokit-webhooks-examples/api.github.com.json"))
push = next(e for e in events if e["name"] == "push")["examples"][0]
open(sys.argv[1], "wb").write(json.dumps(push, indent=2).encode())
PY
export BENCH_PAYLOAD="$work/push.json"
export BENCH_SIGNATURE="sha256=$(python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$secret" "$BENCH_PAYLOAD")"
payload_bytes=$(stat -c %s "$BENCH_PAYLOAD")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

# A local JetStream with the repository's nats.conf and a monitoring port, so the run can count
# what was stored independently of what hooklog answered.
nats_port=$(free_port)
monitor_port=$(free_port)
conf="$work/nats.conf"
if [ -n "${BENCH_NATS_SYNC:-}" ]; then
  grep -Eq '^\s*#?\s*sync_interval:' nats.conf || { echo "nats.conf has no sync_interval line" >&2; exit 1; }
  sed -E "s/^(\s*)#?\s*sync_interval:.*/\1sync_interval: $BENCH_NATS_SYNC/" nats.conf > "$conf"
else
  cp nats.conf "$conf"
fi
sync_interval=$(grep -E '^\s*sync_interval:' "$conf" | awk '{print $2}' || true)
echo "JetStream sync_interval: ${sync_interval:-the nats-server default, 2m}${BENCH_NATS_SYNC:+ (BENCH_NATS_SYNC)}"
"$HOOKLOG_NATS_SERVER_BIN" --config "$conf" --addr 127.0.0.1 --port "$nats_port" \
  --http_port "$monitor_port" --jetstream --store_dir "$work/jetstream" 2> "$work/nats.log" &
pids+=("$!")
wait_port "$nats_port"
stored_deliveries() {
  curl -s "http://127.0.0.1:$monitor_port/jsz?streams=true" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(s["state"]["messages"] for a in d.get("account_details",[]) for s in a.get("stream_detail",[]) if s["name"]=="GITHUB_DELIVERIES"))'
}

# hooklog's ingress role against it.
ingress_port=$(free_port)
HOOKLOG_INGRESS_ADDR="127.0.0.1:$ingress_port" HOOKLOG_NATS_URL="nats://127.0.0.1:$nats_port" \
  HOOKLOG_GITHUB_WEBHOOK_SECRET="$secret" HOOKLOG_LOG="${HOOKLOG_LOG:-info}" \
  ./target/release/hooklog serve --role ingress 2> "$work/hooklog.log" &
hooklog_pid=$!
pids+=("$hooklog_pid")
wait_port "$ingress_port"

# The minimal receiver: HMAC verify, JetStream publish with Nats-Msg-Id, PubAck, 202.
minimal_port=$(free_port)
./target/release/examples/minimal_receiver "127.0.0.1:$minimal_port" "nats://127.0.0.1:$nats_port" "$secret" &
pids+=("$!")
wait_port "$minimal_port"

# The bare receiver.
bare_port=$(free_port)
./target/release/examples/bare_receiver "127.0.0.1:$bare_port" &
pids+=("$!")
wait_port "$bare_port"

run_wrk() { # url run-id [duration]
  BENCH_RUN_ID="$2" wrk -t2 -c"$CONNECTIONS" -d"${3:-$DURATION}" --latency \
    -s services/hooklog/bench/deliveries.lua "$1"
}
rate() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
total() { awk '/requests in/ {print $1}' <<<"$1"; }
pct() { awk -v p="$2%" '$1 == p {print $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/ {print $5}' <<<"$1"; }
errors() { awk '/Socket errors/ {print}' <<<"$1"; }

# Short warm-ups, then ROUNDS rounds of hooklog and the minimal receiver one after the other, so
# both see the same machine (on two cores shared with wrk and nats-server, one run's rate moves
# by a fifth from run to run); the ratio reported is the median of the rounds'.
hooklog_url="http://127.0.0.1:$ingress_port/v1/webhooks/connectors/github"
minimal_url="http://127.0.0.1:$minimal_port/v1/webhooks/connectors/github"
run_wrk "$hooklog_url" "warmup-$RANDOM" 2s > /dev/null
run_wrk "$minimal_url" "minimal-warmup-$RANDOM" 2s > /dev/null
echo "payload: $payload_bytes bytes, $CONNECTIONS connections, $DURATION per run, $ROUNDS rounds, $(nproc) cores"
ratios=()
hooklog_non2xx=""
hooklog_answers=0
hooklog_stored=0
for round in $(seq 1 "$ROUNDS"); do
  stored_before=$(stored_deliveries)
  hooklog_out=$(run_wrk "$hooklog_url" "run-$round-$RANDOM$RANDOM")
  sleep 0.5
  hooklog_stored=$((hooklog_stored + $(stored_deliveries) - stored_before))
  minimal_out=$(run_wrk "$minimal_url" "minimal-$round-$RANDOM$RANDOM")
  hooklog_answers=$((hooklog_answers + $(total "$hooklog_out")))
  [ -n "$(non2xx "$hooklog_out")" ] && hooklog_non2xx=$(( ${hooklog_non2xx:-0} + $(non2xx "$hooklog_out") ))
  ratio=$(python3 -c "print(f'{float(\"$(rate "$hooklog_out")\") / float(\"$(rate "$minimal_out")\"):.2f}')")
  ratios+=("$ratio")
  echo "round $round: hooklog ingress (verify + JetStream PubAck) $(rate "$hooklog_out") deliveries/s (p50 $(pct "$hooklog_out" 50), p99 $(pct "$hooklog_out" 99)$( [ -n "$(non2xx "$hooklog_out")" ] && echo ", non-2xx $(non2xx "$hooklog_out")") $(errors "$hooklog_out")); minimal receiver (verify + PubAck, no more) $(rate "$minimal_out") (p50 $(pct "$minimal_out" 50), p99 $(pct "$minimal_out" 99)); ratio $ratio"
done
peak_rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$hooklog_pid/status")
bare_out=$(run_wrk "http://127.0.0.1:$bare_port/v1/webhooks/connectors/github" "bare-$RANDOM")

echo "hooklog's peak RSS $((peak_rss_kib / 1024)) MiB, non-2xx ${hooklog_non2xx:-0}"
echo "stored in GITHUB_DELIVERIES during hooklog's runs: $hooklog_stored (wrk counted $hooklog_answers answers; requests in flight when wrk stops are stored but not counted)"
echo "bare axum 202 (no verify, no store): $(rate "$bare_out") requests/s, p50 $(pct "$bare_out" 50), p99 $(pct "$bare_out" 99)"
python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[1:]]; print(f'ratio hooklog/minimal: median {statistics.median(r):.2f} of {len(r)} rounds ({\" \".join(sys.argv[1:])})')" "${ratios[@]}"
if [ -n "$hooklog_non2xx" ]; then
  echo "warning: hooklog answered non-2xx to $hooklog_non2xx requests; its log:" >&2
  tail -20 "$work/hooklog.log" >&2
fi

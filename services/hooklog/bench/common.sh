# Shared by the benchmarks; source it after `cd "$HOOKLOG_ROOT"`. Sets `work` (a temporary
# directory), `db` (`${BENCH_DB_PREFIX:-hooklog_bench}_<pid>`, dropped on exit unless
# BENCH_KEEP_DB is set) and `pids` (processes stopped on exit), and defines:
#   write_push FILE   the vendored push example with an installation, as the benches send it
#   free_port         a free TCP port on 127.0.0.1
#   wait_port PORT    waits up to 20 s for PORT to accept connections
#   start_nats        starts nats-server with the repository's nats.conf on a free port
#                     (`nats_port`), its store in the work directory

work="$(mktemp -d)"
db="${BENCH_DB_PREFIX:-hooklog_bench}_$$"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${BENCH_KEEP_DB:-}" ]; then
    echo "database kept: $db" >&2
  else
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" postgres >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

write_push() {
  python3 - "$1" <<'PY'
import json, sys
events = json.load(open("services/ingress/tests/fixtures/octokit-webhooks-examples/api.github.com.json"))
push = next(x for e in events if e["name"] == "push" for x in e["examples"] if x.get("installation") and x["ref"] == "refs/heads/master")
open(sys.argv[1], "w").write(json.dumps(push))
PY
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 400); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

start_nats() {
  nats_port=$(free_port)
  "$HOOKLOG_NATS_SERVER_BIN" --config nats.conf --addr 127.0.0.1 --port "$nats_port" \
    --jetstream --store_dir "$work/jetstream" 2> "$work/nats.log" &
  pids+=("$!")
  wait_port "$nats_port"
}

-- wrk script: signed push deliveries, each with a fresh X-GitHub-Delivery.
-- The body and its signature are the same for every request (the signature covers the body only).
local next_id = 1

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  local f = assert(io.open(os.getenv("BENCH_PAYLOAD"), "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = "push"
  wrk.headers["X-Hub-Signature-256"] = os.getenv("BENCH_SIGNATURE")
  run_id = os.getenv("BENCH_RUN_ID")
  counter = 0
end

function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("%s-%d-%d", run_id, thread_id, counter)
  return wrk.format()
end

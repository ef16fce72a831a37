-- Replays pre-generated requests from a file (one per line: METHOD \t PATH \t BODY), each once,
-- in order, then wraps around. Prints one JSON line of figures when done.
local file_name = os.getenv("BENCH_REQUESTS")
local requests = {}
local index = 0
statuses = {}  -- global: done() reads it from each thread with thread:get

function init(args)
  for line in io.lines(file_name) do
    local method, path, body = line:match("^(%u+)\t([^\t]+)\t(.*)$")
    local headers = {}
    if body ~= "" then
      headers["Content-Type"] = "application/json"
      local key = body:match('"idempotency_key":"([^"]+)"')
      if key and path:find("/votes$") then headers["Idempotency-Key"] = key end
    end
    requests[#requests + 1] = wrk.format(method, path, headers, body ~= "" and body or nil)
  end
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

function done(summary, latency, requests_summary)
  local parts = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, n in pairs(counts) do
      parts[#parts + 1] = string.format('"%d":%d', status, n)
    end
  end
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), table.concat(parts, ",")))
end

-- wrk script: GET the URL with a different driver's bearer token on every request.
--
--   wrk -t1 -c8 -d20s --latency -s bench/rotate_tokens.lua URL -- TOKENS_FILE
--
-- TOKENS_FILE has one raw token a line, optionally followed by a space and the path that
-- token's request asks for (else the URL's path). Each thread walks the list round-robin
-- from its own offset. (Same-rate comparisons use bench/paced.py: wrk's delay() connects first and waits
-- afterwards, which blocks a sync gunicorn worker on an idle connection.)
-- done() prints one line "BENCH_JSON {...}" with totals, latency percentiles (microseconds)
-- and the count of every HTTP status seen, summed over threads.

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  paths = {}
  for line in io.lines(args[1]) do
    if #line > 0 then
      local token, own_path = line:match("^(%S+) (%S+)$")
      tokens[#tokens + 1] = token or line
      paths[#tokens] = own_path or wrk.path
    end
  end
  if #tokens == 0 then error("no tokens in " .. args[1]) end
  statuses = {}
  local stride = math.floor(#tokens / 8) + 1
  index = ((id - 1) * stride) % #tokens
end

function request()
  index = index % #tokens + 1
  return wrk.format("GET", paths[index], { ["Authorization"] = "Bearer " .. tokens[index] })
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(total) do
    parts[#parts + 1] = string.format('"%d":%d', status, count)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},' ..
    '"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, table.concat(parts, ",")))
end

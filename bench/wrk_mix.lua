-- The December mix for bench/run_http.py --mix: cycles through the request list run_http.py wrote
-- (`wrk -s bench/wrk_mix.lua URL -- LIST.lua`). Versioned writes (self-assessment, review) take the
-- evaluation's latest version seen in any 200 answer that names it (views, writes, lists); every status is
-- counted, so run_http.py can tell errors (5xx, 400, 401) from requests refused by a race (409 and co.).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local data = dofile(args[1])
  reqs, versions, counts, n, i = data.requests, data.versions, {}, #data.requests, 0
  for _, r in ipairs(reqs) do
    if not r.e then
      r.raw = wrk.format(r.m, r.p, r.h, r.b)
    end
  end
end

function request()
  i = i % n + 1
  local r = reqs[i]
  if r.e then
    return wrk.format(r.m, r.p, r.h, r.b1 .. versions[r.e] .. r.b2)
  end
  return r.raw
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if status == 200 then
    local id = tonumber(body:match('"id":(%d+)'))
    if id and versions[id] then
      local v = body:match('"version":(%d+)')
      if v then
        versions[id] = tonumber(v)
      end
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RUN_HTTP requests %d\n", summary.requests))
  io.write(string.format("RUN_HTTP duration_us %d\n", summary.duration))
  io.write(string.format("RUN_HTTP p50_us %d\n", latency:percentile(50)))
  io.write(string.format("RUN_HTTP p95_us %d\n", latency:percentile(95)))
  io.write(string.format("RUN_HTTP p99_us %d\n", latency:percentile(99)))
  io.write(string.format("RUN_HTTP max_us %d\n", latency.max))
  io.write(string.format("RUN_HTTP err_connect %d\n", e.connect))
  io.write(string.format("RUN_HTTP err_read %d\n", e.read))
  io.write(string.format("RUN_HTTP err_write %d\n", e.write))
  io.write(string.format("RUN_HTTP err_status %d\n", e.status))
  io.write(string.format("RUN_HTTP err_timeout %d\n", e.timeout))
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("counts")) do
      io.write(string.format("RUN_HTTP status_%d %d\n", status, count))
    end
  end
end

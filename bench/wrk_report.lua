-- wrk's `done` hook for bench/run_http.py: the run's figures, one "RUN_HTTP key value" a line
-- (latencies in microseconds; wrk's --latency table stops at 99 %, the 95th percentile comes from here).
function done(summary, latency, requests)
  local e = summary.errors
  local lines = {
    requests = summary.requests,
    duration_us = summary.duration,
    p50_us = latency:percentile(50),
    p95_us = latency:percentile(95),
    p99_us = latency:percentile(99),
    max_us = latency.max,
    err_connect = e.connect,
    err_read = e.read,
    err_write = e.write,
    err_status = e.status,
    err_timeout = e.timeout,
  }
  for key, value in pairs(lines) do
    io.write(string.format("RUN_HTTP %s %d\n", key, value))
  end
end

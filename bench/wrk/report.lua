-- Shared by every case: prints one JSON line with throughput, latency percentiles and failures. A case script may
-- define finish() to run first (saturate.lua writes what it sent).
done = function(summary, latency, requests)
  if finish then finish() end
  local seconds = summary.duration / 1e6
  local failures = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"requests":%d,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"non_2xx_or_errors":%d}\n',
    summary.requests, summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000, failures))
end

-- POST /updates at saturation from BENCH_DEVICES distinct devices (default 100 000) whose reports change on every
-- check: custom_id is the device's report counter, so every report is new and the database must end with each
-- device's last one. Each of the BENCH_THREADS threads owns every BENCH_THREADS-th device, so it knows the last
-- report it sent of each; finish() writes "device counter" lines to BENCH_SENT_FILE for bench/fleet_check.py.
local app = os.getenv("BENCH_APP") or "com.bench.app0"
local n_devices = tonumber(os.getenv("BENCH_DEVICES") or "100000")
local n_threads = tonumber(os.getenv("BENCH_THREADS") or "2")
local threads = {}

setup = function(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

init = function(args)
  math.randomseed(os.time() + thread_index * 7919)
  sent = {}
  owned = math.floor((n_devices - thread_index + n_threads - 1) / n_threads)
end

local headers = { ["Content-Type"] = "application/json" }

request = function()
  local i = thread_index + n_threads * math.random(0, owned - 1)
  local n = (sent[i] or 0) + 1
  sent[i] = n
  local body = '{"platform":"android","device_id":"' .. string.format("00000000-0000-4000-8000-%012d", i) ..
    '","app_id":"' .. app .. '","custom_id":"' .. n .. '","version_build":"1.0.0","version_code":"100",' ..
    '"version_os":"14","version_name":"1.0.0","plugin_version":"8.51.14","is_emulator":false,"is_prod":true,' ..
    '"install_source":"google_play","defaultChannel":""}'
  return wrk.format("POST", "/updates", headers, body)
end

finish = function()
  local out = assert(io.open(os.getenv("BENCH_SENT_FILE"), "w"))
  for _, thread in ipairs(threads) do
    for device, n in pairs(thread:get("sent")) do
      out:write(device, " ", n, "\n")
    end
  end
  out:close()
end

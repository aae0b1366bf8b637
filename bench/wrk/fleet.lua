-- POST /updates from a fleet of BENCH_DEVICES distinct devices (default 1 000 000), each thread walking its share
-- in order, so after BENCH_DEVICES requests every device has checked in once (then the walk starts over, with the
-- same reports). Bodies are built per request: a million preformatted ones would not fit in wrk's memory.
local app = os.getenv("BENCH_APP") or "com.bench.app0"
local n_devices = tonumber(os.getenv("BENCH_DEVICES") or "1000000")
local n_threads = tonumber(os.getenv("BENCH_THREADS") or "2")
local threads = {}

setup = function(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

init = function(args)
  step = 0
end

local headers = { ["Content-Type"] = "application/json" }

request = function()
  local i = (thread_index + n_threads * step) % n_devices
  step = step + 1
  local body = '{"platform":"android","device_id":"' .. string.format("00000000-0000-4000-8000-%012d", i) ..
    '","app_id":"' .. app .. '","custom_id":"","version_build":"1.0.0","version_code":"100","version_os":"14",' ..
    '"version_name":"1.0.0","plugin_version":"8.51.14","is_emulator":false,"is_prod":true,' ..
    '"install_source":"google_play","defaultChannel":""}'
  return wrk.format("POST", "/updates", headers, body)
end

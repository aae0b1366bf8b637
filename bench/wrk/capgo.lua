-- POST /updates as an 8.51 Android plugin, with device ids drawn from 100 000 distinct ones.
-- BENCH_APP and BENCH_VERSION_NAME select the app and the device's current bundle (update vs no update).
-- Requests are formatted once in init, so the load generator (on the same cores) spends its time sending, not
-- building strings; /health needs no per-request work either, which keeps the ratio fair.
local app = os.getenv("BENCH_APP") or "com.bench.app0"
local current = os.getenv("BENCH_VERSION_NAME") or "1.0.0"
local pool = {}
local n_devices = 100000

init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
  local headers = { ["Content-Type"] = "application/json" }
  for i = 0, n_devices - 1 do
    local device = string.format("00000000-0000-4000-8000-%012d", i)
    local body = '{"platform":"android","device_id":"' .. device .. '","app_id":"' .. app ..
      '","custom_id":"","version_build":"1.0.0","version_code":"100","version_os":"14","version_name":"' .. current ..
      '","plugin_version":"8.51.14","is_emulator":false,"is_prod":true,"install_source":"google_play","defaultChannel":""}'
    pool[i + 1] = wrk.format("POST", "/updates", headers, body)
  end
end

request = function()
  return pool[math.random(1, n_devices)]
end

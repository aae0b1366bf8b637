-- POST /updates as an 8.51 Android plugin, with device ids drawn from 100 000 distinct ones.
-- BENCH_APP and BENCH_VERSION_NAME select the app and the device's current bundle (update vs no update).
local app = os.getenv("BENCH_APP") or "com.bench.app0"
local current = os.getenv("BENCH_VERSION_NAME") or "1.0.0"
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local device = string.format("00000000-0000-4000-8000-%012d", math.random(0, 99999))
  local body = '{"platform":"android","device_id":"' .. device .. '","app_id":"' .. app ..
    '","custom_id":"","version_build":"1.0.0","version_code":"100","version_os":"14","version_name":"' .. current ..
    '","plugin_version":"8.51.14","is_emulator":false,"is_prod":true,"install_source":"google_play","defaultChannel":""}'
  return wrk.format(nil, "/updates", nil, body)
end

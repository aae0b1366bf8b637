-- GET the Expo manifest as a signing iOS client. BENCH_CURRENT_UPDATE_ID set: the client already runs the latest
-- release (a signed noUpdateAvailable directive); unset: a signed manifest.
local app = os.getenv("BENCH_APP") or "com.bench.app0"
local current = os.getenv("BENCH_CURRENT_UPDATE_ID")
wrk.method = "GET"
wrk.path = "/expo/" .. app .. "/manifest"
wrk.headers["expo-protocol-version"] = "1"
wrk.headers["expo-platform"] = "ios"
wrk.headers["expo-runtime-version"] = "1.0.0"
wrk.headers["expo-channel-name"] = "production"
wrk.headers["accept"] = "multipart/mixed,application/expo+json,application/json"
wrk.headers["expo-expect-signature"] = 'sig, keyid="main", alg="rsa-v1_5-sha256"'
if current and current ~= "" then
  wrk.headers["expo-current-update-id"] = current
end

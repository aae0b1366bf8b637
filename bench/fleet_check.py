#!/usr/bin/env python3
"""After a load of device check-ins (bench/run.sh --saturate): waits until the gateway has written every pending
device report, then checks through the management API (GET /device, so any database) that each device's row holds
the last report it sent.

Usage: fleet_check.py BASE_URL ADMIN_KEY APP_ID SENT_FILE CONNECTIONS LOAD_END_EPOCH
SENT_FILE has "device_index counter" lines (bench/wrk/saturate.lua): the counter is the custom_id of the device's last
report. A device may be one report behind when that report was in flight as the load stopped (at most one per
connection: the client never got its answer); anything older, or missing, is a lost report. Exits 1 on any loss."""
import json
import sys
import time
import urllib.parse
import urllib.request

base, key, app_id, sent_file, connections, load_end = sys.argv[1:7]
connections, load_end = int(connections), float(load_end)


def get(path):
    request = urllib.request.Request(base + path, headers={"authorization": key})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode()


def metric(text, name, labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


# 1. Wait until nothing is pending (the writer takes pending reports every second).
deadline = time.time() + 120
while True:
    text = get("/metrics")
    pending = metric(text, "updraft_coalesced_pending", {"signal": "device_reports"})
    if pending == 0 or time.time() > deadline:
        break
    time.sleep(0.05)
drained = time.time() - load_end
counts = {o: metric(text, "updraft_coalesced_reports_total", {"signal": "device_reports", "outcome": o})
          for o in ("queued", "replaced", "unchanged", "written", "shed", "dropped")}

# 2. Read every device row back.
sent = {}
with open(sent_file) as f:
    for line in f:
        device, n = line.split()
        sent[f"00000000-0000-4000-8000-{int(device):012d}"] = int(n)
stored, cursor = {}, None
while True:
    query = {"app_id": app_id, "limit": "1000", "order": "asc"}
    if cursor:
        query["cursor"] = cursor
    page = json.loads(get("/device?" + urllib.parse.urlencode(query)))
    for device in page["data"]:
        stored[device["device_id"]] = device["custom_id"]
    cursor = page.get("nextCursor")
    if not page.get("hasMore"):
        break

# 3. Compare.
latest = behind = lost = 0
examples = []
for device, n in sent.items():
    value = stored.get(device)
    have = int(value) if value not in (None, "") and value.isdigit() else None
    if have == n:
        latest += 1
    elif have == n - 1:
        behind += 1
    else:
        lost += 1
        if len(examples) < 5:
            examples.append(f"{device}: sent {n}, stored {value!r}")
too_many_behind = behind > connections
print(f"pending drained {drained:.1f} s after the load stopped; reports queued {counts['queued']}, replaced before "
      f"written {counts['replaced']}, rows written {counts['written']}, shed {counts['shed']}, "
      f"dropped {counts['dropped']}")
print(f"devices that sent reports: {len(sent)}; rows read back: {len(stored)}; holding the last report: {latest}; "
      f"one behind (in flight when the load stopped, at most {connections}): {behind}; lost: {lost}")
for example in examples:
    print(f"  lost: {example}")
if lost or too_many_behind or counts["shed"] or counts["dropped"] or pending:
    print("error: device reports were lost", file=sys.stderr)
    sys.exit(1)

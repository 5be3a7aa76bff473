#!/usr/bin/env bash
# admsd-sim against the real admsd: 50 simulated terminals with a backlog and realtime punches.
# Checks that the simulator exits 0 (every punch acknowledged), that the database holds exactly
# the punches it reports acknowledged, and that every device was clock-synced and confirmed it.
# One timing assertion: the clock error a time sync leaves (p99 < 100 ms; 2 ms measured with the
# whole-second hold, 999 ms without it).
#
# Usage: sim_test.sh ADMSD ADMSD_SIM
# ADMS_SIM_KEEP=1 keeps the data directory and logs (they are always kept on failure).
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 ADMSD ADMSD_SIM" >&2
  exit 2
fi
admsd=$1
sim=$2
devices=50
dir=$(mktemp -d "${TMPDIR:-/tmp}/admsd-sim-test.XXXXXX")
server_pid=""
failed=1

cleanup() {
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
  wait 2>/dev/null
  if [ "$failed" = 1 ] || [ "${ADMS_SIM_KEEP:-0}" = 1 ]; then
    echo "sim test: data and logs kept in $dir"
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail() {
  echo "sim test: FAILED: $*"
  [ -f "$dir/sim.out" ] && { echo "--- $dir/sim.out"; cat "$dir/sim.out"; }
  [ -f "$dir/sim.err" ] && { echo "--- tail of $dir/sim.err"; tail -n 20 "$dir/sim.err"; }
  echo "--- tail of $dir/server.log"
  tail -n 10 "$dir/server.log"
  exit 1
}

# admsd on a port the kernel picks; its start line (logged once it listens) names the port.
: >"$dir/server.log"
"$admsd" --listen 127.0.0.1:0 --data-dir "$dir/data" --time-zone Europe/Berlin \
  --device-rate-limit 0 --poll-delay 1 --threads 2 >"$dir/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 1000); do
  port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$dir/server.log" | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || fail "admsd did not start"
  sleep 0.01
done
[ -n "$port" ] || fail "admsd did not report its port"

"$sim" --target "127.0.0.1:$port" --devices "$devices" --sn-prefix SIMT --delay 1 \
  --punch-interval 0.5 --backlog 300 --duration 5 --drain 10 --zone Europe/Berlin \
  --clock-offset 30 --drift-ppm 100 --json "$dir/report.json" \
  >"$dir/sim.out" 2>"$dir/sim.err"
status=$?
cat "$dir/sim.out"
[ "$status" -eq 0 ] || fail "admsd-sim exited with $status (0: every punch acknowledged)"

# The JSON report writes one top-level key per line.
json() { sed -n "s/^  \"$1\": \(.*\),\$/\1/p" "$dir/report.json"; }
acknowledged=$(json punches_acknowledged)
generated=$(json punches_generated)
synced=$(sed -n 's/^  "time_sync": {"count": \([0-9]*\),.*/\1/p' "$dir/report.json")
[[ $acknowledged =~ ^[0-9]+$ ]] || fail "no punches_acknowledged in the JSON report"
[[ $synced =~ ^[0-9]+$ ]] || fail "no time_sync count in the JSON report"
sync_p99=$(sed -n 's/^  "time_sync": {.*"p99_abs_ms": \([0-9.]*\),.*/\1/p' "$dir/report.json")
[[ $sync_p99 =~ ^[0-9]+(\.[0-9]+)?$ ]] || fail "no time_sync p99_abs_ms in the JSON report"
# A time sync's DateTime is whole seconds: held to the whole second it is exact when it leaves,
# and only the delivery time is left as error.
awk -v p="$sync_p99" 'BEGIN { exit !(p < 100) }' ||
  fail "time-sync clock error p99 is $sync_p99 ms (limit 100 ms): replies not held to the second?"
# 300 backlog punches per device, plus ~10 realtime ones each: acknowledged must cover more
# than the backlog, or the realtime path did not run.
[ "$acknowledged" -gt $((devices * 300)) ] ||
  fail "only $acknowledged punches acknowledged (expected backlog and realtime punches)"
[ "$acknowledged" -eq "$generated" ] || fail "acknowledged $acknowledged of $generated"

kill -TERM "$server_pid"
wait "$server_pid"
server_pid=""
db="$dir/data/admsd.sqlite3"
stored=$(sqlite3 "$db" "SELECT count(*) FROM punch WHERE serial_number LIKE 'SIMT%'") ||
  fail "cannot read $db"
devices_stored=$(sqlite3 "$db" "SELECT count(DISTINCT serial_number) FROM punch")
[ "$stored" -eq "$acknowledged" ] ||
  fail "the punch table has $stored rows, the simulator reports $acknowledged acknowledged"
[ "$devices_stored" -eq "$devices" ] || fail "punches of $devices_stored devices, not $devices"
[ "$synced" -ge "$devices" ] || fail "time_sync count $synced < $devices"
confirmed=$(sqlite3 "$db" "SELECT count(DISTINCT serial_number) FROM command
  WHERE kind LIKE 'time-sync%' AND state = 'done' AND result_code = 0")
[ "$confirmed" -eq "$devices" ] ||
  fail "$confirmed of $devices devices confirmed a time-sync command (state done)"

echo "sim test: acknowledged=$acknowledged stored=$stored time_syncs=$synced" \
  "devices_confirmed=$confirmed time_sync_p99_ms=$sync_p99"
failed=0

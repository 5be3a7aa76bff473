#!/usr/bin/env bash
# The crash-durability test: crash_fleet's simulated terminals upload punches as fast as they can
# while admsd is killed with SIGKILL at random moments and restarted on the same data directory.
# Then the fleet drains what is still unacknowledged and checks the database: every punch the
# server answered OK:<n> for is stored exactly once.
#
# Usage: crash_test.sh ADMSD CRASH_FLEET
# Environment: ADMS_CRASH_KILLS (default 20), ADMS_CRASH_DEVICES (default 50),
# ADMS_CRASH_KEEP=1 keeps the data directory and logs (they are always kept on failure).
set -u
export LC_ALL=C # EPOCHREALTIME and awk agree on the decimal point
if [ $# -ne 2 ]; then
  echo "usage: $0 ADMSD CRASH_FLEET" >&2
  exit 2
fi
admsd=$1
fleet=$2
kills=${ADMS_CRASH_KILLS:-20}
devices=${ADMS_CRASH_DEVICES:-50}
if ! [[ $kills =~ ^[0-9]+$ && $devices =~ ^[1-9][0-9]*$ ]]; then
  echo "ADMS_CRASH_KILLS and ADMS_CRASH_DEVICES must be whole numbers" >&2
  exit 2
fi
started=$EPOCHREALTIME
dir=$(mktemp -d "${TMPDIR:-/tmp}/admsd-crash.XXXXXX")
server_pid=""
fleet_pid=""
starts=0
failed=1
fleet_shown=0

cleanup() {
  [ -n "$fleet_pid" ] && kill -9 "$fleet_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
  wait 2>/dev/null
  if [ "$failed" = 1 ] || [ "${ADMS_CRASH_KEEP:-0}" = 1 ]; then
    echo "crash test: data and logs kept in $dir"
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
# A signal to the script still runs the EXIT trap, so no server or fleet outlives it.
trap 'exit 130' INT TERM HUP

fail() {
  echo "crash test: FAILED: $*"
  if [ "$fleet_shown" = 0 ] && [ -f "$dir/fleet.log" ]; then
    echo "--- tail of $dir/fleet.log"
    tail -n 20 "$dir/fleet.log"
  fi
  [ -f "$dir/kills.log" ] && { echo "--- last kills"; tail -n 5 "$dir/kills.log"; }
  echo "--- tail of $dir/server.$starts.log"
  tail -n 10 "$dir/server.$starts.log"
  exit 1
}

# Starts admsd on 127.0.0.1:$port (port 0 the first time: the kernel picks a free one and every
# restart reuses it, since the fleet keeps talking to it) and waits until it listens. A restart
# whose port is briefly taken is retried; any other start failure fails the test.
start_server() {
  local attempt log
  for attempt in 1 2 3 4 5; do
    starts=$((starts + 1))
    log="$dir/server.$starts.log"
    : >"$log" # exists before the first grep below, however the background start is scheduled
    "$admsd" --listen "127.0.0.1:$port" --data-dir "$dir/data" --time-zone Europe/Berlin \
      --admission open >"$log" 2>&1 &
    server_pid=$!
    # The start line is logged after the socket listens: from then on connections queue.
    for _ in $(seq 1 1000); do
      if grep -q ' listening on 127\.0\.0\.1:' "$log"; then
        port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$log" | head -n 1)
        return 0
      fi
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.01
    done
    kill -9 "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    grep -q 'cannot listen' "$log" || fail "admsd did not start (start $starts): $(tail -n 3 "$log")"
    sleep 0.2
  done
  fail "admsd could not listen on port $port after $attempt attempts"
}

port=0
start_server
echo "crash test: admsd on 127.0.0.1:$port, data in $dir/data, $devices devices, $kills kills"

"$fleet" --port "$port" --db "$dir/data/admsd.sqlite3" --devices "$devices" \
  --drain-timeout 30 >"$dir/fleet.log" 2>&1 &
fleet_pid=$!
for _ in $(seq 1 1000); do
  grep -q '^crash_fleet: .* devices uploading' "$dir/fleet.log" && break
  kill -0 "$fleet_pid" 2>/dev/null || fail "crash_fleet did not start"
  sleep 0.01
done
grep -q '^crash_fleet: .* devices uploading' "$dir/fleet.log" || fail "crash_fleet did not start"

done_kills=0
for ((i = 1; i <= kills; i++)); do
  ms=$((300 + RANDOM % 1701))
  sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
  kill -0 "$fleet_pid" 2>/dev/null || fail "crash_fleet exited during the run"
  kill -0 "$server_pid" 2>/dev/null || fail "admsd exited on its own (start $starts)"
  kill -9 "$server_pid"
  wait "$server_pid" 2>/dev/null # reaped: the port is free for the restart
  echo "kill $i at $EPOCHREALTIME (admsd start $starts)" >>"$dir/kills.log"
  done_kills=$i
  start_server
done

# The fleet stops making punches, drains the unacknowledged ones and checks the database.
kill -TERM "$fleet_pid"
wait "$fleet_pid"
fleet_status=$?
fleet_pid=""
cat "$dir/fleet.log"
fleet_shown=1
kill -0 "$server_pid" 2>/dev/null || fail "admsd exited on its own (start $starts)"
kill -TERM "$server_pid"
wait "$server_pid"
server_status=$?
server_pid=""

summary=$(grep '^crash_fleet: acknowledged=' "$dir/fleet.log")
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$summary"; }
wall=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
echo "crash test: kills=$done_kills acknowledged=$(field acknowledged) stored=$(field stored)" \
  "lost=$(field lost) duplicated=$(field duplicated)" \
  "stored_unacknowledged=$(field stored_unacknowledged)" \
  "unacknowledged_at_end=$(field unacknowledged_at_end) wall=${wall}s"
[ -n "$summary" ] || fail "crash_fleet printed no summary (exit status $fleet_status)"
[ "$fleet_status" -eq 0 ] || fail "crash_fleet found a loss, a duplicate or an undrained queue"
[ "$done_kills" -ge "$kills" ] || fail "only $done_kills of $kills kills"
[ "$server_status" -eq 0 ] || echo "crash test: note: admsd exited with $server_status on SIGTERM"
failed=0

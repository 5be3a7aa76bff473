#!/usr/bin/env bash
# A payroll export killed mid-file: the real admsd binary writes a big day (ADMS_EXPORT_CRASH_ROWS
# punches, 400 000 by default, about 50 MB of CSV) on demand and is killed with SIGKILL as soon as
# the temporary file has data in it. Then: the final name is absent (or, should the kill have
# come after the rename, complete); the next start removes the temporary before it listens; and
# the export run again is, byte for byte, what GET /punches.csv answers for that day.
#
# Usage: export_crash_test.sh ADMSD
# Needs curl, cmp and the sqlite3 shell (the rows go straight into the database: uploading them
# would take far longer than the export under test).
set -u
if [ $# -ne 1 ]; then
  echo "usage: $0 ADMSD" >&2
  exit 2
fi
admsd=$1
rows=${ADMS_EXPORT_CRASH_ROWS:-400000}
day=2024-05-15
token=export-crash-token-0123456789
dir=$(mktemp -d "${TMPDIR:-/tmp}/admsd-export-crash.XXXXXX")
out="$dir/out"
final="$out/punches-$day.csv"
temporary="$out/.punches-$day.csv.tmp"
pid=""
curl_pid=""
starts=0
failed=1

cleanup() {
  [ -n "$curl_pid" ] && kill -9 "$curl_pid" 2>/dev/null
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  wait 2>/dev/null
  if [ "$failed" = 1 ]; then
    echo "export crash test: data and logs kept in $dir"
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail() {
  echo "export crash test: FAILED: $*"
  [ -f "$dir/server.$starts.log" ] && tail -n 10 "$dir/server.$starts.log"
  exit 1
}

for tool in curl cmp sqlite3; do
  command -v "$tool" >/dev/null || fail "$tool is needed"
done

cat >"$dir/admsd.toml" <<EOF
listen = "127.0.0.1:0"
data_dir = "$dir/data"
time_zone = "UTC"
admin_token = "$token"
threads = 2

[exports.payroll]
at = "00:00"
directory = "$out"
EOF

# Starts admsd and waits for its start line, logged once it listens (after the exports' cleanup).
start_server() {
  starts=$((starts + 1))
  local log="$dir/server.$starts.log"
  : >"$log"
  "$admsd" --config "$dir/admsd.toml" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 1000); do
    port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$log" | head -n 1)
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "admsd did not start: $(tail -n 3 "$log")"
    sleep 0.01
  done
  fail "admsd did not log its start line within 10 s"
}

stop_server() {
  kill -TERM "$pid"
  wait "$pid" || fail "admsd exited with status $? on SIGTERM"
  pid=""
}

run_export() {
  curl -sS --max-time 120 -o "$dir/run.json" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $token" -d "{\"date\":\"$day\"}" \
    "http://127.0.0.1:$port/exports/payroll/run"
}

# The schema, then a big day straight into it while admsd is stopped.
start_server
stop_server
sqlite3 "$dir/data/admsd.sqlite3" <<SQL || fail "cannot fill the database"
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO punch (serial_number, pin, local_time, utc_s, status, verify, work_code, sequence,
                   raw_line, received_at_ms, quarantined)
SELECT 'BIG1', CAST(i AS TEXT),
       '$day ' || printf('%02d:%02d:%02d', (i / 3600) % 24, (i / 60) % 60, i % 60),
       1715731200 + i % 86400, 0, 1, '0', NULL, 'line', 1715731200000, 0
FROM n;
SQL

# Up to three tries: a kill that lands after the rename proves nothing about the temporary.
killed_mid_file=0
for attempt in 1 2 3; do
  start_server
  run_export >"$dir/run.status" 2>&1 &
  curl_pid=$!
  seen=0
  for _ in $(seq 1 6000); do
    if [ -s "$temporary" ]; then
      seen=1
      break
    fi
    [ -f "$final" ] && break
    sleep 0.01
  done
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  pid=""
  wait "$curl_pid" 2>/dev/null
  curl_pid=""
  [ "$seen" = 1 ] || [ -f "$final" ] || fail "the export did not start within 60 s"
  if [ -f "$final" ]; then
    # Killed after the rename: the file under the final name must be whole.
    lines=$(wc -l <"$final")
    [ "$lines" -eq $((rows + 1)) ] || fail "a partial file under the final name ($lines lines)"
    echo "attempt $attempt: the export finished before the kill; trying again"
    rm -f "$final"
    continue
  fi
  [ -f "$temporary" ] || fail "killed mid-file, yet no temporary file is left"
  echo "attempt $attempt: killed with $(wc -c <"$temporary") bytes in the temporary;" \
    "no file under the final name"
  killed_mid_file=1
  break
done
[ "$killed_mid_file" = 1 ] || fail "three exports finished before they could be killed"

# The next start removes the temporary before it listens, and writes nothing under the name.
start_server
[ -e "$temporary" ] && fail "the temporary survived the restart"
[ -e "$final" ] && fail "a file appeared under the final name without a run"
grep -q "removed 1 temporary file a crash left in $out" "$dir/server.$starts.log" ||
  fail "the cleanup was not logged"

# Run to completion: the file is the API's CSV of that day, byte for byte.
status=$(run_export) || fail "the export request failed"
[ "$status" = 200 ] || fail "the export answered $status: $(cat "$dir/run.json")"
curl -sS --max-time 120 -o "$dir/api.csv" -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$port/punches.csv?from=$day&to=$day" || fail "GET /punches.csv failed"
cmp "$final" "$dir/api.csv" || fail "the file differs from GET /punches.csv"
[ "$(wc -l <"$final")" -eq $((rows + 1)) ] || fail "the file does not hold $rows rows"
[ -e "$temporary" ] && fail "a temporary was left after a complete run"
stop_server

failed=0
echo "export crash test: a SIGKILL mid-file left no partial file; the restart removed the" \
  "temporary; the re-run matches GET /punches.csv ($rows rows, $(wc -c <"$final") bytes)"

#!/usr/bin/env bash
# Storage faults, each on a real file system: the disk fills up, the database is locked by
# another process, the data directory is read-only. In each, admsd must answer uploads 503
# (never OK), keep answering polls and time requests, report unhealthy on /healthz, log the
# failure and the recovery once each (not per request), recover by itself when the fault clears,
# and lose nothing it acknowledged.
#
# Usage: storage_faults.sh ADMSD
# Runs itself again inside a private mount namespace (unshare), so the small tmpfs and the
# read-only bind mount are invisible to the rest of the machine and vanish with it. Needs root or
# unprivileged user namespaces; exits 77 (skipped) with neither.
set -euo pipefail

admsd=$(realpath "$1")

if [ -z "${ADMS_FAULTS_IN_NAMESPACE:-}" ]; then
  export ADMS_FAULTS_IN_NAMESPACE=1
  for flags in -rm -m; do
    if unshare "$flags" true 2>/dev/null; then
      exec unshare "$flags" bash "$0" "$@"
    fi
  done
  echo "SKIP: cannot create a mount namespace (needs root or user namespaces)"
  exit 77
fi

work=$(mktemp -d)
data="$work/data"
mkdir -p "$data"
# 8 MiB: room for the database, its WAL and the admin token; a filler file takes the rest.
mount -t tmpfs -o size=8m tmpfs "$data"
db="$data/admsd.sqlite3"
log="$work/admsd.log"
pid=""
locker=""

cleanup() {
  [ -n "$locker" ] && kill "$locker" 2>/dev/null || true
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  umount "$data" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  echo "--- admsd log (last 40 lines) ---"
  tail -n 40 "$log" || true
  exit 1
}

start_server() {
  : >"$log"
  "$admsd" --listen 127.0.0.1:0 --data-dir "$data" --time-zone Europe/Berlin \
    --admin-token fault-test-token-0123456789 >>"$log" 2>&1 &
  pid=$!
  port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "admsd exited at start: $(cat "$log")"
    sleep 0.05
  done
  [ -n "$port" ] || fail "admsd did not report its port"
  base="http://127.0.0.1:$port"
}

stop_server() {
  kill -TERM "$pid"
  wait "$pid" || fail "admsd exited non-zero on SIGTERM"
  pid=""
}

# status BODY_FILE METHOD PATH [DATA_FILE]: prints the HTTP status, the body goes to BODY_FILE.
request() {
  local out=$1 method=$2 path=$3 body=${4:-}
  local args=(-s -o "$out" -w '%{http_code}' --max-time 20 -X "$method" -H 'Connection: close')
  [ -n "$body" ] && args+=(--data-binary "@$body")
  curl "${args[@]}" "$base$path" || echo 000
}

# make_batch N: writes a new batch of N lines to $batch. Punches are unique per (PIN, time): the
# PIN is the batch number, the minute the line number. (Functions that change globals are called
# directly, never in $(...), which would run them in a subshell.)
next_batch=0
batch=""
make_batch() {
  batch="$work/batch-$next_batch"
  for i in $(seq 0 $(($1 - 1))); do
    printf '%d\t2026-03-%02d %02d:%02d:00\t0\t1\t0\t0\t0\n' \
      "$((1000 + next_batch))" "$((next_batch % 28 + 1))" "$((i / 60))" "$((i % 60))"
  done >"$batch"
  next_batch=$((next_batch + 1))
}

acked=()   # batch files answered OK:<n>
pending=() # batch files answered anything else (to re-send after recovery)

# upload FILE: sends one ATTLOG batch, sets $status and records whether it was acknowledged.
upload() {
  local file=$1 lines
  lines=$(wc -l <"$file")
  status=$(request "$work/reply" POST "/iclock/cdata?SN=FAULT1&table=ATTLOG&Stamp=1" "$file")
  if [ "$status" = 200 ]; then
    [ "$(cat "$work/reply")" = "OK:$lines" ] || fail "200 with body '$(cat "$work/reply")' for $lines lines"
    acked+=("$file")
  else
    [ "$status" = 503 ] || fail "upload answered $status, expected 200 or 503"
    grep -q '^storage unavailable' "$work/reply" || fail "503 without the storage reason"
    pending+=("$file")
  fi
}

expect_serving() {
  local what=$1
  status=$(request "$work/reply" GET "/iclock/getrequest?SN=FAULT1")
  [ "$status" = 200 ] || fail "$what: poll answered $status"
  status=$(request "$work/reply" GET "/iclock/rtdata?SN=FAULT1&type=time")
  [ "$status" = 200 ] && grep -q '^DateTime=' "$work/reply" || fail "$what: time request answered $status"
  status=$(request "$work/reply" GET "/iclock/cdata?SN=FAULT1&options=all")
  [ "$status" = 200 ] && grep -q '^TimeZone=' "$work/reply" || fail "$what: handshake answered $status"
}

expect_health() {
  local want=$1 what=$2
  status=$(request "$work/health" GET /healthz)
  [ "$status" = "$want" ] || fail "$what: /healthz answered $status, expected $want: $(cat "$work/health")"
}

# wait_healthy WHAT: the server notices recovery by itself (its probe runs every second).
wait_healthy() {
  for _ in $(seq 100); do
    [ "$(request "$work/health" GET /healthz)" = 200 ] && return 0
    sleep 0.1
  done
  fail "$1: /healthz did not turn healthy within 10 s: $(cat "$work/health")"
}

resend_pending() {
  local again=("${pending[@]}")
  pending=()
  for file in "${again[@]}"; do
    upload "$file"
    [ "$status" = 200 ] || fail "$1: a re-sent batch was refused after recovery"
  done
}

count_lines() { grep -c "$1" "$log" || true; }

start_server
expect_serving "healthy"
make_batch 5
upload "$batch"
[ "$status" = 200 ] || fail "first upload refused"

# --- 1. The disk fills up. ---
dd if=/dev/zero of="$data/filler" bs=64k status=none 2>/dev/null || true
saw_503=0
for _ in $(seq 40); do
  make_batch 128
  upload "$batch"
  if [ "$status" = 503 ]; then
    saw_503=$((saw_503 + 1))
    [ "$saw_503" -ge 3 ] && break
  fi
done
[ "$saw_503" -ge 3 ] || fail "disk full: uploads were never refused"
expect_health 503 "disk full"
grep -q '"writes":"failing: .*full' "$work/health" || fail "disk full: /healthz does not say why: $(cat "$work/health")"
expect_serving "disk full"
[ "$(count_lines 'Storage failed')" = 1 ] || fail "disk full: the failure was not logged exactly once"
rm -f "$data/filler"
wait_healthy "disk full"
[ "$(count_lines 'Storage recovered')" = 1 ] || fail "disk full: the recovery was not logged exactly once"
resend_pending "disk full"
echo "disk full: $saw_503 uploads refused with 503, polls and time served, recovered by itself"

# --- 2. Another process holds the database's write lock. ---
mkfifo "$work/lock-in"
sqlite3 "$db" <"$work/lock-in" >/dev/null 2>&1 &
locker=$!
exec 3>"$work/lock-in"
echo "BEGIN IMMEDIATE;" >&3
echo "SELECT 1;" >&3
# Wait until the shell really holds the lock: a third connection's BEGIN IMMEDIATE (no busy
# timeout) then fails with "database is locked".
lock_deadline=$((SECONDS + 10))
until [[ $(sqlite3 -cmd '.timeout 0' "$db" 'BEGIN IMMEDIATE;' 2>&1 || true) == *'database is locked'* ]]; do
  [ "$SECONDS" -lt "$lock_deadline" ] || fail "locked: the sqlite3 shell did not take the lock in 10 s"
  sleep 0.05
done
statuses=()
for _ in 1 2 3; do
  make_batch 3
  upload "$batch"
  statuses+=("$status")
done
[ "${statuses[*]}" = "503 503 503" ] || fail "locked: uploads answered ${statuses[*]}"
expect_health 503 "locked"
grep -q 'locked' "$work/health" || fail "locked: /healthz does not say why: $(cat "$work/health")"
expect_serving "locked"
[ "$(count_lines 'Storage failed')" = 2 ] || fail "locked: the failure was not logged exactly once"
echo "COMMIT;" >&3
exec 3>&-
wait "$locker" || true
locker=""
wait_healthy "locked"
[ "$(count_lines 'Storage recovered')" = 2 ] || fail "locked: the recovery was not logged exactly once"
resend_pending "locked"
echo "locked: uploads refused with 503 while another process held the lock, recovered by itself"

# --- 3. The data directory is read-only (mounted read-only, then made writable again). ---
# Linux refuses to remount a file system read-only while files on it are open for writing, so
# the server is restarted on the read-only mount, as after a reboot onto a file system the kernel
# made read-only, or a volume mounted :ro.
stop_server
mount -o remount,ro "$data"
start_server
grep -q 'read-only file system' "$log" || fail "read-only: the start does not say why writes fail"
make_batch 4
upload "$batch"
[ "$status" = 503 ] || fail "read-only: upload not refused"
expect_health 503 "read-only"
expect_serving "read-only"
[ "$(count_lines 'Storage failed')" = 1 ] || fail "read-only: the failure was not logged exactly once"
mount -o remount,rw "$data"
wait_healthy "read-only"
resend_pending "read-only"
make_batch 4
upload "$batch"
[ "$status" = 200 ] || fail "read-only: upload refused after recovery"
stop_server

# --- Nothing acknowledged is lost, nothing stored twice. ---
expected=0
for file in "${acked[@]}"; do
  expected=$((expected + $(wc -l <"$file")))
done
stored=$(sqlite3 "$db" "SELECT count(*) FROM punch WHERE serial_number = 'FAULT1'")
distinct=$(sqlite3 "$db" "SELECT count(*) FROM (SELECT DISTINCT pin, local_time FROM punch WHERE serial_number = 'FAULT1')")
missing=0
for file in "${acked[@]}"; do
  while IFS=$'\t' read -r pin time _; do
    found=$(sqlite3 "$db" "SELECT count(*) FROM punch WHERE serial_number = 'FAULT1' AND pin = '$pin' AND local_time = '$time'")
    [ "$found" = 1 ] || missing=$((missing + 1))
  done <"$file"
done
echo "storage faults: acknowledged=$expected stored=$stored distinct=$distinct lost=$missing"
[ "$missing" = 0 ] || fail "$missing acknowledged punches are missing or stored twice"
[ "$stored" = "$distinct" ] || fail "punches stored twice"
[ "$stored" = "$expected" ] || fail "stored $stored punches, acknowledged $expected"
echo "PASS"

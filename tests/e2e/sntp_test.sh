#!/usr/bin/env bash
# admsd's SNTP server against a real client: Debian's `sntp` (ntpsec's ntpdig), which only talks
# to port 123. admsd binds 127.0.0.123:123 (all of 127/8 is loopback on Linux, so nothing on
# 127.0.0.1:123 is in the way). With --ntp-local-stratum the client must accept it and measure an
# offset within a few milliseconds (the best of 4 samples, as ntpdig picks it: least delay);
# without it, the client must refuse it exactly when the kernel says the host clock is not
# synchronised (leap 3 / stratum 16) and accept it when it is.
# Skips (77) only when port 123 cannot be bound (not root, or in use).
# Usage: sntp_test.sh ADMSD
set -euo pipefail
admsd=$(realpath "$1")
address=127.0.0.123
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  tail -n 20 "$work"/*.log 2>/dev/null || true
  exit 1
}
client=$(command -v sntp || command -v ntpdig || true)
[ -n "$client" ] || fail "no sntp/ntpdig: install the Debian package sntp (deploy/packages.txt)"

# The kernel's own word (adjtimex with modes 0, as admsd reads it): TIME_ERROR (5) or STA_UNSYNC
# (0x40) means not synchronised.
kernel_state() {
  python3 - <<'EOF'
import ctypes
class timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("rest", ctypes.c_byte * 256)]
t = timex()
state = ctypes.CDLL(None, use_errno=True).adjtimex(ctypes.byref(t))
if state < 0:
    raise SystemExit("adjtimex failed: errno %d" % ctypes.get_errno())
print("unsynchronised" if state == 5 or t.status & 0x40 else "synchronised",
      "(adjtimex returned %d, status 0x%x, maxerror %d us)" % (state, t.status, t.maxerror))
EOF
}

# start NAME ARGS...: admsd with its SNTP server on $address:123; skips when it cannot bind.
start() {
  local name=$1
  shift
  "$admsd" --listen 127.0.0.1:0 --ntp-listen "$address:123" --data-dir "$work/data-$name" \
    --time-zone UTC --admin-token sntp-test-token-0123456789 "$@" >"$work/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    grep -q "NTP (SNTP server) listening on $address:123" "$work/$name.log" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      if grep -Eq "invalid ntp_listen '$address:123': cannot listen: (Permission denied|Address already in use)" \
        "$work/$name.log"; then
        echo "SKIP: cannot bind UDP $address:123 here: $(cat "$work/$name.log")"
        exit 77
      fi
      fail "admsd did not start"
    fi
    sleep 0.05
  done
  fail "no NTP start line in $work/$name.log"
}

stop() {
  kill -TERM "$pid"
  wait "$pid" || fail "admsd exited non-zero on SIGTERM"
  pid=""
}

kernel=$(kernel_state)
echo "kernel: $kernel"

# 1. --ntp-local-stratum 10: served whatever the kernel says; the offset is the clock's own.
start local --ntp-local-stratum 10
if [[ $kernel == unsynchronised* ]]; then
  expected_stratum=10
  grep -q "host clock not synchronised (served anyway at local stratum 10, reference LOCL)" \
    "$work/local.log" || fail "the start line disagrees with the kernel ($kernel)"
  grep -q "ntp_local_stratum 10 serves it anyway" "$work/local.log" || fail "no warning at start"
else
  expected_stratum=4
  grep -q "host clock synchronised" "$work/local.log" || fail "the start line disagrees with the kernel ($kernel)"
fi
"$client" -j -p 4 -t 2 "$address" >"$work/local.out" 2>"$work/local.err" || true
echo "sntp -j -p 4 -t 2 $address: $(cat "$work/local.out") $(cat "$work/local.err")"
python3 - "$work/local.out" "$expected_stratum" <<'EOF' || fail "local stratum: $(cat "$work/local.out" "$work/local.err")"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
assert lines, "no answer accepted"
answer = json.loads(lines[0])
offset = float(answer["offset"])
print("offset %+.6f s, stratum %s, leap %s" % (offset, answer["stratum"], answer["leap"]))
assert int(answer["stratum"]) == int(sys.argv[2]), "stratum %s" % answer["stratum"]
assert abs(offset) < 0.005, "offset %f s" % offset
EOF
stop

# 2. The honest default: refused while the kernel says unsynchronised, accepted once it does not.
start honest
if "$client" -j -t 2 "$address" >"$work/honest.out" 2>"$work/honest.err"; then status=0; else status=$?; fi
echo "sntp (no local stratum, exit $status): $(cat "$work/honest.out") $(cat "$work/honest.err")"
if [[ $kernel == unsynchronised* ]]; then
  grep -q '"offset"' "$work/honest.out" && fail "sntp accepted an unsynchronised server"
  [ "$status" -ne 0 ] || fail "sntp exited 0 without an eligible server"
  grep -Eq "Response dropped: (stratum too high|leap not in sync)" "$work/honest.err" \
    || fail "sntp did not say why it refused the server"
else
  grep -q '"stratum":4' "$work/honest.out" || fail "sntp refused a synchronised server"
fi
stop
echo PASS

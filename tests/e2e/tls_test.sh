#!/usr/bin/env bash
# TLS with a real client (curl over OpenSSL): devices and the admin API over HTTPS on their own
# listener, beside plain HTTP for devices that cannot do TLS; TLS 1.0/1.1 refused; a missing key
# file refused at start with one clear line.
# Usage: tls_test.sh ADMSD
set -euo pipefail
admsd=$(realpath "$1")
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  tail -n 30 "$work"/*.log 2>/dev/null || true
  exit 1
}

# A self-signed certificate for 127.0.0.1, as an operator would make for a LAN server.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=admsd test" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
token=tls-test-token-0123456789

# port_of LOG PATTERN: waits for the server to log the port after PATTERN.
port_of() {
  local log=$1 pattern=$2 port=""
  for _ in $(seq 100); do
    port=$(sed -n "s/.*$pattern 127\.0\.0\.1:\([0-9]*\).*/\1/p" "$log" | head -n 1)
    [ -n "$port" ] && { echo "$port"; return 0; }
    sleep 0.05
  done
  fail "no port after '$pattern' in $log"
}

# 1. Devices over TLS beside plain HTTP, one data directory.
"$admsd" --listen 127.0.0.1:0 --tls-listen 127.0.0.1:0 --tls-cert "$work/cert.pem" \
  --tls-key "$work/key.pem" --data-dir "$work/data1" --time-zone Europe/Berlin \
  --admin-token "$token" >"$work/one.log" 2>&1 &
one=$!
pids+=("$one")
plain=$(port_of "$work/one.log" "listening on")
tls=$(port_of "$work/one.log" "TLS listening on")

https=(curl -sS --max-time 10 --cacert "$work/cert.pem" -H 'Connection: close')
reply=$("${https[@]}" "https://127.0.0.1:$tls/iclock/cdata?SN=TLS1&options=all&pushver=2.4.1")
grep -q '^GET OPTION FROM: TLS1' <<<"$reply" || fail "TLS handshake reply: $reply"
grep -q '^TimeZone=' <<<"$reply" || fail "TLS handshake has no TimeZone"
printf '9\t2026-05-04 08:00:00\t0\t1\t0\t0\t0\n' >"$work/punch"
reply=$("${https[@]}" --data-binary "@$work/punch" "https://127.0.0.1:$tls/iclock/cdata?SN=TLS1&table=ATTLOG")
[ "$reply" = "OK:1" ] || fail "TLS upload answered '$reply'"
# The Date header devices set their clocks from is there over TLS too.
"${https[@]}" -D - -o /dev/null "https://127.0.0.1:$tls/iclock/getrequest?SN=TLS1" | grep -qi '^date: ' \
  || fail "no Date header over TLS"
# The admin API on the TLS listener (it shares the device listeners here).
reply=$("${https[@]}" -H "Authorization: Bearer $token" "https://127.0.0.1:$tls/punches")
grep -q '"pin":"9"' <<<"$reply" || fail "admin API over TLS: $reply"
# Plain HTTP still serves devices that cannot do TLS.
reply=$(curl -sS --max-time 10 "http://127.0.0.1:$plain/iclock/cdata?SN=PLAIN1&options=all")
grep -q '^GET OPTION FROM: PLAIN1' <<<"$reply" || fail "plain handshake: $reply"
# Old protocol versions are refused. At its default security level Debian's OpenSSL refuses
# TLS 1.1 on the client side by itself, whatever the server allows; so the client gets security
# level 0, and first shows it does complete a TLS 1.1 handshake (against openssl s_server).
tls11=(timeout 10 openssl s_client -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' -CAfile "$work/cert.pem")
openssl s_server -accept 127.0.0.1:0 -naccept 1 -www -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' \
  -cert "$work/cert.pem" -key "$work/key.pem" </dev/null >"$work/s_server.log" 2>&1 &
pids+=($!)
control=$(port_of "$work/s_server.log" "ACCEPT")
"${tls11[@]}" -connect "127.0.0.1:$control" </dev/null >"$work/control.out" 2>&1 ||
  fail "control: the TLS 1.1 client failed against openssl s_server: $(cat "$work/control.out")"
grep -q '^New, .*Cipher is [A-Z]' "$work/control.out" && grep -q 'Protocol *: TLSv1.1' "$work/control.out" ||
  fail "control: no TLS 1.1 session with openssl s_server: $(cat "$work/control.out")"
# The same client against admsd: refused for its protocol version.
if "${tls11[@]}" -connect "127.0.0.1:$tls" </dev/null >"$work/tls11.out" 2>&1; then
  fail "TLS 1.1 was accepted: $(grep -E '^New,|Protocol' "$work/tls11.out")"
fi
grep -qiE 'protocol version|unsupported protocol' "$work/tls11.out" ||
  fail "TLS 1.1 failed, but not for its version: $(cat "$work/tls11.out")"
# Plain HTTP on the TLS port gets no answer.
if curl -s --max-time 5 "http://127.0.0.1:$tls/iclock/ping?SN=TLS1" | grep -q OK; then
  fail "plain HTTP answered on the TLS port"
fi
# The server keeps serving after those.
[ "$("${https[@]}" "https://127.0.0.1:$tls/iclock/ping?SN=TLS1")" = OK ] || fail "ping after bad clients"
kill -TERM "$one"
wait "$one" || fail "admsd exited non-zero on SIGTERM"

# 2. The admin API on its own TLS listener; devices on plain HTTP.
"$admsd" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --admin-tls true \
  --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --data-dir "$work/data2" \
  --time-zone UTC --admin-token "$token" >"$work/two.log" 2>&1 &
two=$!
pids+=("$two")
admin=$(port_of "$work/two.log" "admin API listening on")
reply=$("${https[@]}" -H "Authorization: Bearer $token" "https://127.0.0.1:$admin/devices")
grep -q '"success":true' <<<"$reply" || fail "admin API over its TLS listener: $reply"
if curl -s --max-time 5 -H "Authorization: Bearer $token" "http://127.0.0.1:$admin/devices" | grep -q success; then
  fail "the TLS admin listener answered plain HTTP"
fi
kill -TERM "$two"
wait "$two" || fail "admsd exited non-zero on SIGTERM"

# 3. A missing key file stops the start with one line naming it.
if "$admsd" --listen 127.0.0.1:0 --tls-listen 127.0.0.1:0 --tls-cert "$work/cert.pem" \
  --tls-key "$work/missing.pem" --data-dir "$work/data3" --time-zone UTC \
  --admin-token "$token" >"$work/three.log" 2>&1; then
  fail "started without its key file"
fi
grep -q "invalid tls_key '$work/missing.pem'" "$work/three.log" || fail "unclear error: $(cat "$work/three.log")"
echo PASS

#!/usr/bin/env bash
# The admsd binary: starts on port 0 with its defaults and a fresh data directory, logs its start
# line (version, address, port, zone, offset), answers a handshake and `admsd healthcheck`, and on
# SIGTERM stops cleanly with exit status 0 (after which the healthcheck fails).
set -u
admsd=$1
dir=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null; rm -rf "$dir"' EXIT
ADMS_TIME_ZONE=Asia/Kolkata "$admsd" --listen 127.0.0.1:0 --data-dir "$dir/data" >"$dir/log" 2>&1 &
pid=$!

port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/^admsd .* listening on 127\.0\.0\.1:\([0-9]*\), time zone Asia\/Kolkata (UTC+05:30 now).*/\1/p' "$dir/log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "no start line:"; cat "$dir/log"; exit 1; }

exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /iclock/cdata?SN=SIG1&options=all&pushver=2.4.1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
reply=$(cat <&3)
exec 3<&-
case "$reply" in
  *"GET OPTION FROM: SIG1"*"TimeZone=330"*) ;;
  *) echo "unexpected handshake reply: $reply"; exit 1 ;;
esac

# `admsd healthcheck` (the image's HEALTHCHECK) probes /healthz on the listen address.
check=$("$admsd" healthcheck --listen "0.0.0.0:$port" --data-dir "$dir/data" 2>&1) \
  || { echo "healthcheck failed on a running server: $check"; exit 1; }
case "$check" in *'healthy: {"status":"ok"'*) ;; *) echo "healthcheck said: $check"; exit 1 ;; esac

kill -TERM $pid
wait $pid
status=$?
[ $status -eq 0 ] || { echo "exit status $status after SIGTERM"; cat "$dir/log"; exit 1; }
grep -q '^admsd stopped$' "$dir/log" || { echo "no stop line:"; cat "$dir/log"; exit 1; }
[ -f "$dir/data/admsd.sqlite3" ] || { echo "no database in the data directory"; exit 1; }
if "$admsd" healthcheck --listen "127.0.0.1:$port" >/dev/null 2>&1; then
  echo "healthcheck passed with the server stopped"; exit 1
fi
echo "admsd started on port $port, answered, and stopped cleanly on SIGTERM"

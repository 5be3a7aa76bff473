#!/usr/bin/env bash
# systemd-analyze verify on the unit `cmake --install` writes, with its ExecStart pointed at the
# binary just built (the installed path need not exist on a build machine).
set -euo pipefail
analyze=$1 unit=$2 binary=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|^ExecStart=[^ ]*|ExecStart=$binary|" "$unit" >"$dir/admsd.service"
out=$("$analyze" verify "$dir/admsd.service" 2>&1) || { echo "$out"; exit 1; }
# verify exits 0 on some warnings; fail on any line about this unit.
if grep -q 'admsd.service' <<<"$out"; then echo "$out"; exit 1; fi
echo "systemd-analyze verify: admsd.service OK"

#!/usr/bin/env bash
# Checks the image of docs/install.md without a Docker engine, with the shared container-check
# tool (podman builds deploy/Dockerfile; the entrypoint runs in a chroot of a writable copy of the
# image and is probed over HTTP):
#  1. the image as built: the handshake and /healthz answer 200 (the tool prints the image size);
#  2. the same image with ADMS_TIME_ZONE=Asia/Riyadh: the handshake carries TimeZone=3, so the
#     zone database works inside the image and the configured zone, not the container's UTC, is
#     the one used.
# It runs a full Release build in the image (several minutes on 2 cores). tests/run.sh runs it
# when CI=true.
#
# The tool is $CONTAINER_CHECK, else ../shared/tools/container-check next to this checkout. It
# needs root: without root this script re-runs itself through sudo.
# Exit status: 0 both checks passed; 77 the check could not run (no tool, no root), with the
# reason on stderr; anything else a check failed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
check=${CONTAINER_CHECK:-$root/../shared/tools/container-check}
handshake="/iclock/cdata?SN=CHECK0001&options=all&pushver=2.4.1"

if [ ! -x "$check" ]; then
  echo "container-check.sh: no container-check tool at $check (set CONTAINER_CHECK to its path)" >&2
  exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    exec sudo -n CONTAINER_CHECK="$check" "$0" "$@"
  fi
  echo "container-check.sh: needs root (apt-get, podman, chroot), and sudo is missing or asks" \
    "for a password" >&2
  exit 77
fi

zoned=$(mktemp -d)
cleanup() {
  rm -rf "$zoned"
  podman untag localhost/admsd:built >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== 1. the image as built: handshake and /healthz"
"$check" --probe "$handshake" --probe /healthz

# The tool tags what it builds as localhost/admsd:container-check, so the second image starts
# from another tag of the first.
echo "== 2. the same image with ADMS_TIME_ZONE=Asia/Riyadh: TimeZone=3"
podman tag localhost/admsd:container-check localhost/admsd:built
printf 'FROM localhost/admsd:built\nENV ADMS_TIME_ZONE=Asia/Riyadh\n' >"$zoned/Dockerfile"
out=$("$check" --dockerfile "$zoned/Dockerfile" --probe "$handshake" 2>&1) || {
  echo "$out"
  exit 1
}
grep -E "TimeZone=|listening on" <<<"$out" || true
grep -q "TimeZone=3" <<<"$out" || {
  echo "$out"
  echo "container-check.sh: no TimeZone=3 with ADMS_TIME_ZONE=Asia/Riyadh" >&2
  exit 1
}
echo "container-check.sh: OK (the image builds, answers the handshake and /healthz, and uses the configured zone)"

#!/usr/bin/env bash
# The image check of the README's Docker section (a release step: it runs a full Release build in
# the image, several minutes on 2 cores). Needs root. Uses ../shared/tools/container-check, which
# builds deploy/Dockerfile with podman and runs its entrypoint in a chroot of the image:
#  1. the image as built: the handshake and /healthz answer 200, and the image size is printed;
#  2. the same image with ADMS_TIME_ZONE=Asia/Riyadh: the handshake carries TimeZone=3, so the
#     zone database works inside the image and the configured zone, not the container's UTC, is
#     the one used.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
check=${CONTAINER_CHECK:-../shared/tools/container-check}
handshake="/iclock/cdata?SN=CHECK0001&options=all&pushver=2.4.1"

# container-check runs the entrypoint in `podman image mount`'s view of the image. With podman's
# default overlay storage that view is read-only and the image's VOLUME is not mounted, so no
# path is writable and admsd (rightly) refuses to start without a writable data directory. A
# private store with the vfs driver gives a writable view, standing in for the volume Docker
# would mount at /var/lib/admsd. It is kept in /var/tmp/admsd-container-check for the build
# cache of the next run (delete it to start afresh).
store=/var/tmp/admsd-container-check
mkdir -p "$store"
zoned=$(mktemp -d)
trap 'rm -rf "$zoned"' EXIT
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/graph"\nrunroot = "%s/run"\n' \
  "$store" "$store" >"$store/storage.conf"
# Reuse a Debian base image from the default store when there is one (else container-check
# makes one with debootstrap).
if command -v podman >/dev/null && podman image exists docker.io/library/debian:bookworm-slim &&
  ! CONTAINERS_STORAGE_CONF="$store/storage.conf" podman image exists \
    docker.io/library/debian:bookworm-slim; then
  podman save docker.io/library/debian:bookworm-slim \
    | CONTAINERS_STORAGE_CONF="$store/storage.conf" podman load >/dev/null
  for tag in debian:bookworm debian:12 debian:12-slim; do
    CONTAINERS_STORAGE_CONF="$store/storage.conf" podman tag \
      docker.io/library/debian:bookworm-slim "docker.io/library/$tag"
  done
fi
export CONTAINERS_STORAGE_CONF="$store/storage.conf"

# Build first, as container-check does (its own build is then all cached), and open the image's
# top-level directory: the vfs driver creates each layer directory 0700, which as the image's
# "/" would keep the admsd user from reaching anything.
podman build --isolation chroot --network=host -f deploy/Dockerfile \
  -t localhost/admsd:container-check . 2>&1 | tail -n 3
open_root() {
  local root
  root=$(podman image mount "$1")
  chmod 755 "$root"
  podman image unmount "$1" >/dev/null
}
open_root localhost/admsd:container-check

"$check" --probe "$handshake" --probe /healthz

cat >"$zoned/Dockerfile" <<'DOCKERFILE'
FROM localhost/admsd:container-check
ENV ADMS_TIME_ZONE=Asia/Riyadh
DOCKERFILE
# container-check tags what it builds as localhost/admsd:container-check: keep the first image.
podman tag localhost/admsd:container-check localhost/admsd:built
sed -i 's|^FROM .*|FROM localhost/admsd:built|' "$zoned/Dockerfile"
podman build --isolation chroot --network=host -f "$zoned/Dockerfile" \
  -t localhost/admsd:container-check . >/dev/null 2>&1
open_root localhost/admsd:container-check
out=$("$check" --dockerfile "$zoned/Dockerfile" --probe "$handshake" 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -E "TimeZone=|listening on" || true
echo "$out" | grep -q "TimeZone=3" || { echo "container-check.sh: no TimeZone=3 with ADMS_TIME_ZONE=Asia/Riyadh"; exit 1; }
echo "container-check.sh: OK (image builds, answers the handshake and /healthz, uses the configured zone)"

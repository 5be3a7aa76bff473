#!/usr/bin/env bash
# Installs missing dependencies, builds admsd in Release, and serves devices with its embedded
# defaults (0.0.0.0:8080, ./data, the host's time zone).
# Extra arguments go to admsd (e.g. ./deploy/run.sh --help). Reuses ./build-release when present.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

./deploy/install-deps.sh

build=${ADMS_BUILD_DIR:-build-release}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DADMS_BUILD_TESTS=OFF
cmake --build "$build" -j "$(nproc)" --target admsd
exec "$build/server/admsd" "$@"

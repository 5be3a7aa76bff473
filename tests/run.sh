#!/usr/bin/env bash
# Installs missing dependencies, builds, and runs the whole test suite through CTest.
# Reuses ./build when it exists, so a second run only rebuilds what changed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

./deploy/install-deps.sh

build=${ADMS_BUILD_DIR:-build}
jobs=$(nproc)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DADMS_WERROR=ON -DADMS_BUILD_TESTS=ON
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 300

# The same suite again under AddressSanitizer and UndefinedBehaviorSanitizer (clang), then every
# libFuzzer target for ADMS_FUZZ_SECONDS (default 60) each. ADMS_SKIP_SANITIZE=1 skips it for a
# quick local run; CI always runs it.
if [ "${ADMS_SKIP_SANITIZE:-0}" != 1 ]; then
  ./tests/sanitize.sh
fi

#!/usr/bin/env bash
# Installs missing dependencies, builds, and runs the whole test suite through CTest.
# Reuses ./build when it exists, so a second run only rebuilds what changed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

./deploy/install-deps.sh
./tests/e2e/webhooks/setup.sh # the Standard Webhooks reference library (npm, from the lockfile)

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

# CI also checks the container image: deploy/container-check.sh builds deploy/Dockerfile with
# podman (a full Release build in the image) and probes the handshake, /healthz and the configured
# zone. A failed check fails the run. A check that cannot run (exit 77: the shared
# container-check tool is not on this machine, or no root) does not fail it, since a CI machine
# need not have ../shared, but it is reported loudly.
if [ "${CI:-}" = true ]; then
  echo
  echo "======== container image check (CI=true): deploy/container-check.sh ========"
  errors=$(mktemp)
  trap 'rm -f "$errors"' EXIT
  # stderr goes to the terminal and to $errors, for the reason if the check cannot run.
  set +e
  { ./deploy/container-check.sh 2>&1 1>&3 3>&- | tee "$errors" >&2; status=${PIPESTATUS[0]}; } 3>&1
  set -e
  if [ "$status" -eq 77 ]; then
    reason=$(grep '^container-check.sh:' "$errors" | tail -n 1 || true)
    cat >&2 <<WARNING

!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!! WARNING: the container image check did NOT run.
!!! ${reason:-deploy/container-check.sh could not start (exit 77).}
!!! deploy/Dockerfile was neither built nor probed in this run; the test suite passed without
!!! it. Set CONTAINER_CHECK to the container-check tool (and run as root) to include it.
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

WARNING
  elif [ "$status" -ne 0 ]; then
    echo "tests/run.sh: the container image check FAILED (deploy/container-check.sh exit $status)" >&2
    exit "$status"
  else
    echo "tests/run.sh: the container image check passed"
  fi
fi

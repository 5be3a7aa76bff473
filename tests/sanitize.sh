#!/usr/bin/env bash
# The sanitizer run: one clang build with AddressSanitizer and UndefinedBehaviorSanitizer (every
# library also instrumented for libFuzzer), the whole CTest suite under the sanitizers, then each
# libFuzzer target in tests/fuzz for ADMS_FUZZ_SECONDS on a copy of its committed corpus.
# Exits non-zero on a failed test or any fuzzer finding (crash, leak, timeout, out-of-memory);
# the inputs that caused findings stay in <build>/fuzz/artifacts/<target>/.
#
#   ADMS_SANITIZE_BUILD_DIR  build directory (default build-sanitize)
#   ADMS_FUZZ_SECONDS        seconds per fuzz target (default 60; 0 skips fuzzing)
#   ADMS_SANITIZE_JOBS       parallel compile jobs and CTest cases (default: nproc)
#   ADMS_FUZZ_JOBS           fuzz targets run at once (default: ADMS_SANITIZE_JOBS)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

./deploy/install-deps.sh

build=$(realpath -m "${ADMS_SANITIZE_BUILD_DIR:-build-sanitize}")
seconds=${ADMS_FUZZ_SECONDS:-60}
jobs=${ADMS_SANITIZE_JOBS:-$(nproc)}
fuzz_jobs=${ADMS_FUZZ_JOBS:-$jobs}

# -fno-sanitize=function: clang 14 cannot emit that check's prologue data for coroutine clones
# ("error: Cannot represent a difference across sections", llvm-project issue 49689), and every
# Asio handler here is a coroutine. It only checks calls through mistyped function pointers.
sanitizers="-fsanitize=address,undefined -fno-sanitize=function -fno-sanitize-recover=all"
sanitizers+=" -fno-omit-frame-pointer"
# fuzzer-no-link: coverage instrumentation without libFuzzer's main(), so the same libraries
# link into the test executables and, with -fsanitize=fuzzer, into the fuzz targets.
phase_start=$SECONDS
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DADMS_BUILD_TESTS=ON -DADMS_FUZZ=ON -DADMS_WERROR=ON \
  "-DCMAKE_CXX_FLAGS=$sanitizers -fsanitize=fuzzer-no-link" \
  "-DCMAKE_EXE_LINKER_FLAGS=$sanitizers"
cmake --build "$build" -j "$jobs"
build_seconds=$((SECONDS - phase_start))

# halt_on_error: the first report fails the process. LeakSanitizer works here (it needs ptrace
# of the process's own threads, which this machine allows), so leaks fail tests too.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
if symbolizer=$(command -v llvm-symbolizer); then
  export ASAN_SYMBOLIZER_PATH=$symbolizer
fi

phase_start=$SECONDS
ctest_status=0
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 600 || ctest_status=$?
ctest_seconds=$((SECONDS - phase_start))

# Fuzzing: every target on a fresh copy of its corpus (CI never writes into the repository);
# new inputs it finds stay in <build>/fuzz/corpus/<target>.
fuzz="$build/fuzz"
rm -rf "$fuzz"
mkdir -p "$fuzz/corpus" "$fuzz/artifacts" "$fuzz/logs"
# fuzz_http keeps its database under TMPDIR: tmpfs when there is one, removed at the end.
scratch=$(mktemp -d -p /dev/shm admsd-sanitize.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT

targets=()
for source in tests/fuzz/fuzz_*.cpp; do
  targets+=("$(basename "$source" .cpp)")
done

# Runs one target; its output goes to <build>/fuzz/logs/<target>.log.
run_target() {
  local target=$1
  local corpus="$fuzz/corpus/$target"
  mkdir -p "$corpus" "$fuzz/artifacts/$target"
  if [ -d "tests/fuzz/corpus/$target" ]; then
    cp -R "tests/fuzz/corpus/$target/." "$corpus/"
  fi
  local args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048
              -artifact_prefix="$fuzz/artifacts/$target/")
  if [ -f "tests/fuzz/$target.dict" ]; then
    args+=(-dict="tests/fuzz/$target.dict")
  fi
  local status=0
  TMPDIR=$scratch "$build/tests/fuzz/$target" "${args[@]}" "$corpus" \
    >"$fuzz/logs/$target.log" 2>&1 || status=$?
  echo "$status" >"$fuzz/logs/$target.status"
}

phase_start=$SECONDS
if [ "$seconds" -gt 0 ]; then
  echo "sanitize: fuzzing ${#targets[@]} targets for ${seconds} s each, $fuzz_jobs at a time"
  running=0
  for target in "${targets[@]}"; do
    if [ "$running" -ge "$fuzz_jobs" ]; then
      wait -n
      running=$((running - 1))
    fi
    run_target "$target" &
    running=$((running + 1))
  done
  wait
fi
fuzz_seconds=$((SECONDS - phase_start))

# The summary: executions and coverage from libFuzzer's final stats, the corpus size before and
# after, and findings (saved inputs, or a non-zero exit).
summary="$build/fuzz-summary.txt"
findings_total=0
executions_total=0
{
  printf '%-18s %12s %8s %16s %s\n' target executions cov corpus findings
  for target in "${targets[@]}"; do
    log="$fuzz/logs/$target.log"
    [ -f "$log" ] || continue
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ -z "$executions" ]; then
      # No final stats (it crashed): the last status line's count.
      executions=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
    fi
    executions=${executions:-0}
    cov=$(sed -n 's/^#[0-9]*.* cov: \([0-9]*\).*/\1/p' "$log" | tail -1)
    seeds=$(find "tests/fuzz/corpus/$target" -type f 2>/dev/null | wc -l)
    corpus=$(find "$fuzz/corpus/$target" -type f | wc -l)
    saved=$(find "$fuzz/artifacts/$target" -type f \
      \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    status=$(cat "$fuzz/logs/$target.status")
    findings=$saved
    if [ "$status" -ne 0 ] && [ "$saved" -eq 0 ]; then
      findings=1 # failed without saving an input (e.g. could not start): still a finding
    fi
    detail=$findings
    if [ "$findings" -gt 0 ]; then
      detail="$findings (exit $status, see $log)"
    fi
    printf '%-18s %12s %8s %16s %s\n' "$target" "$executions" "${cov:--}" "$seeds -> $corpus" \
      "$detail"
    findings_total=$((findings_total + findings))
    executions_total=$((executions_total + executions))
  done
  echo "total executions: $executions_total; findings: $findings_total"
  echo "wall time: configure+build ${build_seconds} s, ctest ${ctest_seconds} s" \
    "(exit $ctest_status), fuzzing ${fuzz_seconds} s (${seconds} s per target," \
    "$fuzz_jobs at a time)"
} >"$summary" # not a pipe: the totals must stay in this shell
cat "$summary"

for target in "${targets[@]}"; do
  for input in "$fuzz/artifacts/$target"/*; do
    [ -f "$input" ] || continue
    echo "sanitize: $target finding kept: $input" \
      "(replay: $build/tests/fuzz/$target $input)"
  done
done

if [ "$ctest_status" -ne 0 ] || [ "$findings_total" -ne 0 ]; then
  echo "sanitize: FAILED (ctest exit $ctest_status, $findings_total fuzz findings)" >&2
  exit 1
fi
echo "sanitize: passed"

#!/usr/bin/env bash
# Reproduces every figure of tests/bench/RESULTS.md in one run: admsd against nginx answering a
# fixed "OK" on the same paths, both driven the same way (wrk, or the device simulator), in
# alternating rounds (admsd, nginx, admsd, nginx, …); the median of each and their ratio.
#
# Usage: tests/bench/run.sh [--quick] [--only ROW[,ROW…]] [--rounds N] [--fleet-rounds N] [--keep]
#   --quick         one round, short durations: a smoke run whose figures mean little
#   --only          rows to run: poll-keepalive poll-close attlog realtime fleet timesync startup
#                   attlog-webhook webhook-delivery
#   --rounds        alternating rounds of every row (default 5; 1 with --quick)
#   --fleet-rounds  rounds of the 20,000-device row, whose rounds are long (default min(3, rounds))
#   --keep          keep the working directory (databases, server logs) under build-bench/
# Environment: ADMS_BUILD_JOBS (default: number of cores) for the build; ADMS_SIM=PATH uses that
# simulator instead of building tests/sim's admsd-sim.
#
# It installs missing packages (deploy/install-deps.sh), builds admsd, startup_time and, when the
# source has it, admsd-sim in build-bench/ (Release), runs the rows and writes
# tests/bench/results/<date>-<host>.md, with the raw outputs beside it in a folder of that name.
# Everything listens on 127.0.0.1, every load is bounded in time, and the EXIT trap stops every
# server and load generator it started.
set -uo pipefail
export LC_ALL=C
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/tests/bench
build=$root/build-bench

all_rows=(poll-keepalive poll-close attlog realtime fleet timesync startup attlog-webhook
  webhook-delivery)
quick=0
keep=0
rounds=""
fleet_rounds=""
only=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    --only) only=${2:?--only takes a row name}; shift ;;
    --rounds) rounds=${2:?--rounds takes a number}; shift ;;
    --fleet-rounds) fleet_rounds=${2:?--fleet-rounds takes a number}; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
selected=()
if [ -n "$only" ]; then
  IFS=, read -r -a selected <<<"$only"
  for row in "${selected[@]}"; do
    [[ " ${all_rows[*]} " == *" $row "* ]] || {
      echo "run.sh: unknown row '$row' (rows: ${all_rows[*]})" >&2
      exit 2
    }
  done
else
  selected=("${all_rows[@]}")
fi
wants() { [[ " ${selected[*]} " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------------
# The parameters of every row. Both servers get exactly the same load.
if [ "$quick" = 1 ]; then
  rounds=${rounds:-1}
  wrk_seconds=3
  fleet_seconds=20
  fleet_warmup=5
  timesync_seconds=10
  startup_runs=3
else
  rounds=${rounds:-5}
  wrk_seconds=10
  fleet_seconds=60
  # Latencies leave out the first 20 s: the fleet's first contact (20,000 handshakes over 10 s,
  # each queueing a time sync) is a registration storm, reported by the counts, not the steady
  # state the target is about.
  fleet_warmup=20
  timesync_seconds=20
  startup_runs=3 # per round: 15 starts of each with 5 rounds
fi
fleet_rounds=${fleet_rounds:-$((rounds < 3 ? rounds : 3))}
for n in "$rounds" "$fleet_rounds"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: rounds must be whole numbers ≥ 1" >&2; exit 2; }
done
# wrk shares the machine's cores with the server it drives (loopback only), so it gets as many
# threads as the server (admsd --threads 2, nginx worker_processes 2). 64 connections (32 per wrk
# thread) keep both server threads busy and give a batching writer many requests to commit at
# once, without so many that wrk's own CPU time dominates; the realtime row models 1,000 devices,
# so it opens 1,000.
server_threads=2
wrk_threads=2
wrk_connections=64
realtime_connections=1000
devices=1000         # serial numbers BENCH000001… registered before the wrk rows
attlog_lines=128
startup_punches=10000000
startup_devices=1000
# Webhooks: the delivery row's backlog, spread over that many devices (one lane each), and the
# backlog of one device (a single lane, delivered one event at a time, in order).
delivery_events=20000
delivery_devices=200
delivery_lane_events=2000
webhook_secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
receiver_py=$root/tests/e2e/webhooks/receiver.py

# ---------------------------------------------------------------------------------------------
# Packages, build, folders.
"$root/deploy/install-deps.sh" || { echo "run.sh: installing packages failed" >&2; exit 1; }
jobs=${ADMS_BUILD_JOBS:-$(nproc)}
echo "run.sh: building admsd in $build (Release, -j$jobs)"
nice cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DADMS_BUILD_TESTS=ON >/dev/null ||
  { echo "run.sh: cmake configure failed" >&2; exit 1; }
nice cmake --build "$build" -j "$jobs" --target admsd startup_time ||
  { echo "run.sh: building admsd and startup_time failed" >&2; exit 1; }
admsd=$build/server/admsd
startup_time=$build/tests/bench/startup_time
sim=${ADMS_SIM:-$build/tests/sim/admsd-sim}
sim_note=""
if [ -n "${ADMS_SIM:-}" ]; then
  [ -x "$sim" ] || { echo "run.sh: ADMS_SIM=$sim is not an executable" >&2; exit 2; }
elif wants fleet || wants timesync; then
  if nice cmake --build "$build" -j "$jobs" --target admsd-sim >"$build/admsd-sim-build.log" 2>&1 &&
    [ -x "$sim" ]; then
    echo "run.sh: admsd-sim built"
  elif [ -f "$root/tests/sim/CMakeLists.txt" ]; then
    sim_note="admsd-sim failed to build (see build-bench/admsd-sim-build.log)"
    echo "run.sh: WARNING: $sim_note" >&2
    tail -n 5 "$build/admsd-sim-build.log" >&2
  else
    sim_note="the simulator (tests/sim/admsd-sim) is not in this tree yet"
    echo "run.sh: $sim_note: the fleet and timesync rows will be skipped" >&2
  fi
fi
command -v nginx >/dev/null 2>&1 && nginx_bin=$(command -v nginx) || nginx_bin=/usr/sbin/nginx

stamp=$(date +%Y-%m-%d-%H%M)
host=$(hostname -s 2>/dev/null || hostname)
results=$here/results
report=$results/$stamp-$host.md
raw=$results/$stamp-$host
mkdir -p "$raw"
# The databases live under the build folder, on a real disk: durability costs an fsync, which a
# tmpfs does not pay.
work=$build/bench-run
rm -rf "$work"
mkdir -p "$work"
work_fs=$(findmnt -no FSTYPE -T "$work" 2>/dev/null || stat -f -c %T "$work")
if [ "$work_fs" = tmpfs ] || [ "$work_fs" = ramfs ]; then
  echo "run.sh: $work is on $work_fs: the durable figures would be meaningless; build elsewhere" >&2
  exit 1
fi
ulimit_hard=$(ulimit -Hn)
if [ "$ulimit_hard" = unlimited ] || [ "$ulimit_hard" -ge 65536 ]; then
  ulimit -n 65536
else
  ulimit -n "$ulimit_hard"
fi

# ---------------------------------------------------------------------------------------------
# Processes: every server and load generator this script starts is stopped by the EXIT trap.
admsd_pid=""
admsd_port=""
nginx_pid=""
nginx_port=""
hook_port="" # nginx's second server: `return 204`, a webhook receiver that costs nothing
receiver_pid=""
sampler_pid=""
cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null
  for pid in $admsd_pid $nginx_pid $receiver_pid; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in $admsd_pid $nginx_pid $receiver_pid; do
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  wait 2>/dev/null
  if [ "$keep" = 1 ]; then
    echo "run.sh: databases and server logs kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

say() { echo "run.sh: $*" | tee -a "$raw/run.log" >&2; }

# Writes a command to commands.txt (the report lists them).
log_command() {
  local line
  printf -v line '%q ' "$@"
  echo "${line% }" >>"$raw/commands.txt"
}
# Runs a command in the foreground after logging it. (A server is started with log_command and
# then `&` on the command itself: `&` on a function would give the pid of a subshell, and the
# server would outlive its SIGTERM.)
run_logged() {
  log_command "$@"
  "$@"
}

# Starts admsd on 127.0.0.1:0 with the data directory $1, its log in $2 and the settings that
# follow, if any; sets admsd_pid and admsd_port. The start line is logged once the socket listens.
start_admsd() {
  local data=$1 log=$2
  shift 2
  mkdir -p "$data"
  : >"$log"
  local -a command=("$admsd" --listen 127.0.0.1:0 --data-dir "$data" --time-zone Europe/Berlin
    --device-rate-limit 0 --threads "$server_threads" --log-format json "$@")
  log_command "${command[@]}"
  "${command[@]}" >>"$log" 2>&1 &
  admsd_pid=$!
  for _ in $(seq 1 3000); do
    admsd_port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$log" | head -n 1)
    [ -n "$admsd_port" ] && return 0
    kill -0 "$admsd_pid" 2>/dev/null || break
    sleep 0.01
  done
  say "admsd did not start: $(tail -n 3 "$log")"
  stop_admsd
  return 1
}

# SIGTERM, at most 15 s to drain (admsd takes at most 10), then SIGKILL.
stop_admsd() {
  [ -n "$admsd_pid" ] || return 0
  kill -TERM "$admsd_pid" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$admsd_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$admsd_pid" 2>/dev/null; then
    say "admsd did not stop within 15 s of SIGTERM: SIGKILL"
    kill -KILL "$admsd_pid"
  fi
  wait "$admsd_pid" 2>/dev/null
  local status=$?
  [ "$status" = 0 ] || check_note "admsd (pid $admsd_pid) exited with status $status on SIGTERM"
  admsd_pid=""
  admsd_port=""
}

# nginx as the current user, from its own prefix: `return 200 "OK"` on every path, no access log,
# as many workers as admsd has threads. keepalive_requests is raised so that nginx, like admsd,
# never closes a keep-alive connection on its own during a run (its default is 1,000 requests).
# With a third argument, a second server on that port answers every request `204 No Content`:
# the webhook rows' receiver.
write_nginx_conf() {
  local prefix=$1 port=$2 hook=${3:-} user_line="" hook_server=""
  [ -n "$hook" ] && hook_server="server { listen 127.0.0.1:$hook; location / { return 204; } }"
  [ "$(id -u)" = 0 ] && user_line="user $(id -un) $(id -gn);"
  mkdir -p "$prefix/temp"
  cat >"$prefix/nginx.conf" <<EOF
daemon off;
$user_line
worker_processes $server_threads;
worker_rlimit_nofile $(ulimit -n);
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 30000; }
http {
    access_log off;
    default_type text/plain;
    keepalive_requests 100000000;
    client_body_temp_path $prefix/temp/body;
    proxy_temp_path $prefix/temp/proxy;
    fastcgi_temp_path $prefix/temp/fastcgi;
    uwsgi_temp_path $prefix/temp/uwsgi;
    scgi_temp_path $prefix/temp/scgi;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 "OK"; }
    }
    $hook_server
}
EOF
}

# A port nobody answers on now (nginx is then started on it; a race is retried by start_nginx).
pick_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

start_nginx() {
  local prefix=$work/nginx
  for _ in 1 2 3 4 5; do
    nginx_port=$(pick_port)
    hook_port=$(pick_port)
    [ "$hook_port" = "$nginx_port" ] && continue
    write_nginx_conf "$prefix" "$nginx_port" "$hook_port"
    log_command "$nginx_bin" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"
    "$nginx_bin" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
      >>"$prefix/stdout.log" 2>&1 &
    nginx_pid=$!
    for _ in $(seq 1 500); do
      if [ "$(curl -s --max-time 1 "http://127.0.0.1:$nginx_port/iclock/ping?SN=X")" = OK ] &&
        [ "$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' -d '{}' "http://127.0.0.1:$hook_port/hook")" = 204 ]; then
        return 0
      fi
      kill -0 "$nginx_pid" 2>/dev/null || break
      sleep 0.01
    done
    kill -TERM "$nginx_pid" 2>/dev/null
    wait "$nginx_pid" 2>/dev/null
    nginx_pid=""
  done
  say "nginx did not start: $(tail -n 3 "$prefix/error.log" 2>/dev/null)"
  return 1
}

stop_nginx() {
  [ -n "$nginx_pid" ] || return 0
  kill -TERM "$nginx_pid" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$nginx_pid" 2>/dev/null
  wait "$nginx_pid" 2>/dev/null
  nginx_pid=""
}

# Requests in one curl process over up to 200 parallel keep-alive connections, from a curl config
# file $1 whose operations each end with `next` (the last one is dropped: curl wants a URL after
# every `next`). Parallel, because a poll that delivers a time sync is answered at the next whole
# second: one after the other, 1,000 first polls would take minutes.
curl_batch() {
  [ "$(tail -n 1 "$1")" = next ] && sed -i '$d' "$1"
  curl --parallel --parallel-max 200 --config "$1" 2>>"$raw/curl.err"
}

# Registers BENCH000001… ($1 of them) with a handshake each. With "drain" as $2, also polls each
# device and confirms what it is sent (the first-contact time sync) until every poll answers OK,
# so that the measured polls find no command waiting: a poll with nothing to send is what a
# fleet does nearly all the time.
prepare_devices() {
  local count=$1 drain=${2:-} base="http://127.0.0.1:$admsd_port" config=$work/curl.conf sn i
  local replies
  : >"$config"
  for ((i = 1; i <= count; i++)); do
    printf 'url = "%s/iclock/cdata?SN=BENCH%06d&options=all&pushver=2.4.1"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nsilent\nnext\n' \
      "$base" "$i" >>"$config"
  done
  replies=$(curl_batch "$config" | grep -c '^200$')
  if [ "$replies" != "$count" ]; then
    say "registering devices: $replies of $count handshakes answered 200"
    return 1
  fi
  [ "$drain" = drain ] || return 0
  mkdir -p "$work/polls"
  for _ in 1 2 3 4; do
    rm -f "$work/polls/"*
    : >"$config"
    for ((i = 1; i <= count; i++)); do
      printf 'url = "%s/iclock/getrequest?SN=BENCH%06d"\noutput = "%s/polls/BENCH%06d"\nsilent\nnext\n' \
        "$base" "$i" "$work" "$i" >>"$config"
    done
    curl_batch "$config" >/dev/null
    # What each device was sent: "C:<id>:<command>" lines; confirm each with Return=0.
    : >"$config"
    local pending=0 file id name
    for ((i = 1; i <= count; i++)); do
      printf -v sn 'BENCH%06d' "$i"
      file=$work/polls/$sn
      [ "$(cat "$file" 2>/dev/null)" = OK ] && continue
      pending=$((pending + 1))
      while IFS=: read -r _ id name; do
        name=${name%% DateTime=*}
        name=${name%% *}
        printf 'url = "%s/iclock/devicecmd?SN=%s"\ndata-binary = "ID=%s&Return=0&CMD=%s"\noutput = "/dev/null"\nsilent\nnext\n' \
          "$base" "$sn" "$id" "$name" >>"$config"
      done < <(grep '^C:' "$file")
    done
    [ "$pending" = 0 ] && return 0
    [ -s "$config" ] && curl_batch "$config" >/dev/null
  done
  say "preparing devices: $pending polls still had commands after 4 passes"
  return 1
}

# Rows in the punch table of the database in data directory $1.
count_punches() {
  sqlite3 -cmd '.timeout 10000' "$1/admsd.sqlite3" 'SELECT count(*) FROM punch'
}

# The punch count once it stops moving (uploads in flight when wrk stopped are still committed).
settled_punches() {
  local last now
  last=$(count_punches "$1")
  for _ in $(seq 1 50); do
    sleep 0.2
    now=$(count_punches "$1")
    [ "$now" = "$last" ] && { echo "$now"; return; }
    last=$now
  done
  echo "$now"
}

# The value of key $1 in a `key=value …` line $2.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# Median of the numbers on standard input; NA when there are none.
median() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "NA"; exit }
    if (NR % 2) printf "%.6g\n", v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Median of the arguments that are numbers (NA and empty ones are left out).
median_of() { printf '%s\n' "$@" | grep -E '^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$' | median; }

# awk arithmetic on numbers that may be NA.
calc() { awk -v a="$1" -v b="$2" "BEGIN { if (a == \"NA\" || b == \"NA\" || ($4)) { print \"NA\"; exit } printf \"$5\", $3 }"; }
ratio() { calc "$1" "$2" 'a / b' 'b == 0' '%.2f'; }
fmt_int() { [ "$1" = NA ] && echo NA || printf '%.0f\n' "$1" | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'; }
fmt_num() { [ "$1" = NA ] && echo NA || awk -v v="$1" -v f="$2" 'BEGIN { printf f, v }'; }

# The report's figures, per row.
declare -A fig_admsd fig_nginx fig_ratio fig_target fig_verdict fig_notes
rows_done=()
record() { # row admsd nginx ratio target verdict notes
  fig_admsd[$1]=$2 fig_nginx[$1]=$3 fig_ratio[$1]=$4 fig_target[$1]=$5 fig_verdict[$1]=$6
  fig_notes[$1]=$7
  rows_done+=("$1")
}
skip_row() { record "$1" "—" "—" "—" "$2" "SKIPPED" "$3"; say "$1: skipped: $3"; }
per_round() { printf '%s\n' "$@" >>"$raw/rounds.md"; }
check_note() { echo "- $*" >>"$raw/checks.md"; say "CHECK: $*"; }

# ---------------------------------------------------------------------------------------------
# Rows driven by wrk.
#   wrk_row ROW TITLE MODE LINES CONNECTIONS CONNECTION_CLOSE(0/1) TARGET_KIND TARGET
# MODE poll: figure = OK replies/s. MODE attlog: admsd's figure = punches acknowledged/s (replies
# OK:<LINES> × LINES), cross-checked with the rows sqlite3 counts; nginx's = OK replies/s × LINES
# (the upper bound: the cost of HTTP alone).
wrk_row() {
  local row=$1 title=$2 mode=$3 lines=$4 conns=$5 close=$6 target_kind=$7 target=$8
  local data=$work/$row/data log=$work/$row/admsd.log r server port expect out result
  local -a extra=() admsd_values=() nginx_values=()
  [ "$close" = 1 ] && extra=(-H "Connection: close")
  say "$row: $title"
  mkdir -p "$work/$row"
  start_admsd "$data" "$log" || { record "$row" NA NA NA "$target" ERROR "admsd did not start"; return; }
  local prepare=""
  [ "$mode" = poll ] && prepare=drain
  if ! prepare_devices "$devices" $prepare; then
    record "$row" NA NA NA "$target" ERROR "registering $devices devices failed"
    stop_admsd
    return
  fi
  local bad_total=0 lost_total=0 errors_total=0
  per_round "" "#### $row: $title" "" \
    "| round | server | requests/s | OK replies | bad replies | socket errors | p50 ms | p99 ms | figure | rows stored | rows − acknowledged |" \
    "|---|---|---|---|---|---|---|---|---|---|---|"
  for ((r = 1; r <= rounds; r++)); do
    for server in admsd nginx; do
      if [ "$server" = admsd ]; then port=$admsd_port; else port=$nginx_port; fi
      if [ "$mode" = poll ]; then expect=OK; elif [ "$server" = admsd ]; then expect="OK:$lines"; else expect=OK; fi
      out=$raw/$row-$server-round$r.txt
      local before=0 after=0
      [ "$server" = admsd ] && [ "$mode" = attlog ] && before=$(count_punches "$data")
      run_logged timeout --kill-after=10 $((wrk_seconds + 60)) wrk -t"$wrk_threads" -c"$conns" \
        -d"${wrk_seconds}s" --timeout 10s "${extra[@]}" -s "$here/iclock.lua" \
        "http://127.0.0.1:$port" -- "$mode" "$devices" "$wrk_threads" BENCH "$r" "$lines" \
        "$expect" >"$out" 2>&1
      result=$(sed -n 's/^WRK_RESULT //p' "$out")
      if [ -z "$result" ]; then
        check_note "$row round $r $server: wrk printed no result (see $(basename "$out"))"
        errors_total=$((errors_total + 1))
        continue
      fi
      local requests duration_us good bad socket_errors p50 p99 rps figure rows_note="" diff_note=""
      requests=$(field requests "$result")
      duration_us=$(field duration_us "$result")
      good=$(field good "$result")
      bad=$(field bad "$result")
      socket_errors=$(($(field connect_errors "$result") + $(field read_errors "$result") +
        $(field write_errors "$result") + $(field timeouts "$result")))
      p50=$(calc "$(field p50_us "$result")" 1 'a / 1000' 0 '%.2f')
      p99=$(calc "$(field p99_us "$result")" 1 'a / 1000' 0 '%.2f')
      rps=$(calc "$requests" "$duration_us" 'a * 1e6 / b' 'b == 0' '%.0f')
      if [ "$bad" -gt 0 ]; then
        check_note "$row round $r $server: $bad replies were not 200 \"$expect\" (first ones: $(grep -m 3 '^wrk: unexpected' "$out" | tr '\n' ' '))"
        [ "$server" = admsd ] && bad_total=$((bad_total + bad))
      fi
      if [ "$socket_errors" -gt 0 ]; then
        check_note "$row round $r $server: $socket_errors socket errors or timeouts: $(grep -m 1 'Socket errors' "$out")"
        [ "$server" = admsd ] && errors_total=$((errors_total + socket_errors))
      fi
      if [ "$mode" = poll ]; then
        figure=$(calc "$good" "$duration_us" 'a * 1e6 / b' 'b == 0' '%.0f')
      elif [ "$server" = admsd ]; then
        after=$(settled_punches "$data")
        local stored=$((after - before)) acknowledged=$((good * lines))
        rows_note=$stored
        diff_note=$((stored - acknowledged))
        # Every acknowledged punch must be stored; requests in flight when wrk stopped (at most one
        # per connection) may be stored without wrk seeing their reply.
        if [ "$stored" -lt "$acknowledged" ]; then
          check_note "**BUG** $row round $r: $acknowledged punches acknowledged but only $stored rows stored"
          lost_total=$((lost_total + acknowledged - stored))
        elif [ "$stored" -gt $((acknowledged + conns * lines)) ]; then
          check_note "**BUG** $row round $r: $stored rows stored for $acknowledged acknowledged, more than the $((conns * lines)) that requests in flight at the end explain"
          lost_total=$((lost_total + 1))
        fi
        # The figure counts acknowledged punches only: an OK:<n> comes after the commit, and the
        # rows check above shows they are stored. (Rows stored / elapsed would also count the
        # batches in flight when wrk stopped, up to one per connection: 64 × 128 rows in 10 s.)
        figure=$(calc "$acknowledged" "$duration_us" 'a * 1e6 / b' 'b == 0' '%.0f')
      else
        figure=$(calc "$good" "$duration_us" "a * $lines * 1e6 / b" 'b == 0' '%.0f')
      fi
      per_round "| $r | $server | $rps | $good | $bad | $socket_errors | $p50 | $p99 | $figure | ${rows_note:-—} | ${diff_note:-—} |"
      if [ "$server" = admsd ]; then admsd_values+=("$figure"); else nginx_values+=("$figure"); fi
      say "$row round $r $server: figure $figure (requests/s $rps, bad $bad, socket errors $socket_errors, p99 ${p99} ms)"
    done
  done
  stop_admsd
  local a n q verdict notes=""
  a=$(median_of "${admsd_values[@]}")
  n=$(median_of "${nginx_values[@]}")
  q=$(ratio "$a" "$n")
  if [ "$target_kind" = ratio ]; then
    verdict=$(awk -v q="$q" -v t="$target" 'BEGIN { print (q != "NA" && q >= t) ? "PASS" : "FAIL" }')
    target="≥ $target × nginx"
  else
    verdict=$(awk -v a="$a" -v t="$target" 'BEGIN { print (a != "NA" && a >= t) ? "PASS" : "FAIL" }')
    target="≥ $(fmt_int "$target")/s"
  fi
  [ "$bad_total" -gt 0 ] && { notes+="$bad_total admsd replies not \"OK\"; "; verdict="FAIL (bad replies)"; }
  [ "$errors_total" -gt 0 ] && notes+="$errors_total admsd socket errors/timeouts; "
  [ "$lost_total" -gt 0 ] && { notes+="rows ≠ acknowledged (see checks); "; verdict="FAIL (BUG)"; }
  if [ "$mode" = attlog ] && [ "$lines" -gt 1 ]; then
    notes+="nginx: OK replies/s × $lines, the bound set by HTTP alone"
  fi
  record "$row" "$(fmt_int "$a")" "$(fmt_int "$n")" "$q" "$target" "$verdict" "$notes"
}

# ---------------------------------------------------------------------------------------------
# The simulator rows.

# Samples VmRSS of pid $1 into $2 every half second until it exits or is stopped.
start_sampler() {
  local pid=$1 file=$2
  (
    while [ -r "/proc/$pid/status" ]; do
      awk -v t="$EPOCHREALTIME" '/^VmRSS:|^VmHWM:/ { v[$1] = $2 } END { print t, v["VmRSS:"], v["VmHWM:"] }' \
        "/proc/$pid/status" 2>/dev/null
      sleep 0.5
    done
  ) >"$file" &
  sampler_pid=$!
}
stop_sampler() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null && wait "$sampler_pid" 2>/dev/null
  sampler_pid=""
}

# jq on a simulator result; NA when the field is missing.
jq_num() { jq -r "($2) // \"NA\"" "$1" 2>/dev/null || echo NA; }
# An endpoint's latency figure in ms, "—" when the simulator made no such request.
endpoint_ms() {
  local value
  value=$(jq -r --arg e "$2" --arg f "$3" \
    'if (.endpoints[$e].count // 0) == 0 then "—" else .endpoints[$e][$f] end' "$1" 2>/dev/null)
  [ -z "$value" ] || [ "$value" = "—" ] || [ "$value" = null ] && { echo "${value:-NA}"; return; }
  fmt_num "$value" '%.2f'
}

fleet_row() {
  local row=fleet target="p99 < 5 ms, RSS < 200 MB"
  local title="20,000 simulated devices polling every 10 s plus realtime punches"
  if [ -n "$sim_note" ]; then skip_row "$row" "$target" "$sim_note"; return; fi
  say "$row: $title ($fleet_rounds rounds of ${fleet_seconds} s)"
  local r server json port log data status p99 worst rss hwm
  local -a a_p99=() n_p99=() a_rss=() a_hwm=()
  local nginx_failed="" errors=0
  per_round "" "#### $row: $title" "" \
    "| round | server | requests/s | getrequest p50 / p99 / max ms | handshake p99 ms | attlog p99 ms | devicecmd p99 ms | punches sent / acknowledged | rows stored | max VmRSS MB | VmHWM MB |" \
    "|---|---|---|---|---|---|---|---|---|---|---|"
  for ((r = 1; r <= fleet_rounds; r++)); do
    for server in admsd nginx; do
      [ "$server" = nginx ] && [ -n "$nginx_failed" ] && continue
      rss="" hwm=""
      json=$raw/$row-$server-round$r.json
      # Every admsd round starts afresh (new process, empty database): the same first contact of
      # 20,000 devices each time, and memory measured from a clean start.
      if [ "$server" = admsd ]; then
        data=$work/$row/round$r/data
        log=$work/$row/round$r/admsd.log
        mkdir -p "$work/$row/round$r"
        start_admsd "$data" "$log" || { errors=$((errors + 1)); continue; }
        port=$admsd_port
        start_sampler "$admsd_pid" "$raw/$row-admsd-round$r-memory.txt"
        stub=()
      else
        port=$nginx_port
        stub=(--stub-server) # nginx's handshake reply is its fixed OK
      fi
      run_logged timeout --kill-after=10 $((fleet_seconds + 120)) "$sim" --target "127.0.0.1:$port" \
        --devices 20000 --delay 10 --punch-interval 300 --duration "$fleet_seconds" --ramp 10 \
        --warmup "$fleet_warmup" \
        --source-addresses 16 --zone Europe/Berlin --json "$json" --quiet "${stub[@]}" \
        >"$raw/$row-$server-round$r.txt" 2>&1
      status=$?
      if [ "$server" = admsd ]; then
        hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$admsd_pid/status" 2>/dev/null)
        stop_sampler
        rss=$(awk '{ if ($2 > m) m = $2 } END { print m + 0 }' "$raw/$row-admsd-round$r-memory.txt")
        stop_admsd
        rss=$(calc "$rss" 1 'a / 1024' 0 '%.1f')
        hwm=$(calc "${hwm:-NA}" 1 'a / 1024' 0 '%.1f')
      fi
      # Exit 1 is a finished run that left punches unacknowledged: its figures stand, flagged.
      if [ ! -s "$json" ] || { [ "$status" != 0 ] && [ "$status" != 1 ]; }; then
        if [ "$server" = nginx ]; then
          nginx_failed="the simulator failed against nginx (exit $status): $(tail -n 1 "$raw/$row-$server-round$r.txt")"
          check_note "$row: $nginx_failed; nginx column skipped"
        else
          check_note "$row round $r: the simulator failed against admsd (exit $status): $(tail -n 2 "$raw/$row-$server-round$r.txt" | tr '\n' ' ')"
          errors=$((errors + 1))
        fi
        continue
      fi
      local sent acked unacked rows="—" handshaken bad_replies request_errors
      sent=$(jq_num "$json" '.punches_sent')
      acked=$(jq_num "$json" '.punches_acknowledged')
      unacked=$(jq_num "$json" '.punches_unacknowledged')
      handshaken=$(jq_num "$json" '.devices_handshaken')
      bad_replies=$(jq_num "$json" '.errors.bad_reply')
      request_errors=$(jq_num "$json" '.errors.total')
      # nginx answers OK to a handshake: a simulator that cannot get past it keeps handshaking,
      # and its latencies are no longer those of the same load.
      if [ "$server" = nginx ] && { [ "$handshaken" = 0 ] || [ "$bad_replies" != 0 ]; }; then
        nginx_failed="the simulator does not get past nginx's handshake reply ($handshaken devices handshaken, $bad_replies bad replies), so its latencies are not those of the same load"
        check_note "$row: $nginx_failed; nginx column skipped"
        continue
      fi
      worst=$(jq_num "$json" '[.endpoints | del(.getrequest_time_sync) | .[] | select(.count > 0) | .p99_ms] | max')
      if [ "$server" = admsd ]; then
        rows=$(count_punches "$data")
        if [ "$acked" != NA ] && [ "$rows" -lt "$acked" ]; then
          check_note "**BUG** $row round $r: $acked punches acknowledged but only $rows rows stored"
          errors=$((errors + 1))
        fi
        if [ "$status" = 1 ] || [ "$request_errors" != 0 ]; then
          check_note "$row round $r: admsd left $unacked of $sent punches unacknowledged; $request_errors request errors ($(jq -c '.errors' "$json")), $handshaken of 20000 devices handshaken"
          errors=$((errors + 1))
        fi
        a_p99+=("$worst") a_rss+=("$rss") a_hwm+=("$hwm")
      else
        n_p99+=("$worst")
      fi
      per_round "| $r | $server | $(jq_num "$json" '.requests_per_s | floor') | $(endpoint_ms "$json" getrequest p50_ms) / $(endpoint_ms "$json" getrequest p99_ms) / $(endpoint_ms "$json" getrequest max_ms) | $(endpoint_ms "$json" handshake p99_ms) | $(endpoint_ms "$json" attlog p99_ms) | $(endpoint_ms "$json" devicecmd p99_ms) | $sent / $acked | $rows | ${rss:-—} | ${hwm:-—} |"
      say "$row round $r $server: worst endpoint p99 $worst ms${rss:+, max VmRSS $rss MB, VmHWM $hwm MB}"
    done
  done
  local a n m h verdict notes=""
  a=$(median_of "${a_p99[@]}")
  n=$(median_of "${n_p99[@]}")
  m=$(median_of "${a_rss[@]}")
  h=$(median_of "${a_hwm[@]}")
  verdict=$(awk -v p="$a" -v m="$h" 'BEGIN { print (p != "NA" && m != "NA" && p < 5 && m < 200) ? "PASS" : "FAIL" }')
  [ "$errors" -gt 0 ] && { verdict="FAIL (errors)"; notes+="$errors failed admsd rounds or checks; "; }
  [ -n "$nginx_failed" ] && notes+="nginx: $nginx_failed; "
  notes+="p99 = the slowest endpoint's, polls that delivered a time sync (held by design until the whole second) apart; memory: median over rounds of max VmRSS $m MB"
  local nginx_cell
  nginx_cell="p99 $(fmt_num "$n" '%.2f') ms"
  [ "$n" = NA ] && nginx_cell="— (see notes)"
  record "$row" "p99 $(fmt_num "$a" '%.2f') ms, VmHWM $h MB" "$nginx_cell" "$(ratio "$a" "$n")" "$target" "$verdict" "$notes"
}

# ---------------------------------------------------------------------------------------------
# The webhook rows. The receiver is nginx's second server (`return 204`: it costs next to nothing,
# so the figures are admsd's), or tests/e2e/webhooks/receiver.py (Python: verifies each signature
# and fsyncs a log line per request before it answers, as a careful receiver does).

# The admin API of the running admsd (data directory $1): METHOD PATH [JSON]; prints the body.
admin_api() {
  local data=$1 method=$2 path=$3 body=${4:-}
  local -a extra=()
  [ -n "$body" ] && extra=(-H 'Content-Type: application/json' --data-binary "$body")
  curl -s --max-time 10 -X "$method" -H "Authorization: Bearer $(cat "$data/admin_token")" \
    "${extra[@]}" "http://127.0.0.1:$admsd_port$path"
}

# Creates the endpoint `bench` posting punch.created events to URL $2, enabled or not ($3).
create_endpoint() {
  local data=$1 url=$2 enabled=$3 reply json
  json="{\"name\":\"bench\",\"url\":\"$url\",\"secret\":\"$webhook_secret\",\"event_types\":[\"punch.created\"],\"enabled\":$enabled}"
  log_command curl -X POST -H "Authorization: Bearer TOKEN" -H "Content-Type: application/json" \
    --data-binary "$json" "http://127.0.0.1:$admsd_port/webhooks"
  reply=$(admin_api "$data" POST /webhooks "$json")
  [ "$(jq -r '.success' <<<"$reply" 2>/dev/null)" = true ] && return 0
  say "creating the webhook endpoint failed: $reply"
  return 1
}

# Deliveries of the endpoint `bench` still pending; NA when the API does not say.
pending_deliveries() {
  admin_api "$1" GET /webhooks/bench | jq -r '.data.delivery.pending // "NA"' 2>/dev/null || echo NA
}

# A count from the database of data directory $1.
count_rows() { sqlite3 -cmd '.timeout 10000' "$1/admsd.sqlite3" "$2"; }

# receiver.py on 127.0.0.1:0, logging to $1; sets receiver_pid and receiver_port.
start_receiver() {
  local log=$1 port_file=$1.port
  rm -f "$port_file"
  log_command python3 "$receiver_py" --secret "$webhook_secret" --log "$log" --port-file "$port_file"
  python3 "$receiver_py" --secret "$webhook_secret" --log "$log" --port-file "$port_file" \
    >"$log.out" 2>&1 &
  receiver_pid=$!
  for _ in $(seq 1 500); do
    [ -s "$port_file" ] && { receiver_port=$(cat "$port_file"); return 0; }
    kill -0 "$receiver_pid" 2>/dev/null || break
    sleep 0.01
  done
  say "receiver.py did not start: $(tail -n 3 "$log.out")"
  stop_receiver
  return 1
}
stop_receiver() {
  [ -n "$receiver_pid" ] || return 0
  kill -TERM "$receiver_pid" 2>/dev/null
  wait "$receiver_pid" 2>/dev/null
  receiver_pid=""
}

# ATTLOG ingest, the attlog row's load (wrk, 128-line batches over 1,000 devices), in alternating
# rounds on an admsd without any webhook endpoint and on one with one endpoint (nginx 204), each
# a new process on an empty database: the one with the endpoint writes an outbox event and a
# delivery row in the commit of every punch, and delivers while it ingests.
attlog_webhook_row() {
  local row=attlog-webhook
  local title="ATTLOG ingest, $attlog_lines-line batches, durable punches/s, with one webhook endpoint beside none"
  say "$row: $title"
  local r variant data log out result errors=0 lost_total=0 bad_total=0
  local -a none_values=() one_values=() none_p99=() one_p99=() delivered_rates=()
  per_round "" "#### $row: $title" "" \
    "| round | endpoints | requests/s | OK replies | bad replies | socket errors | p50 ms | p99 ms | punches/s | rows stored | outbox events | delivered when wrk ended | delivered/s during ingest |" \
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for ((r = 1; r <= rounds; r++)); do
    for variant in none one; do
      data=$work/$row/round$r-$variant/data
      log=$work/$row/round$r-$variant/admsd.log
      mkdir -p "$work/$row/round$r-$variant"
      start_admsd "$data" "$log" --webhook-allow-networks 127.0.0.0/8 ||
        { errors=$((errors + 1)); continue; }
      if { [ "$variant" = one ] && ! create_endpoint "$data" "http://127.0.0.1:$hook_port/hook" true; } ||
        ! prepare_devices "$devices"; then
        errors=$((errors + 1))
        stop_admsd
        continue
      fi
      out=$raw/$row-$variant-round$r.txt
      run_logged timeout --kill-after=10 $((wrk_seconds + 60)) wrk -t"$wrk_threads" \
        -c"$wrk_connections" -d"${wrk_seconds}s" --timeout 10s -s "$here/iclock.lua" \
        "http://127.0.0.1:$admsd_port" -- attlog "$devices" "$wrk_threads" BENCH "$r" \
        "$attlog_lines" "OK:$attlog_lines" >"$out" 2>&1
      local delivered_now=—
      [ "$variant" = one ] && delivered_now=$(count_rows "$data" 'SELECT count(*) FROM webhook_delivery WHERE state = 1')
      result=$(sed -n 's/^WRK_RESULT //p' "$out")
      if [ -z "$result" ]; then
        check_note "$row round $r ($variant): wrk printed no result (see $(basename "$out"))"
        errors=$((errors + 1))
        stop_admsd
        continue
      fi
      local requests duration_us good bad socket_errors p50 p99 rps figure stored acknowledged
      local events=— rate=—
      requests=$(field requests "$result")
      duration_us=$(field duration_us "$result")
      good=$(field good "$result")
      bad=$(field bad "$result")
      socket_errors=$(($(field connect_errors "$result") + $(field read_errors "$result") +
        $(field write_errors "$result") + $(field timeouts "$result")))
      p50=$(calc "$(field p50_us "$result")" 1 'a / 1000' 0 '%.2f')
      p99=$(calc "$(field p99_us "$result")" 1 'a / 1000' 0 '%.2f')
      rps=$(calc "$requests" "$duration_us" 'a * 1e6 / b' 'b == 0' '%.0f')
      [ "$bad" -gt 0 ] && { check_note "$row round $r ($variant): $bad replies were not 200 \"OK:$attlog_lines\""; bad_total=$((bad_total + bad)); }
      [ "$socket_errors" -gt 0 ] && { check_note "$row round $r ($variant): $socket_errors socket errors or timeouts"; errors=$((errors + socket_errors)); }
      stored=$(settled_punches "$data")
      acknowledged=$((good * attlog_lines))
      if [ "$stored" -lt "$acknowledged" ]; then
        check_note "**BUG** $row round $r ($variant): $acknowledged punches acknowledged but only $stored rows stored"
        lost_total=$((lost_total + acknowledged - stored))
      fi
      figure=$(calc "$acknowledged" "$duration_us" 'a * 1e6 / b' 'b == 0' '%.0f')
      if [ "$variant" = one ]; then
        # Every stored punch is announced by exactly one event, in the same commit.
        events=$(count_rows "$data" 'SELECT count(*) FROM outbox_event')
        if [ "$events" != "$stored" ]; then
          check_note "**BUG** $row round $r: $stored punches stored but $events outbox events"
          lost_total=$((lost_total + 1))
        fi
        rate=$(calc "$delivered_now" "$duration_us" 'a * 1e6 / b' 'b == 0' '%.0f')
        one_values+=("$figure") one_p99+=("$p99") delivered_rates+=("$rate")
      else
        none_values+=("$figure") none_p99+=("$p99")
      fi
      stop_admsd
      per_round "| $r | $variant | $rps | $good | $bad | $socket_errors | $p50 | $p99 | $figure | $stored | $events | $delivered_now | $rate |"
      local detail=""
      [ "$variant" = one ] && detail=", $events outbox events, $delivered_now delivered during ingest ($rate/s)"
      say "$row round $r ($variant endpoint): $figure punches/s (p99 $p99 ms)$detail"
      # Each round's database is a few hundred MB: only --keep keeps them.
      [ "$keep" = 1 ] || rm -rf "$data"
    done
  done
  local a n q verdict=measured notes
  a=$(median_of "${one_values[@]}")
  n=$(median_of "${none_values[@]}")
  q=$(ratio "$a" "$n")
  notes="ratio: with the endpoint / without (same run, alternating rounds, a new admsd on an empty database each round); p99 $(median_of "${one_p99[@]}") ms with, $(median_of "${none_p99[@]}") ms without; delivered during ingest: median $(fmt_int "$(median_of "${delivered_rates[@]}")") events/s"
  [ "$errors" -gt 0 ] && { verdict="FAIL (errors)"; notes+="; $errors errors (see checks)"; }
  [ "$bad_total" -gt 0 ] && verdict="FAIL (bad replies)"
  [ "$lost_total" -gt 0 ] && verdict="FAIL (BUG)"
  record "$row" "$(fmt_int "$a") (one endpoint)" "— (admsd without endpoint: $(fmt_int "$n"))" "$q" "—" "$verdict" "$notes"
}

# The bodies of the delivery row: $1 files of $2 lines each, punches distinct across all of them
# (the PIN is the punch's number).
make_delivery_bodies() {
  local dir=$1 files=$2 lines=$3
  mkdir -p "$dir"
  awk -v files="$files" -v lines="$lines" -v dir="$dir" 'BEGIN {
    for (f = 0; f < files; f++) {
      file = sprintf("%s/%06d.txt", dir, f)
      for (j = 0; j < lines; j++)
        printf "%d\t2026-02-02 %02d:%02d:%02d\t0\t1\t0\t0\t0\n", f * lines + j + 1, 8 + int(j / 3600), int(j / 60) % 60, j % 60 > file
      close(file)
    } }'
}

# Delivery throughput: a backlog of events waits behind a disabled endpoint, then
# `POST /webhooks/bench/enable` releases it; the figure is events / seconds until GET
# /webhooks/bench shows none pending (polled every 0.1 s). Three variants, alternating in each
# round: $delivery_events events over $delivery_devices devices (lanes) to nginx 204, the same to
# receiver.py, and $delivery_lane_events events of one device (one lane: one request at a time,
# in order) to nginx 204.
webhook_delivery_row() {
  local row=webhook-delivery
  local title="webhook delivery of a backlog to one local receiver, events/s"
  say "$row: $title"
  local per_lane=$((delivery_events / delivery_devices)) lane_batch=125
  make_delivery_bodies "$work/$row/spread" "$delivery_devices" "$per_lane"
  make_delivery_bodies "$work/$row/lane" $((delivery_lane_events / lane_batch)) "$lane_batch"
  local r variant errors=0
  local -a v_nginx=() v_python=() v_lane=()
  per_round "" "#### $row: $title" "" \
    "| round | receiver | lanes | events | seconds to drain | events/s | receiver requests (re-sent) |" \
    "|---|---|---|---|---|---|---|"
  for ((r = 1; r <= rounds; r++)); do
    for variant in nginx python lane; do
      local data=$work/$row/round$r-$variant/data log=$work/$row/round$r-$variant/admsd.log
      local url events lanes receiver_log="" i config=$work/$row/upload.conf
      mkdir -p "$work/$row/round$r-$variant"
      if [ "$variant" = python ]; then
        receiver_log=$work/$row/round$r-$variant/receiver.jsonl
        start_receiver "$receiver_log" || { errors=$((errors + 1)); continue; }
        url=http://127.0.0.1:$receiver_port/hook
      else
        url=http://127.0.0.1:$hook_port/hook
      fi
      start_admsd "$data" "$log" --webhook-allow-networks 127.0.0.0/8 &&
        create_endpoint "$data" "$url" false ||
        { errors=$((errors + 1)); stop_admsd; stop_receiver; continue; }
      : >"$config"
      if [ "$variant" = lane ]; then
        events=$delivery_lane_events lanes=1
        for ((i = 0; i < delivery_lane_events / lane_batch; i++)); do
          printf 'url = "http://127.0.0.1:%s/iclock/cdata?SN=WHLANE&table=ATTLOG"\ndata-binary = "@%s/lane/%06d.txt"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nsilent\nnext\n' \
            "$admsd_port" "$work/$row" "$i" >>"$config"
        done
      else
        events=$delivery_events lanes=$delivery_devices
        for ((i = 0; i < delivery_devices; i++)); do
          printf 'url = "http://127.0.0.1:%s/iclock/cdata?SN=WHDEV%06d&table=ATTLOG"\ndata-binary = "@%s/spread/%06d.txt"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nsilent\nnext\n' \
            "$admsd_port" "$i" "$work/$row" "$i" >>"$config"
        done
      fi
      log_command curl --parallel --parallel-max 200 --config "$config"
      curl_batch "$config" >/dev/null
      local pending
      pending=$(pending_deliveries "$data")
      if [ "$pending" != "$events" ]; then
        check_note "$row round $r ($variant): $pending deliveries pending after the upload, not $events"
        errors=$((errors + 1))
        stop_admsd
        stop_receiver
        continue
      fi
      local started_at=$EPOCHREALTIME finished_at="" seconds rate requests=—
      log_command curl -X POST -H "Authorization: Bearer TOKEN" "http://127.0.0.1:$admsd_port/webhooks/bench/enable"
      admin_api "$data" POST /webhooks/bench/enable >/dev/null
      for _ in $(seq 1 6000); do # 600 s at most
        pending=$(pending_deliveries "$data")
        [ "$pending" = 0 ] && { finished_at=$EPOCHREALTIME; break; }
        sleep 0.1
      done
      if [ -z "$finished_at" ]; then
        check_note "$row round $r ($variant): $pending of $events still pending after 600 s"
        errors=$((errors + 1))
        seconds=NA rate=NA
      else
        seconds=$(calc "$finished_at" "$started_at" 'a - b' 0 '%.2f')
        rate=$(calc "$events" "$seconds" 'a / b' 'b == 0' '%.0f')
      fi
      stop_admsd
      if [ -n "$receiver_log" ]; then
        stop_receiver
        local total distinct unverified
        total=$(wc -l <"$receiver_log")
        distinct=$(jq -r '.id' "$receiver_log" | sort -u | wc -l)
        unverified=$(jq -r 'select(.verified != true) | .id' "$receiver_log" | wc -l)
        requests="$total ($((total - distinct)))"
        if [ "$distinct" != "$events" ] || [ "$unverified" != 0 ]; then
          check_note "**BUG** $row round $r: receiver.py got $distinct distinct events of $events, $unverified unverified"
          errors=$((errors + 1))
        fi
      fi
      case $variant in
        nginx) v_nginx+=("$rate") ;;
        python) v_python+=("$rate") ;;
        lane) v_lane+=("$rate") ;;
      esac
      per_round "| $r | $([ "$variant" = python ] && echo receiver.py || echo 'nginx 204') | $lanes | $events | $seconds | $rate | $requests |"
      say "$row round $r ($variant): $events events over $lanes lanes delivered in $seconds s: $rate events/s"
      [ "$keep" = 1 ] || rm -rf "$data"
    done
  done
  local n p l verdict=measured notes
  n=$(median_of "${v_nginx[@]}")
  p=$(median_of "${v_python[@]}")
  l=$(median_of "${v_lane[@]}")
  notes="$(fmt_int "$delivery_events") events over $delivery_devices devices released by POST /webhooks/bench/enable, until none pending; receiver.py (verifies, fsyncs each request): $(fmt_int "$p")/s; one device (one lane, $(fmt_int "$delivery_lane_events") events) to nginx: $(fmt_int "$l")/s"
  [ "$errors" -gt 0 ] && { verdict="FAIL (errors)"; notes+="; $errors errors (see checks)"; }
  record "$row" "$(fmt_int "$n") events/s (nginx 204, $delivery_devices lanes)" "n/a" "—" "—" "$verdict" "$notes"
}

timesync_row() {
  local row=timesync target="p99 \\|error\\| < 50 ms"
  local title="time-sync error after SET OPTIONS DateTime, simulator on loopback"
  if [ -n "$sim_note" ]; then skip_row "$row" "$target" "$sim_note"; return; fi
  say "$row: $title"
  local r json status errors=0
  local -a p50s=() p99s=() maxes=()
  per_round "" "#### $row: $title" "" \
    "| round | syncs | p50 \\|error\\| ms | p99 \\|error\\| ms | max \\|error\\| ms | mean error ms |" \
    "|---|---|---|---|---|---|"
  for ((r = 1; r <= rounds; r++)); do
    json=$raw/$row-admsd-round$r.json
    mkdir -p "$work/$row/round$r"
    start_admsd "$work/$row/round$r/data" "$work/$row/round$r/admsd.log" ||
      { errors=$((errors + 1)); continue; }
    run_logged timeout --kill-after=10 $((timesync_seconds + 120)) "$sim" \
      --target "127.0.0.1:$admsd_port" --devices 200 --delay 1 --duration "$timesync_seconds" \
      --clock-offset 30 --drift-ppm 50 --zone Europe/Berlin --json "$json" --quiet \
      >"$raw/$row-admsd-round$r.txt" 2>&1
    status=$?
    stop_admsd
    if [ ! -s "$json" ] || { [ "$status" != 0 ] && [ "$status" != 1 ]; }; then
      check_note "$row round $r: the simulator failed (exit $status): $(tail -n 2 "$raw/$row-admsd-round$r.txt" | tr '\n' ' ')"
      errors=$((errors + 1))
      continue
    fi
    local count p50 p99 max mean
    count=$(jq_num "$json" '.time_sync.count')
    p50=$(jq_num "$json" '.time_sync.p50_abs_ms')
    p99=$(jq_num "$json" '.time_sync.p99_abs_ms')
    max=$(jq_num "$json" '.time_sync.max_abs_ms')
    mean=$(jq_num "$json" '.time_sync.mean_ms')
    [ "$count" = 0 ] && check_note "$row round $r: no time sync was measured"
    p50s+=("$p50") p99s+=("$p99") maxes+=("$max")
    per_round "| $r | $count | $p50 | $p99 | $max | $mean |"
    say "$row round $r: p50 $p50 ms, p99 $p99 ms, max $max ms over $count syncs"
  done
  local p50 p99 max verdict
  p50=$(median_of "${p50s[@]}")
  p99=$(median_of "${p99s[@]}")
  max=$(median_of "${maxes[@]}")
  verdict=$(awk -v p="$p99" 'BEGIN { print (p != "NA" && p < 50) ? "PASS" : "FAIL" }')
  [ "$errors" -gt 0 ] && verdict="FAIL (errors)"
  record "$row" "p50 $(fmt_num "$p50" '%.1f') / p99 $(fmt_num "$p99" '%.1f') / max $(fmt_num "$max" '%.1f') ms" "n/a (nginx sets no clock)" "—" "$target" \
    "$verdict" "for comparison, a DateTime truncated to the second errs by ~500 ms on average and up to 1 s"
}

# The database of the start-up row: admsd's own schema (it creates it), then $startup_punches
# punches over $startup_devices devices, distinct (SN, PIN, local time, status, verify), made by
# the sqlite3 shell. Made once and kept in build-bench/bench-data/ (a `complete` file marks it).
make_big_database() {
  local dir=$build/bench-data/punches-$startup_punches
  BIG_DATA=$dir/data
  if [ -f "$dir/complete" ]; then
    say "startup: reusing the database with $startup_punches punches in $dir"
    return 0
  fi
  say "startup: making a database with $startup_punches punches in $dir (once; about a minute)"
  rm -rf "$dir"
  mkdir -p "$dir"
  start_admsd "$BIG_DATA" "$dir/admsd-create.log" || return 1
  stop_admsd
  local db=$BIG_DATA/admsd.sqlite3 per_device=$((startup_punches / startup_devices))
  sqlite3 "$db" .schema >"$raw/startup-schema.sql"
  # Indexes are dropped for the load and made again from their own SQL: sorting once is much
  # faster than 10 million index insertions. Per device: 50 PINs × 100 days × in (08:xx) and out
  # (17:xx), from 2025-10-27 (CET all along, so UTC is local − 1 h).
  {
    echo "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;"
    echo "BEGIN;"
    sqlite3 "$db" "SELECT 'DROP INDEX ' || name || ';' FROM sqlite_master
                   WHERE type = 'index' AND tbl_name = 'punch' AND sql IS NOT NULL"
    cat <<EOF
INSERT INTO device (serial_number, first_seen_ms, last_seen_ms, remote_address, push_version,
                    approved)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $startup_devices)
SELECT printf('BENCH%06d', i), 1761548400000, 1770134400000, '127.0.0.1', '2.4.1', 1 FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $startup_punches - 1),
p(dev, pin, status, local_s) AS (
  SELECT i / $per_device, (i % $per_device) / 200 + 1, i % 2,
         1761523200 + ((i % 200) / 2) * 86400 + (CASE i % 2 WHEN 0 THEN 8 ELSE 17 END) * 3600
           + ((i / $per_device) * 7 + ((i % $per_device) / 200) * 13) % 600
  FROM n)
INSERT INTO punch (serial_number, pin, local_time, utc_s, status, verify, work_code, sequence,
                   raw_line, received_at_ms, quarantined)
SELECT printf('BENCH%06d', dev + 1), CAST(pin AS TEXT), datetime(local_s, 'unixepoch'),
       local_s - 3600, status, 1, '0', NULL,
       printf('%d%s%s%s%d%s1%s0%s0%s0', pin, char(9), datetime(local_s, 'unixepoch'), char(9),
              status, char(9), char(9), char(9), char(9)),
       (local_s - 3600 + 2) * 1000, 0
FROM p;
EOF
    sqlite3 "$db" "SELECT sql || ';' FROM sqlite_master
                   WHERE type = 'index' AND tbl_name = 'punch' AND sql IS NOT NULL"
    echo "COMMIT; PRAGMA journal_mode = WAL;"
  } >"$dir/fill.sql"
  cp "$dir/fill.sql" "$raw/startup-fill.sql"
  if ! nice sqlite3 "$db" <"$dir/fill.sql" >"$dir/fill.log" 2>&1; then
    say "startup: filling the database failed: $(tail -n 3 "$dir/fill.log")"
    return 1
  fi
  local rows
  rows=$(count_punches "$BIG_DATA")
  if [ "$rows" != "$startup_punches" ]; then
    say "startup: the database has $rows punches, not $startup_punches"
    return 1
  fi
  echo "$rows punches, made $(date -u +%FT%TZ)" >"$dir/complete"
}

startup_row() {
  local row=startup target="< 100 ms empty, < 1 s with 10 M punches"
  local title="start-up to first answered request"
  say "$row: $title"
  if ! make_big_database; then
    record "$row" NA NA NA "$target" ERROR "could not make the database of $startup_punches punches"
    return
  fi
  # One untimed start first: a database kept from an older admsd is migrated now, not during a
  # timed start, and every timed start finds the file in the page cache alike.
  start_admsd "$BIG_DATA" "$work/$row-warm-up.log" && stop_admsd
  local r out errors=0
  local -a admsd_cmd=("$admsd" --listen "127.0.0.1:{port}" --data-dir "{dir}" --time-zone Europe/Berlin
    --device-rate-limit 0 --threads "$server_threads" --log-format json)
  per_round "" "#### $row: $title (milliseconds from exec to the end of the first 200 reply to \`GET /iclock/ping\`)" "" \
    "| round | admsd, empty database | nginx | admsd, $(fmt_int "$startup_punches") punches |" "|---|---|---|---|"
  : >"$raw/$row-empty.times" ; : >"$raw/$row-nginx.times" ; : >"$raw/$row-big.times"
  mkdir -p "$work/nginx-startup" "$work/$row"
  local nginx_port_fixed
  nginx_port_fixed=$(pick_port)
  write_nginx_conf "$work/nginx-startup" "$nginx_port_fixed"
  for ((r = 1; r <= rounds; r++)); do
    local cells=()
    for which in empty nginx big; do
      out=$raw/$row-$which-round$r.txt
      case $which in
        empty) run_logged "$startup_time" --runs "$startup_runs" --fresh-dir "$work/$row/empty" \
          --log "$work/$row/admsd-empty.log" -- "${admsd_cmd[@]}" >"$out" 2>&1 ;;
        nginx) run_logged "$startup_time" --runs "$startup_runs" --port "$nginx_port_fixed" \
          --log "$work/$row/nginx.log" -- "$nginx_bin" -p "$work/nginx-startup" \
          -c "$work/nginx-startup/nginx.conf" -e "$work/nginx-startup/error.log" >"$out" 2>&1 ;;
        big) run_logged "$startup_time" --runs "$startup_runs" --log "$work/$row/admsd-big.log" \
          -- "${admsd_cmd[@]/\{dir\}/$BIG_DATA}" >"$out" 2>&1 ;;
      esac
      if [ $? != 0 ]; then
        check_note "$row round $r $which: startup_time failed: $(tail -n 2 "$out" | tr '\n' ' ')"
        errors=$((errors + 1))
        cells+=("failed")
        continue
      fi
      sed -n 's/^startup_time: run [0-9]*: \([0-9.]*\) ms$/\1/p' "$out" >>"$raw/$row-$which.times"
      cells+=("$(sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' "$out")")
    done
    per_round "| $r | ${cells[0]} | ${cells[1]} | ${cells[2]} |"
    say "$row round $r: admsd empty ${cells[0]} ms, nginx ${cells[1]} ms, admsd with $(fmt_int "$startup_punches") punches ${cells[2]} ms (medians of $startup_runs)"
  done
  local e n b verdict
  e=$(median <"$raw/$row-empty.times")
  n=$(median <"$raw/$row-nginx.times")
  b=$(median <"$raw/$row-big.times")
  verdict=$(awk -v e="$e" -v b="$b" 'BEGIN { print (e != "NA" && b != "NA" && e < 100 && b < 1000) ? "PASS" : "FAIL" }')
  [ "$errors" -gt 0 ] && verdict="FAIL (errors)"
  record "$row" "empty $(fmt_num "$e" '%.1f') ms, 10 M punches $(fmt_num "$b" '%.1f') ms" \
    "$(fmt_num "$n" '%.1f') ms" "$(ratio "$e" "$n") / $(ratio "$b" "$n")" "$target" "$verdict" \
    "median of $((rounds * startup_runs)) starts each; ratio: empty / 10 M against nginx"
}

# ---------------------------------------------------------------------------------------------
# The run.
started=$EPOCHREALTIME
: >"$raw/commands.txt"
: >"$raw/rounds.md"
: >"$raw/checks.md"
say "results in $report (raw outputs in $raw/); databases in $work ($work_fs)"
needs_nginx=0
for row in poll-keepalive poll-close attlog realtime fleet attlog-webhook webhook-delivery; do
  wants "$row" && needs_nginx=1
done
if [ "$needs_nginx" = 1 ]; then
  start_nginx || exit 1
  say "nginx on 127.0.0.1:$nginx_port"
fi

wants poll-keepalive && wrk_row poll-keepalive "idle getrequest polls/s, keep-alive" \
  poll 0 "$wrk_connections" 0 ratio 0.8
wants poll-close && wrk_row poll-close "idle getrequest polls/s, Connection: close (what devices do)" \
  poll 0 "$wrk_connections" 1 ratio 0.8
wants attlog && wrk_row attlog "ATTLOG ingest, $attlog_lines-line batches, durable punches/s" \
  attlog "$attlog_lines" "$wrk_connections" 0 absolute 250000
wants realtime && wrk_row realtime "realtime single-punch uploads from $(fmt_int "$realtime_connections") devices, acknowledged/s" \
  attlog 1 "$realtime_connections" 0 absolute 30000
wants fleet && fleet_row
wants attlog-webhook && attlog_webhook_row
wants webhook-delivery && webhook_delivery_row
stop_nginx
wants timesync && timesync_row
wants startup && startup_row
elapsed=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# ---------------------------------------------------------------------------------------------
# The report.
titles() {
  case $1 in
    poll-keepalive) echo 'idle `getrequest` polls/s, keep-alive' ;;
    poll-close) echo 'idle `getrequest` polls/s, `Connection: close` (what devices do)' ;;
    attlog) echo "ATTLOG ingest, $attlog_lines-line batches, durable (acknowledged only after commit), punches/s" ;;
    realtime) echo "realtime single-punch uploads from $(fmt_int "$realtime_connections") concurrent devices, durable, acknowledged/s" ;;
    fleet) echo "20,000 simulated devices polling every 10 s plus realtime punches" ;;
    timesync) echo 'time-sync error after `SET OPTIONS DateTime`, simulator on loopback' ;;
    startup) echo "start-up to first answered request" ;;
    attlog-webhook) echo "ATTLOG ingest, $attlog_lines-line batches, durable punches/s, with one webhook endpoint (nginx 204 on loopback) against none" ;;
    webhook-delivery) echo "webhook delivery of a backlog to one local receiver, events/s" ;;
  esac
}
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD 2>/dev/null || commit+=" (with uncommitted changes)"
. /etc/os-release 2>/dev/null
{
  echo "# admsd benchmarks: $stamp on $host"
  echo
  if [ "$quick" = 1 ]; then
    echo "**Quick run** (\`--quick\`): short durations, $rounds round(s). A smoke run: do not quote these figures."
    echo
  fi
  echo "| figure | admsd (median) | nginx (median) | ratio admsd/nginx | target | result | notes |"
  echo "|---|---|---|---|---|---|---|"
  for row in "${rows_done[@]}"; do
    echo "| $(titles "$row") | ${fig_admsd[$row]} | ${fig_nginx[$row]} | ${fig_ratio[$row]} | ${fig_target[$row]} | ${fig_verdict[$row]} | ${fig_notes[$row]} |"
  done
  echo
  echo "## Machine"
  echo
  echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores online"
  echo "- memory: $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "- system: ${PRETTY_NAME:-unknown}, Linux $(uname -r)"
  echo "- databases on: $(findmnt -no SOURCE,FSTYPE -T "$work" 2>/dev/null | tr -s ' ' || echo "$work_fs") ($work)"
  echo "- admsd: commit $commit, Release build ($(g++ --version | head -n 1)), --threads $server_threads"
  echo "- nginx: $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //'), worker_processes $server_threads; wrk: $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f2); sqlite3 $(sqlite3 --version | cut -d' ' -f1)"
  echo "- run: $([ "$quick" = 1 ] && echo quick || echo full), $rounds rounds ($fleet_rounds for the 20,000-device row), wrk ${wrk_seconds} s per round, $elapsed s in all"
  echo
  echo "## Method"
  echo
  echo "- Every figure is the median over rounds; a round runs admsd then nginx with the same load"
  echo "  (alternating, so drift of the machine hits both). Server, wrk and simulator share the"
  echo "  machine's cores over loopback."
  echo "- wrk rows: \`-t$wrk_threads -c$wrk_connections\` (realtime \`-c$realtime_connections\`), ${wrk_seconds} s,"
  echo "  \`tests/bench/iclock.lua\` rotating $devices serial numbers; a reply other than 200 with the"
  echo "  expected body (\`OK\`, \`OK:$attlog_lines\`, \`OK:1\`) is counted as bad. Before the poll rows every"
  echo "  device handshakes, polls, and confirms its first-contact time sync, so the measured polls"
  echo "  are idle. One admsd (fresh database) per row, across its rounds."
  echo "- Durable figures are punches acknowledged (\`OK:<n>\`, sent only after the commit) per second"
  echo "  of wrk's run, checked against the rows sqlite3 counts in \`punch\` after each round: every"
  echo "  acknowledged punch must be there; requests in flight when wrk stops may add rows wrk never"
  echo "  saw acknowledged, at most one batch per connection (the last column of the rounds)."
  echo "- nginx: nginx-light, \`return 200 \"OK\"\`, \`default_type text/plain\`, \`access_log off\`,"
  echo "  \`keepalive_requests\` raised; admsd logs every request (JSON) to a file."
  echo "- 20,000 devices and time sync: \`admsd-sim\`; each admsd round is a new process on an empty"
  echo "  database; memory is VmRSS sampled every 0.5 s and VmHWM at the end."
  echo "- Start-up: \`startup_time\` (exec to the end of the first 200 reply to \`GET /iclock/ping\`),"
  echo "  $startup_runs starts per round of each; the 10 M database is made once by"
  echo "  \`make_big_database\` in run.sh (\`startup-fill.sql\` in the raw folder)."
  echo "- Webhooks: the receiver is nginx's second server (\`return 204;\`) or"
  echo "  \`tests/e2e/webhooks/receiver.py\` (verifies every signature, fsyncs a line per request)."
  echo "  \`attlog-webhook\`: the attlog row's wrk load in alternating rounds on an admsd without"
  echo "  endpoints and on one with one endpoint (created through \`POST /webhooks\`), each a new"
  echo "  process on an empty database; after each round sqlite3 checks that the outbox holds one"
  echo "  event per stored punch and counts the deliveries made while wrk ran."
  echo "  \`webhook-delivery\`: a backlog uploaded behind a disabled endpoint, released by"
  echo "  \`POST /webhooks/bench/enable\`; events / seconds until \`GET /webhooks/bench\` shows none"
  echo "  pending (polled every 0.1 s): $delivery_events events over $delivery_devices devices to nginx and to"
  echo "  receiver.py, and $delivery_lane_events events of one device (one lane) to nginx."
  echo
  echo "## Checks"
  echo
  if [ -s "$raw/checks.md" ]; then cat "$raw/checks.md"; else echo "None: every reply was as expected and every acknowledged punch is stored."; fi
  echo
  echo "## Rounds"
  cat "$raw/rounds.md"
  echo
  echo "## Commands"
  echo
  echo "Raw outputs: \`tests/bench/results/$stamp-$host/\`."
  echo
  echo '```'
  sed "s|$root/||g" "$raw/commands.txt"
  echo '```'
} >"$report"
say "done in $elapsed s: $report"
echo
sed -n '1,/^## Machine/p' "$report" | sed '$d'

#!/usr/bin/env bash
# The dependency rule between folders (docs/development.md, shared/house-style.md), checked on
# every run. Fails, naming each offending line, when:
#  - protocol/ includes anything of ours; tz/ includes anything of ours but protocol/;
#  - the pure code (protocol/, tz/, and the pure parts of server/timekeeping/: the time-sync
#    policy, the clock estimate and the drift arithmetic) includes an I/O or threading header,
#    reads the clock, or reads the environment;
#  - date/tz appears outside tz/*.cpp;
#  - server/storage/ includes server/http/, server/admin/ or server/devices/;
#  - server/records/ includes server/http/, admin/, devices/, events/, webhooks/ or exports/;
#  - anything but the composition root (server/app.*, server/main.cpp, server/routes.*) and
#    server/admin/ itself includes server/admin/ (tests may);
#  - server/webhooks/ includes server/ folders other than storage/, config/, security/,
#    observability/, http/, events/ and its own (server/net.hpp and server/version.hpp are fine), or
#    anything but the composition root, server/admin/ and server/webhooks/ includes it;
#  - server/events/ includes http/, admin/, devices/, webhooks/, exports/ or timekeeping/;
#  - the webhooks' pure parts (URL and address rules, Retry-After) do I/O or read the clock.
#  - anything but the composition root, server/admin/ and server/exports/ itself includes
#    server/exports/ (the payroll exports sit on top, like the admin API);
#  - the export schedule (server/exports/export_schedule.*) is pure like the timekeeping parts.
set -u
root=${1:-.}
cd "$root" || exit 2
status=0
fail() {
  echo "$1" >&2
  status=1
}

pure_timekeeping="server/timekeeping/time_sync_policy.hpp server/timekeeping/time_sync_policy.cpp
  server/timekeeping/clock_estimate.hpp server/timekeeping/clock_estimate.cpp
  server/timekeeping/drift_watch.hpp server/timekeeping/drift_watch.cpp
  server/exports/export_schedule.hpp server/exports/export_schedule.cpp"
# The webhooks' rules on outside input: which addresses may be dialled, which URLs are accepted,
# how long a Retry-After asks to wait ("now" is a parameter).
pure_webhooks="server/webhooks/address_policy.hpp server/webhooks/address_policy.cpp
  server/webhooks/webhook_url.hpp server/webhooks/webhook_url.cpp
  server/webhooks/retry_after.hpp server/webhooks/retry_after.cpp"

# Our own includes: "protocol/…", "tz/…", "server/…".
if grep -nE '#include *"(tz|server)/' -r protocol; then
  fail "protocol/ must not include tz/ or server/: it depends on nothing of ours"
fi
if grep -nE '#include *"server/' -r tz; then
  fail "tz/ must not include server/: it depends on protocol/ only"
fi

# I/O, threads, files and the environment. <chrono> is fine; clocks are read through ::now().
io_headers='#include *[<"](boost/(asio|beast)|sqlite3|libpq|ldap|mosquitto|openssl/|sys/|netinet/|arpa/|unistd|fcntl|poll|filesystem|fstream|iostream|cstdio|stdio|thread|mutex|shared_mutex|condition_variable|future|atomic|random|ctime|time\.h|toml)'
# shellcheck disable=SC2086
if grep -nE "$io_headers" -r protocol tz $pure_timekeeping $pure_webhooks; then
  fail "protocol/, tz/ and the pure timekeeping and webhook parts must not include I/O, threading or file headers"
fi
# Any call of a function named now(), however the clock is named (an alias, a using-declaration),
# and the C library's clocks; comments are left out.
code_without_comments() {
  # shellcheck disable=SC2086
  find "$@" -name '*.[ch]pp' -print0 | xargs -0 awk '{ line = $0; sub(/\/\/.*/, "", line); print FILENAME ":" FNR ": " line }'
}
# shellcheck disable=SC2086
if code_without_comments protocol tz $pure_timekeeping $pure_webhooks |
  grep -E '(\bnow|\btime|\bgettimeofday|\bclock_gettime|\bcurrent_zone|\bgetenv|\blocaltime|\bgmtime)\s*\('; then
  fail "protocol/, tz/ and the pure timekeeping and webhook parts must not read the clock or the environment: 'now' is a parameter"
fi
if grep -rnE '#include *[<"]date/' protocol tz/*.hpp server; then
  fail "date/tz belongs in tz/*.cpp only"
fi

if grep -rnE '#include *"server/(http|admin|devices)/' server/storage; then
  fail "server/storage/ must not include server/http/, server/admin/ or server/devices/"
fi
if grep -rnE '#include *"server/(http|admin|devices|events|webhooks|exports)/' server/records; then
  fail "server/records/ (how stored rows are shown) must not include http/, admin/, devices/, events/, webhooks/ or exports/"
fi
admin_users=$(grep -rlE '#include *"server/admin/' server | grep -vE '^server/(app\.(hpp|cpp)|main\.cpp|routes\.(hpp|cpp)|admin/)')
if [ -n "$admin_users" ]; then
  echo "$admin_users" >&2
  fail "only the composition root (server/app.*, server/main.cpp, server/routes.*) includes server/admin/"
fi

# Outgoing webhooks sit beside admin/: they use storage, settings, the network rules, the log and
# metrics and the HTTP helpers, and only the composition root (and admin/, for its API) uses them.
if grep -rnE '#include *"server/' server/webhooks |
  grep -vE '#include *"server/(storage|config|security|observability|http|events|webhooks)/|#include *"server/(net|version)\.hpp"'; then
  fail "server/webhooks/ may include only server/storage/, config/, security/, observability/, http/, events/, net.hpp and version.hpp"
fi
# The event stream sits under every publisher and listener: it knows storage (the outbox) and how
# rows are shown, nothing that publishes or listens.
if grep -rnE '#include *"server/(http|admin|devices|webhooks|exports|timekeeping)/' server/events; then
  fail "server/events/ must not include http/, admin/, devices/, webhooks/, exports/ or timekeeping/"
fi
webhook_users=$(grep -rlE '#include *"server/webhooks/' server | grep -vE '^server/(app\.(hpp|cpp)|main\.cpp|routes\.(hpp|cpp)|admin/|webhooks/)')
if [ -n "$webhook_users" ]; then
  echo "$webhook_users" >&2
  fail "only the composition root (server/app.*, server/main.cpp, server/routes.*) and server/admin/ include server/webhooks/"
fi

exports_users=$(grep -rlE '#include *"server/exports/' server | grep -vE '^server/(app\.(hpp|cpp)|main\.cpp|routes\.(hpp|cpp)|admin/|exports/)')
if [ -n "$exports_users" ]; then
  echo "$exports_users" >&2
  fail "only the composition root (server/app.*, server/main.cpp, server/routes.*) and server/admin/ include server/exports/"
fi

[ $status -eq 0 ] && echo "the dependency rule holds: protocol/ and tz/ are pure, storage/, admin/, webhooks/ and exports/ keep their place"
exit $status

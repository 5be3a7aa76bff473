#!/usr/bin/env bash
# Fails when protocol/ or tz/ include an I/O library or read the clock (shared/house-style.md).
set -u
root=${1:-.}
cd "$root" || exit 2
status=0
if grep -rEn '#include *[<"](boost/(asio|beast)|sqlite3|sys/socket|fstream|thread|mutex)' protocol tz; then
  echo "protocol/ and tz/ must not include I/O or threading headers" >&2
  status=1
fi
if grep -rEn 'system_clock::now|steady_clock::now|high_resolution_clock::now|std::time\(|gettimeofday|clock_gettime|current_zone' protocol tz; then
  echo "protocol/ and tz/ must not read the clock: 'now' is a parameter" >&2
  status=1
fi
if grep -rEn '#include *[<"]date/' protocol tz/*.hpp; then
  echo "date/tz belongs in tz/*.cpp only" >&2
  status=1
fi
[ $status -eq 0 ] && echo "protocol/ and tz/ are pure"
exit $status

#include "server/webhooks/retry_after.hpp"

#include <catch2/catch.hpp>

using namespace adms::server::webhooks;
using namespace std::chrono;

namespace {

// Saturday 2026-11-21 05:00:00 UTC.
const sys_seconds now = sys_days{year{2026} / 11 / 21} + hours{5};

} // namespace

TEST_CASE("Retry-After: delta-seconds, clamped to a day", "[webhooks][retry_after]")
{
    CHECK(parse_retry_after("120", now) == seconds{120});
    CHECK(parse_retry_after("0", now) == seconds{0});
    CHECK(parse_retry_after("007", now) == seconds{7});
    CHECK(parse_retry_after(" 30 ", now) == seconds{30});
    CHECK(parse_retry_after("86400", now) == seconds{86400});
    CHECK(parse_retry_after("86401", now) == max_retry_after);
    CHECK(parse_retry_after("999999999", now) == max_retry_after);
    CHECK(parse_retry_after("99999999999999999999999999", now) == max_retry_after);
}

TEST_CASE("Retry-After: IMF-fixdate, the form senders must use", "[webhooks][retry_after]")
{
    CHECK(parse_retry_after("Sat, 21 Nov 2026 05:01:30 GMT", now) == seconds{90});
    CHECK(parse_retry_after("Sat, 21 Nov 2026 05:00:00 GMT", now) == seconds{0});
    // In the past: retry now, not never.
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == seconds{0});
    CHECK(parse_retry_after("Tue, 01 Jan 2030 00:00:00 GMT", now) == max_retry_after);
    CHECK(parse_retry_after("Sun, 22 Nov 2026 04:59:59 GMT", now) == seconds{86399});
    // The weekday is not cross-checked (RFC 9110 does not ask it), only spelled right.
    CHECK(parse_retry_after("Mon, 21 Nov 2026 05:01:30 GMT", now) == seconds{90});
    CHECK(parse_retry_after("Sat, 21 Nov 2026 05:00:60 GMT", now) == seconds{60}); // leap second
}

TEST_CASE("Retry-After: the obsolete RFC 850 and asctime forms recipients must accept",
          "[webhooks][retry_after]")
{
    CHECK(parse_retry_after("Saturday, 21-Nov-26 05:01:30 GMT", now) == seconds{90});
    CHECK(parse_retry_after("Sat Nov 21 05:01:30 2026", now) == seconds{90});
    auto early_november = sys_days{year{2026} / 11 / 1} + hours{5};
    CHECK(parse_retry_after("Sun Nov  1 05:00:45 2026", early_november) == seconds{45});
    // A two-digit year more than 50 years ahead is the most recent past year with those digits.
    CHECK(parse_retry_after("Monday, 01-Jan-76 00:00:00 GMT", now) == max_retry_after); // 2076
    CHECK(parse_retry_after("Saturday, 01-Jan-77 00:00:00 GMT", now) == seconds{0});    // 1977
}

TEST_CASE("Retry-After: anything else is not a Retry-After value", "[webhooks][retry_after]")
{
    for (auto text : {"",
                      " ",
                      "-5",
                      "+5",
                      "1.5",
                      "1e3",
                      "soon",
                      "120s",
                      "0x10",
                      "Sat, 21 Nov 2026 25:00:00 GMT",
                      "Sat, 31 Nov 2026 05:00:00 GMT",
                      "Sat, 29 Feb 2026 05:00:00 GMT",
                      "sat, 21 Nov 2026 05:01:30 GMT",
                      "Sat, 21 nov 2026 05:01:30 GMT",
                      "Sat, 21 Nov 2026 05:01:30 UTC",
                      "Sat, 21 Nov 2026 05:01:30",
                      "Sat, 21 Nov 2026 05:01:30 GMT x",
                      "Sat, 1 Nov 2026 05:01:30 GMT",
                      "Sat, 21 Nov 26 05:01:30 GMT",
                      "Sat, 21 Nov 2026 5:01:30 GMT",
                      "Sat, 21 Nov 2026 05:61:30 GMT",
                      "Sat,21 Nov 2026 05:01:30 GMT",
                      "Saturday, 21 Nov 2026 05:01:30 GMT",
                      "Sat, 21-Nov-26 05:01:30 GMT",
                      "Sat Nov 21 05:01:30 26",
                      "Sat Nov 1 05:01:30 2026",
                      "2026-11-21T05:01:30Z"}) {
        INFO(text);
        CHECK_FALSE(parse_retry_after(text, now));
    }
}

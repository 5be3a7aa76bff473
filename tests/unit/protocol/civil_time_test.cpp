#include "protocol/civil_time.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono;
using adms::protocol::format_civil_time;
using adms::protocol::format_compact_time;
using adms::protocol::parse_civil_time;

TEST_CASE("A device wall-clock time parses to a local time", "[civil_time]")
{
    auto parsed = parse_civil_time("2025-03-09 02:30:15");
    REQUIRE(parsed);
    CHECK(*parsed == local_days{2025y / March / 9} + 2h + 30min + 15s);
    CHECK(parse_civil_time("2025-03-09T02:30:15") == parsed);
}

TEST_CASE("Leap days parse only in leap years", "[civil_time]")
{
    CHECK(parse_civil_time("2024-02-29 12:00:00") == local_days{2024y / February / 29} + 12h);
    CHECK(parse_civil_time("2000-02-29 00:00:00").has_value());
    CHECK_FALSE(parse_civil_time("2100-02-29 00:00:00"));
    CHECK_FALSE(parse_civil_time("2025-02-29 00:00:00"));
}

TEST_CASE("Impossible dates and times are rejected, not wrapped", "[civil_time]")
{
    for (const char* text : {"2025-02-30 08:00:00", "2025-04-31 08:00:00", "2025-13-01 08:00:00",
                             "2025-00-10 08:00:00", "2025-01-00 08:00:00", "2025-01-01 25:00:00",
                             "2025-01-01 24:00:00", "2025-01-01 12:60:00", "2025-01-01 23:59:60"}) {
        INFO(text);
        CHECK_FALSE(parse_civil_time(text));
    }
}

TEST_CASE("Malformed civil times are rejected", "[civil_time]")
{
    for (const char* text : {"", "2025-01-01", "2025-01-01 8:00:00", "2025-1-01 08:00:00",
                             "2025/01/01 08:00:00", "2025-01-01 08:00:00 ", " 2025-01-01 08:00:00",
                             "2025-01-01_08:00:00", "2025-01-01 08-00-00", "20x5-01-01 08:00:00",
                             "+025-01-01 08:00:00", "2025-01-01 08:00:0\xff"}) {
        INFO(text);
        CHECK_FALSE(parse_civil_time(text));
    }
}

TEST_CASE("Civil times format with zero padding", "[civil_time]")
{
    auto t = local_days{2018y / February / 2} + 4h + 5min + 6s;
    CHECK(format_civil_time(t) == "2018-02-02 04:05:06");
    CHECK(format_civil_time(t, 'T') == "2018-02-02T04:05:06");
    CHECK(format_compact_time(t) == "20180202040506");
    CHECK(format_civil_time(local_days{2000y / January / 1}) == "2000-01-01 00:00:00");
}

TEST_CASE("Formatting then parsing gives back every second of a day boundary", "[civil_time]")
{
    local_seconds start = local_days{2023y / December / 31} + 23h + 59min;
    for (auto t = start; t < start + 120s; t += 1s) {
        CHECK(parse_civil_time(format_civil_time(t)) == t);
    }
}

TEST_CASE("Civil dates parse only as YYYY-MM-DD real dates and format back", "[civil_time]")
{
    using adms::protocol::format_civil_date;
    using adms::protocol::parse_civil_date;
    CHECK(parse_civil_date("2026-11-30") == local_days{2026y / November / 30});
    CHECK(parse_civil_date("2024-02-29") == local_days{2024y / February / 29});
    for (auto bad : {"2025-02-29", "2026-13-01", "2026-11-31", "2026-1-30", "2026/11/30",
                     "2026-11-30 ", "2026-11-30T00:00:00", "", "abcd-ef-gh", "+026-11-30"}) {
        INFO(bad);
        CHECK_FALSE(parse_civil_date(bad));
    }
    CHECK(format_civil_date(local_days{2026y / March / 29}) == "2026-03-29");
    CHECK(format_civil_date(local_days{999y / January / 2}) == "0999-01-02");
}

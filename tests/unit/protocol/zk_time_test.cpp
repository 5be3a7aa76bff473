#include "protocol/zk_time.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono;
using namespace adms::protocol;

TEST_CASE("ZK DateTime matches the reference's check values", "[zk_time]")
{
    auto a = local_days{2018y / February / 22} + 14h + 54min + 54s;
    auto b = local_days{2018y / February / 22} + 6h + 36min + 30s;
    CHECK(encode_zk_datetime(a) == 583080894);
    CHECK(encode_zk_datetime(b) == 583050990);
    CHECK(decode_zk_datetime(583080894) == a);
    CHECK(decode_zk_datetime(583050990) == b);
}

TEST_CASE("ZK DateTime counts 31 days in every month", "[zk_time]")
{
    CHECK(encode_zk_datetime(local_days{2000y / January / 1}) == 0);
    CHECK(encode_zk_datetime(local_days{2000y / February / 1}) == 31 * 86400);
    CHECK(encode_zk_datetime(local_days{2001y / January / 1}) == 372 * 86400);
    // 2018-02-28 23:59:59 and 2018-03-01 00:00:00 are one second apart in time, four days apart
    // in the encoding.
    auto last_feb = encode_zk_datetime(local_days{2018y / February / 28} + 86399s);
    auto first_mar = encode_zk_datetime(local_days{2018y / March / 1});
    REQUIRE(last_feb);
    REQUIRE(first_mar);
    CHECK(*first_mar - *last_feb == 3 * 86400 + 1);
}

TEST_CASE("ZK DateTime round-trips every day from 2000 to 2040, and keeps order", "[zk_time]")
{
    std::int64_t previous = -1;
    for (auto day = local_days{2000y / January / 1}; day <= local_days{2040y / December / 31};
         day += days{1}) {
        for (local_seconds t : {local_seconds{day}, day + 12h + 34min + 56s, day + 86399s}) {
            auto encoded = encode_zk_datetime(t);
            REQUIRE(encoded);
            REQUIRE(*encoded > previous);
            REQUIRE(decode_zk_datetime(*encoded) == t);
            previous = *encoded;
        }
    }
}

TEST_CASE("ZK DateTime decodes leap days only in leap years", "[zk_time]")
{
    auto feb29 = [](int year) { return (std::int64_t{year - 2000} * 372 + 31 + 28) * 86400; };
    CHECK(decode_zk_datetime(feb29(2020)) == local_days{2020y / February / 29});
    CHECK(decode_zk_datetime(feb29(2024)) == local_days{2024y / February / 29});
    CHECK_FALSE(decode_zk_datetime(feb29(2019)));
    CHECK_FALSE(decode_zk_datetime(feb29(2100)));
}

TEST_CASE("ZK DateTime rejects the impossible days its 31-day months allow", "[zk_time]")
{
    auto encoded = [](int year, int month, int day) {
        return (std::int64_t{year - 2000} * 372 + (month - 1) * 31 + (day - 1)) * 86400;
    };
    CHECK_FALSE(decode_zk_datetime(encoded(2018, 2, 30)));
    CHECK_FALSE(decode_zk_datetime(encoded(2018, 2, 31)));
    CHECK_FALSE(decode_zk_datetime(encoded(2018, 4, 31)));
    CHECK_FALSE(decode_zk_datetime(encoded(2018, 11, 31)));
    CHECK(decode_zk_datetime(encoded(2018, 12, 31)) == local_days{2018y / December / 31});
    CHECK_FALSE(decode_zk_datetime(-1));
    CHECK_FALSE(decode_zk_datetime(std::numeric_limits<std::int64_t>::max()));
}

TEST_CASE("ZK DateTime does not encode times before 2000", "[zk_time]")
{
    CHECK_FALSE(encode_zk_datetime(local_days{1999y / December / 31} + 86399s));
}

TEST_CASE("TimeZone is sent in hours for whole hours and in minutes otherwise", "[zk_time]")
{
    CHECK(time_zone_option(3h) == 3);
    CHECK(time_zone_option(0h) == 0);
    CHECK(time_zone_option(-5h) == -5);
    CHECK(time_zone_option(12h) == 12);
    CHECK(time_zone_option(-12h) == -12);
    CHECK(time_zone_option(5h + 30min) == 330);
    CHECK(time_zone_option(5h + 45min) == 345);
    CHECK(time_zone_option(-(3h + 30min)) == -210);
    CHECK(time_zone_option(-(2h + 30min)) == -150);
    CHECK(time_zone_option(12h + 45min) == 765);
    CHECK(time_zone_option(13h + 45min) == 825);
    // Whole hours beyond 12 would be read as hours outside the device's range: send minutes.
    CHECK(time_zone_option(13h) == 780);
    CHECK(time_zone_option(14h) == 840);
    // Historical offsets with seconds are truncated toward zero to whole minutes.
    CHECK(time_zone_option(-(4h + 56min + 2s)) == -296);
}

TEST_CASE("UTC offsets format as +HHMM and +HH:MM", "[zk_time]")
{
    CHECK(format_offset_hhmm(8h) == "+0800");
    CHECK(format_offset_hhmm(0h) == "+0000");
    CHECK(format_offset_hhmm(5h + 30min) == "+0530");
    CHECK(format_offset_hhmm(-(3h + 30min)) == "-0330");
    CHECK(format_offset_hhmm(13h + 45min) == "+1345");
    CHECK(format_offset_iso(-5h) == "-05:00");
    CHECK(format_offset_iso(5h + 45min) == "+05:45");
    CHECK(format_offset_iso(0h) == "+00:00");
}

TEST_CASE("The rtdata time reply carries ZK-encoded UTC and the server offset", "[zk_time]")
{
    auto now = sys_days{2018y / February / 22} + 6h + 36min + 30s;
    CHECK(render_rtdata_time(now, 8h) == "DateTime=583050990,ServerTZ=+0800");
    CHECK(render_rtdata_time(now, -(3h + 30min)) == "DateTime=583050990,ServerTZ=-0330");
    CHECK(render_rtdata_time(sys_days{1999y / January / 1}, 0h).empty());
}

TEST_CASE("The P320 time reply is local time with an ISO offset", "[zk_time]")
{
    auto now = sys_days{2025y / January / 15} + 14h;
    CHECK(render_p320_time(now, -5h) == "Time=2025-01-15T09:00:00-05:00");
    CHECK(render_p320_time(now, 5h + 30min) == "Time=2025-01-15T19:30:00+05:30");
    CHECK(render_p320_time(sys_days{2025y / January / 1} + 2h, -5h) ==
          "Time=2024-12-31T21:00:00-05:00");
}

TEST_CASE("HTTP dates are RFC 1123 in GMT", "[zk_time]")
{
    CHECK(format_http_date(sys_days{2015y / July / 3} + 6h + 53min + 1s) ==
          "Fri, 03 Jul 2015 06:53:01 GMT");
    CHECK(format_http_date(sys_days{1970y / January / 1}) == "Thu, 01 Jan 1970 00:00:00 GMT");
    CHECK(format_http_date(sys_days{2024y / February / 29} + 23h + 59min + 59s) ==
          "Thu, 29 Feb 2024 23:59:59 GMT");
    CHECK(format_http_date(sys_days{2026y / November / 22}) == "Sun, 22 Nov 2026 00:00:00 GMT");
}

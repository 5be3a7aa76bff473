#include "server/records/punch_format.hpp"

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

using namespace adms::server;
using namespace std::chrono;

namespace {

adms::tz::zone zone(const char* name)
{
    return *adms::tz::locate_zone(name).value;
}

sys_seconds utc(int y, unsigned m, unsigned d, int hh, int mm, int ss)
{
    return sys_days{year{y} / month{m} / day{d}} + hours{hh} + minutes{mm} + seconds{ss};
}

} // namespace

TEST_CASE("Instants render as ISO 8601 with the zone's offset at that instant", "[api]")
{
    auto riyadh = zone("Asia/Riyadh");
    CHECK(format_iso(utc(2026, 11, 21, 7, 15, 3), riyadh) == "2026-11-21T10:15:03+03:00");
    CHECK(format_iso(utc(2026, 11, 21, 7, 15, 3) + milliseconds{42}, riyadh, true) ==
          "2026-11-21T10:15:03.042+03:00");
    auto new_york = zone("America/New_York");
    CHECK(format_iso(utc(2026, 7, 1, 12, 0, 0), new_york) == "2026-07-01T08:00:00-04:00");
    CHECK(format_iso(utc(2026, 1, 1, 12, 0, 0), new_york) == "2026-01-01T07:00:00-05:00");
    CHECK(format_iso_utc(utc(2026, 1, 1, 12, 0, 0)) == "2026-01-01T12:00:00Z");
}

TEST_CASE("Time bounds are wall-clock without an offset and instants with one", "[api]")
{
    auto day_from = parse_time_bound("2026-11-21", false);
    REQUIRE(day_from.bound);
    CHECK(day_from.bound->local == "2026-11-21 00:00:00");
    CHECK_FALSE(day_from.bound->utc);

    // A bare date as the upper bound includes that whole day.
    auto day_to = parse_time_bound("2026-11-30", true);
    REQUIRE(day_to.bound);
    CHECK(day_to.bound->local == "2026-12-01 00:00:00");

    auto wall = parse_time_bound("2026-11-21T08:30:00", true);
    REQUIRE(wall.bound);
    CHECK(wall.bound->local == "2026-11-21 08:30:00");

    auto zulu = parse_time_bound("2026-11-21T08:30:00Z", false);
    REQUIRE(zulu.bound);
    CHECK(zulu.bound->utc == utc(2026, 11, 21, 8, 30, 0));
    CHECK_FALSE(zulu.bound->local);

    auto offset = parse_time_bound("2026-11-21T08:30:00+03:00", false);
    REQUIRE(offset.bound);
    CHECK(offset.bound->utc == utc(2026, 11, 21, 5, 30, 0));
    // "+03:00" sent unencoded in a query string decodes to " 03:00".
    auto plus_as_space = parse_time_bound("2026-11-21T08:30:00 03:00", false);
    REQUIRE(plus_as_space.bound);
    CHECK(plus_as_space.bound->utc == utc(2026, 11, 21, 5, 30, 0));
    auto compact = parse_time_bound("2026-11-21T08:30:00-0530", false);
    REQUIRE(compact.bound);
    CHECK(compact.bound->utc == utc(2026, 11, 21, 14, 0, 0));

    for (const char* bad :
         {"", "yesterday", "2026-02-30", "2026-11-21T25:00:00", "2026-11-21T08:30:00+3",
          "2026-11-21T08:30:00.5Z", "2026-11-21 08:30", "2026-11-21T08:30:00+15:00"}) {
        INFO(bad);
        auto parsed = parse_time_bound(bad, false);
        CHECK_FALSE(parsed.bound);
        CHECK_THAT(parsed.error, Catch::Contains("expected YYYY-MM-DD"));
    }
}

TEST_CASE("A punch row carries the device's text, its instant in the zone and in UTC", "[api]")
{
    stored_punch p;
    p.id = 7;
    p.serial_number = "SN1";
    p.pin = "42";
    p.local_time = "2026-11-21 08:00:05";
    p.utc = utc(2026, 11, 21, 5, 0, 5);
    p.status = 1;
    p.verify = 15;
    p.work_code = "0";
    p.received_at = utc(2026, 11, 21, 5, 0, 6) + milliseconds{250};
    punch_device device{"principal", zone("Asia/Riyadh")};

    CHECK(
        boost::json::serialize(punch_json(p, device)) ==
        R"({"id":7,"device":"principal","sn":"SN1","pin":"42","local_time":"2026-11-21 08:00:05",)"
        R"("time":"2026-11-21T08:00:05+03:00","utc":"2026-11-21T05:00:05Z","status":1,"verify":15,)"
        R"("work_code":"0","received_at":"2026-11-21T08:00:06.250+03:00"})");
    CHECK(csv_row(p, device) == "7,principal,SN1,42,2026-11-21 08:00:05,2026-11-21T08:00:05+03:00,"
                                "2026-11-21T05:00:05Z,1,15,0,2026-11-21T08:00:06.250+03:00\r\n");
    CHECK(csv_header() ==
          "id,device,sn,pin,local_time,time,utc,status,verify,work_code,received_at\r\n");

    // A punch the zone could not place has no instant.
    p.utc.reset();
    auto row = punch_json(p, device);
    CHECK(row.at("time").is_null());
    CHECK(row.at("utc").is_null());
}

TEST_CASE("CSV fields are quoted when needed and formulas are neutralised", "[api]")
{
    CHECK(csv_field("plain") == "plain");
    CHECK(csv_field("a,b") == "\"a,b\"");
    CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
    // Control characters and invalid UTF-8 are written as \xNN (a backslash as \\), UTF-8 kept.
    CHECK(csv_field("two\nlines") == "two\\x0alines");
    CHECK(csv_field("\x1b[31mred") == "\\x1b[31mred");
    CHECK(csv_field("bad\xff") == "bad\\xff");
    CHECK(csv_field("a\\b") == "a\\\\b");
    CHECK(csv_field("Jos\xc3\xa9") == "Jos\xc3\xa9");
    CHECK(csv_field("=HYPERLINK(\"x\")") == "\"'=HYPERLINK(\"\"x\"\")\"");
    CHECK(csv_field("+1") == "'+1");
    CHECK(csv_field("-2") == "'-2");
    CHECK(csv_field("@SUM(A1)") == "'@SUM(A1)");
    CHECK(csv_field("\tx") == "'\\x09x");
    CHECK(csv_field("-\x1b") == "'-\\x1b");
    CHECK(csv_field("") == "");
}

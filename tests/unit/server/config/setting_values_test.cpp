#include "server/config/setting_values.hpp"

#include <catch2/catch.hpp>

using namespace adms::server;
using namespace std::chrono;

TEST_CASE("Time dialects read and print as att and att-singular only", "[setting_values]")
{
    CHECK(parse_time_dialect("att") == time_dialect::att);
    CHECK(parse_time_dialect("att-singular") == time_dialect::att_singular);
    CHECK_FALSE(parse_time_dialect("ATT"));
    CHECK_FALSE(parse_time_dialect(""));
    CHECK(to_string(time_dialect::att) == "att");
    CHECK(to_string(time_dialect::att_singular) == "att-singular");
}

TEST_CASE("Sync intervals are at least a minute, or off (zero)", "[setting_values]")
{
    CHECK(parse_sync_interval("off") == minutes{0});
    CHECK(parse_sync_interval("6h") == minutes{360});
    CHECK(parse_sync_interval("90m") == minutes{90});
    CHECK(parse_sync_interval("60") == minutes{1});
    CHECK_FALSE(parse_sync_interval("59s"));
    CHECK_FALSE(parse_sync_interval("Off"));
    CHECK_FALSE(parse_sync_interval(""));
    CHECK(format_sync_interval(minutes{360}) == "6h");
    CHECK(format_sync_interval(minutes{90}) == "90m");
    CHECK(format_sync_interval(minutes{0}) == "off");
    CHECK(format_time_of_day(minutes{3 * 60 + 5}) == "03:05");
}

TEST_CASE("Aliases are 1 to 64 URL-safe characters and never a route name", "[setting_values]")
{
    CHECK(valid_alias("principal"));
    CHECK(valid_alias("front-door_2.b"));
    CHECK(valid_alias(std::string(64, 'a')));
    CHECK_FALSE(valid_alias(std::string(65, 'a')));
    CHECK_FALSE(valid_alias(""));
    CHECK_FALSE(valid_alias("sync-time"));
    CHECK_FALSE(valid_alias("a/b"));
    CHECK_FALSE(valid_alias("a b"));
    CHECK_FALSE(valid_alias("caf\xc3\xa9"));
}

TEST_CASE("Listen addresses split into host and port, IPv6 in brackets", "[setting_values]")
{
    auto v4 = split_listen("0.0.0.0:8080");
    REQUIRE(v4);
    CHECK(v4->host == "0.0.0.0");
    CHECK(v4->port == 8080);
    auto v6 = split_listen("[::1]:0");
    REQUIRE(v6);
    CHECK(v6->host == "::1");
    CHECK(v6->port == 0);
    CHECK_FALSE(split_listen("8080"));
    CHECK_FALSE(split_listen(":8080"));
    CHECK_FALSE(split_listen("host:65536"));
    CHECK_FALSE(split_listen("host:-1"));
    CHECK_FALSE(split_listen("host:"));
}

TEST_CASE("Keys and tokens are printable ASCII without spaces", "[setting_values]")
{
    CHECK(printable_without_spaces("abc-DEF_123!~"));
    CHECK(printable_without_spaces(""));
    CHECK_FALSE(printable_without_spaces("a b"));
    CHECK_FALSE(printable_without_spaces("a\tb"));
    CHECK_FALSE(printable_without_spaces("caf\xc3\xa9"));
    CHECK_FALSE(printable_without_spaces("a\x7f"));
}

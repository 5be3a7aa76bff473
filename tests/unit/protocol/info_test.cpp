#include "protocol/info.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>

using adms::protocol::device_info;
using adms::protocol::parse_info;
using namespace std::string_literals;

TEST_CASE("A full INFO value fills every field", "[info]")
{
    auto info = parse_info("Ver 8.0.4.2-20200723,153,316,39279,192.168.1.203,10,-1,0,0,101");
    REQUIRE(info);
    CHECK(*info ==
          device_info{
              "Ver 8.0.4.2-20200723", 153, 316, 39279, "192.168.1.203", 10, -1, 0, 0, {"101"}});
}

TEST_CASE("INFO fields from the tenth onward are kept as extra fields", "[info]")
{
    auto info = parse_info("Ver 6.60,1,2,3,10.0.0.2,10,7,15,4,111,abc,");
    REQUIRE(info);
    CHECK(info->face_algorithm == 7);
    CHECK(info->faces_per_enroll == 15);
    CHECK(info->face_count == 4);
    CHECK(info->extra_fields == std::vector<std::string>{"111", "abc", ""});
}

TEST_CASE("A short INFO value leaves the missing fields empty", "[info]")
{
    auto info = parse_info("Ver 6.60 Apr 28 2017,12,0,4711,192.168.0.9");
    REQUIRE(info);
    CHECK(*info == device_info{"Ver 6.60 Apr 28 2017",
                               12,
                               0,
                               4711,
                               "192.168.0.9",
                               std::nullopt,
                               std::nullopt,
                               std::nullopt,
                               std::nullopt,
                               {}});

    auto firmware_only = parse_info("Ver 6.60");
    REQUIRE(firmware_only);
    CHECK(*firmware_only == device_info{"Ver 6.60",
                                        std::nullopt,
                                        std::nullopt,
                                        std::nullopt,
                                        "",
                                        std::nullopt,
                                        std::nullopt,
                                        std::nullopt,
                                        std::nullopt,
                                        {}});
}

TEST_CASE("An empty INFO value gives nothing", "[info]")
{
    CHECK_FALSE(parse_info(""));
}

TEST_CASE("INFO fields are trimmed of spaces and non-numeric counts become empty", "[info]")
{
    auto info = parse_info(" Ver 1 , 12 ,x,9999999999999999999999,, 10 ,-,1.5,");
    REQUIRE(info);
    CHECK(info->firmware == "Ver 1");
    CHECK(info->user_count == 12);
    CHECK_FALSE(info->fingerprint_count);
    CHECK_FALSE(info->attlog_count); // does not fit long long
    CHECK(info->ip_address == "");
    CHECK(info->fingerprint_algorithm == 10);
    CHECK_FALSE(info->face_algorithm);
    CHECK_FALSE(info->faces_per_enroll);
    CHECK_FALSE(info->face_count);
    CHECK(info->extra_fields.empty());
}

TEST_CASE("Large counts fit and algorithm numbers beyond int do not", "[info]")
{
    auto info = parse_info("v,3000000000,0,0,ip,3000000000");
    REQUIRE(info);
    CHECK(info->user_count == 3000000000LL);
    CHECK_FALSE(info->fingerprint_algorithm);
}

TEST_CASE("Junk INFO values never crash and are kept as text", "[info]")
{
    auto commas = parse_info(",,,,,,,,,,,");
    REQUIRE(commas);
    CHECK(commas->firmware == "");
    CHECK_FALSE(commas->user_count);
    CHECK(commas->extra_fields == std::vector<std::string>{"", "", ""});

    auto binary = parse_info("\x00\xff,\x01"s);
    REQUIRE(binary);
    CHECK(binary->firmware == "\x00\xff"s);
    CHECK_FALSE(binary->user_count);

    auto blank = parse_info("   ");
    REQUIRE(blank);
    CHECK(blank->firmware == "");

    std::mt19937 random{101};
    for (int round = 0; round < 2000; ++round) {
        std::string value;
        auto length = std::uniform_int_distribution<int>{1, 120}(random);
        for (int i = 0; i < length; ++i) {
            value += round % 2 == 0
                         ? static_cast<char>(std::uniform_int_distribution<int>{0, 255}(random))
                         : ",-0123456789 "[std::uniform_int_distribution<int>{0, 12}(random)];
        }
        REQUIRE(parse_info(value));
    }
}

#include "protocol/options_body.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>

using adms::protocol::key_value;
using adms::protocol::parse_options_body;
using namespace std::string_literals;

TEST_CASE("A one-line options body gives its pairs in order", "[options]")
{
    auto result = parse_options_body("~DeviceName=MB460,MAC=00:17:61:12:34:56,"
                                     "FWVersion=Ver 6.60 Apr 28 2017,PushVersion=2.4.1,"
                                     "UserCount=153,TransactionCount=39279,IPAddress=192.168.1.203,"
                                     "Language=69");
    CHECK(result.rejected.empty());
    CHECK(result.records == std::vector<key_value>{{"~DeviceName", "MB460"},
                                                   {"MAC", "00:17:61:12:34:56"},
                                                   {"FWVersion", "Ver 6.60 Apr 28 2017"},
                                                   {"PushVersion", "2.4.1"},
                                                   {"UserCount", "153"},
                                                   {"TransactionCount", "39279"},
                                                   {"IPAddress", "192.168.1.203"},
                                                   {"Language", "69"}});
}

TEST_CASE("Options keys are trimmed, values are kept as sent and split at the first '='",
          "[options]")
{
    auto result = parse_options_body(" A = 1 ,B=x=y,\tC=,D= padded ");
    CHECK(result.rejected.empty());
    CHECK(result.records ==
          std::vector<key_value>{{"A", " 1 "}, {"B", "x=y"}, {"C", ""}, {"D", " padded "}});
}

TEST_CASE("Options bodies over several lines, with CRLF and blank lines, are read alike",
          "[options]")
{
    auto result = parse_options_body("A=1,B=2\r\n\r\nC=3,\nD=4\n");
    CHECK(result.rejected.empty());
    CHECK(result.records == std::vector<key_value>{{"A", "1"}, {"B", "2"}, {"C", "3"}, {"D", "4"}});
}

TEST_CASE("Empty options items (doubled or trailing commas) are skipped", "[options]")
{
    auto result = parse_options_body(",A=1,,B=2, ,");
    CHECK(result.rejected.empty());
    CHECK(result.records == std::vector<key_value>{{"A", "1"}, {"B", "2"}});
}

TEST_CASE("Options items without '=' or with an empty key are rejected with their line",
          "[options]")
{
    auto result = parse_options_body("A=1,garbage,B=2\n=3,C=4\n  =5\nD=6,E\x01=7\n");
    CHECK(result.records == std::vector<key_value>{{"A", "1"}, {"B", "2"}, {"C", "4"}, {"D", "6"}});
    REQUIRE(result.rejected.size() == 4);
    CHECK(result.rejected[0].line_number == 1);
    CHECK(result.rejected[0].text == "garbage");
    CHECK(result.rejected[0].reason == "item without '=' 'garbage'");
    CHECK(result.rejected[1].line_number == 2);
    CHECK(result.rejected[1].text == "=3");
    CHECK(result.rejected[1].reason == "empty key '=3'");
    CHECK(result.rejected[2].line_number == 3);
    CHECK(result.rejected[2].reason == "empty key '  =5'");
    CHECK(result.rejected[3].line_number == 4);
    CHECK(result.rejected[3].text == "E\x01=7");
    CHECK(result.rejected[3].reason == "key has control characters 'E?'");
}

TEST_CASE("An empty options body gives nothing", "[options]")
{
    CHECK(parse_options_body("").records.empty());
    CHECK(parse_options_body("").rejected.empty());
    CHECK(parse_options_body("\r\n \n").records.empty());
    CHECK(parse_options_body("\r\n \n").rejected.empty());
}

TEST_CASE("Binary values are kept as bytes and junk and huge bodies never crash", "[options]")
{
    auto result = parse_options_body("~DeviceName=\xe5\x8d\x8e\x00X,Z=\xff"s);
    CHECK(result.rejected.empty());
    CHECK(result.records ==
          std::vector<key_value>{{"~DeviceName", "\xe5\x8d\x8e\x00X"s}, {"Z", "\xff"}});

    auto huge = parse_options_body("Big=" + std::string(1024 * 1024, 'v') + ",Small=1");
    REQUIRE(huge.records.size() == 2);
    CHECK(huge.records[0].value.size() == 1024 * 1024);
    CHECK(huge.records[1] == key_value{"Small", "1"});

    std::mt19937 random{42};
    for (int round = 0; round < 2000; ++round) {
        std::string body;
        auto length = std::uniform_int_distribution<int>{0, 200}(random);
        for (int i = 0; i < length; ++i) {
            body += round % 2 == 0
                        ? static_cast<char>(std::uniform_int_distribution<int>{0, 255}(random))
                        : ",= \n\rab"[std::uniform_int_distribution<int>{0, 7}(random)];
        }
        auto parsed = parse_options_body(body);
        for (const auto& record : parsed.records) {
            REQUIRE_FALSE(record.key.empty());
        }
        for (const auto& rejected : parsed.rejected) {
            REQUIRE(rejected.line_number >= 1);
        }
    }
}

#include "protocol/query.hpp"

#include <catch2/catch.hpp>

using adms::protocol::is_valid_serial_number;
using adms::protocol::key_value;
using adms::protocol::parse_iclock_query;

TEST_CASE("A handshake target parses into its parameters", "[query]")
{
    auto parsed = parse_iclock_query(
        "/iclock/cdata?SN=CQUJ231560123&options=all&pushver=2.4.1&language=69&pushcommkey=abc");
    REQUIRE(parsed);
    const auto& q = *parsed.query;
    CHECK(q.path == "/iclock/cdata");
    CHECK(q.serial_number == "CQUJ231560123");
    CHECK(q.options == "all");
    CHECK(q.push_version == "2.4.1");
    CHECK(q.language == "69");
    CHECK_FALSE(q.table);
    CHECK_FALSE(q.stamp);
    REQUIRE(q.extra.size() == 1);
    CHECK(q.extra[0] == key_value{"pushcommkey", "abc"});
    REQUIRE(q.find_extra("pushcommkey"));
    CHECK(*q.find_extra("pushcommkey") == "abc");
    CHECK(q.find_extra("DeviceType") == nullptr);
}

TEST_CASE("An upload target carries table and stamps", "[query]")
{
    auto parsed = parse_iclock_query("/iclock/cdata?SN=A1&table=ATTLOG&Stamp=9999&OpStamp=12");
    REQUIRE(parsed);
    CHECK(parsed.query->table == "ATTLOG");
    CHECK(parsed.query->stamp == "9999");
    CHECK(parsed.query->op_stamp == "12");
}

TEST_CASE("Parameters are percent-decoded and '+' is a space", "[query]")
{
    auto parsed = parse_iclock_query("/iclock/getrequest?SN=A1&INFO=Ver%208.0.4.2-20200723%2C153%2C"
                                     "316,39279,192.168.1.203&DeviceType=middle+east");
    REQUIRE(parsed);
    CHECK(parsed.query->info == "Ver 8.0.4.2-20200723,153,316,39279,192.168.1.203");
    REQUIRE(parsed.query->find_extra("DeviceType"));
    CHECK(*parsed.query->find_extra("DeviceType") == "middle east");
}

TEST_CASE("Known keys match case-insensitively", "[query]")
{
    auto parsed = parse_iclock_query("/iclock/cdata?sn=A1&TABLE=OPERLOG&stamp=5&Type=time&info=x");
    REQUIRE(parsed);
    CHECK(parsed.query->serial_number == "A1");
    CHECK(parsed.query->table == "OPERLOG");
    CHECK(parsed.query->stamp == "5");
    CHECK(parsed.query->type == "time");
    CHECK(parsed.query->info == "x");
}

TEST_CASE("Empty values, bare keys and empty items are kept or skipped sensibly", "[query]")
{
    auto parsed = parse_iclock_query("/iclock/cdata?SN=A1&&Stamp=&flag&=v");
    REQUIRE(parsed);
    CHECK(parsed.query->stamp == "");
    REQUIRE(parsed.query->extra.size() == 2);
    CHECK(parsed.query->extra[0] == key_value{"flag", ""});
    CHECK(parsed.query->extra[1] == key_value{"", "v"});
}

TEST_CASE("A repeated known key keeps the first value and the rest as extras", "[query]")
{
    auto parsed = parse_iclock_query("/iclock/cdata?SN=A1&table=ATTLOG&table=OPERLOG&SN=A1");
    REQUIRE(parsed);
    CHECK(parsed.query->table == "ATTLOG");
    REQUIRE(parsed.query->extra.size() == 1);
    CHECK(parsed.query->extra[0] == key_value{"table", "OPERLOG"});
}

TEST_CASE("A missing, invalid or conflicting SN is a parse failure", "[query]")
{
    auto missing = parse_iclock_query("/iclock/getrequest?table=ATTLOG");
    CHECK_FALSE(missing);
    CHECK(missing.error.message == "missing SN");
    CHECK_FALSE(parse_iclock_query("/iclock/getrequest"));
    CHECK_FALSE(parse_iclock_query("/iclock/getrequest?SN="));
    CHECK_FALSE(parse_iclock_query("/iclock/getrequest?SN=A%0AB"));
    CHECK_FALSE(parse_iclock_query("/iclock/getrequest?SN=A+B"));
    CHECK_FALSE(parse_iclock_query("/iclock/getrequest?SN=%1b%5b31m"));
    CHECK_FALSE(parse_iclock_query("/iclock/getrequest?SN=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"));
    auto twice = parse_iclock_query("/iclock/getrequest?SN=A1&SN=B2");
    CHECK_FALSE(twice);
    CHECK(twice.error.message == "SN given twice with different values");
}

TEST_CASE("Serial numbers are 1 to 32 letters, digits, '-' or '_'", "[query]")
{
    CHECK(is_valid_serial_number("A"));
    CHECK(is_valid_serial_number("RKQ4243400358"));
    CHECK(is_valid_serial_number("abc-DEF_123"));
    CHECK(is_valid_serial_number("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"));
    CHECK_FALSE(is_valid_serial_number("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"));
    CHECK_FALSE(is_valid_serial_number(""));
    CHECK_FALSE(is_valid_serial_number("A.B"));
    CHECK_FALSE(is_valid_serial_number("A/B"));
    CHECK_FALSE(is_valid_serial_number("caf\xc3\xa9"));
}

TEST_CASE("A broken percent escape keeps the value as sent instead of failing", "[query]")
{
    auto parsed = parse_iclock_query("/iclock/getrequest?SN=A1&INFO=50%zz&x=%");
    REQUIRE(parsed);
    CHECK(parsed.query->info == "50%zz");
    REQUIRE(parsed.query->find_extra("x"));
    CHECK(*parsed.query->find_extra("x") == "%");
}

TEST_CASE("A fragment is ignored and the path is kept as sent", "[query]")
{
    auto parsed = parse_iclock_query("/iclock/ping?SN=A1#frag");
    REQUIRE(parsed);
    CHECK(parsed.query->path == "/iclock/ping");
    CHECK(parsed.query->serial_number == "A1");
}

TEST_CASE("Arbitrary bytes never make the query parser throw", "[query]")
{
    std::uint32_t state = 12345;
    auto next = [&state] {
        state = state * 1664525u + 1013904223u;
        return static_cast<char>(state >> 24);
    };
    const std::string alphabet = "SN=&%+?#A1b\x00\xff\n";
    for (int i = 0; i < 5000; ++i) {
        std::string target = "/iclock/cdata?";
        int length = static_cast<unsigned char>(next()) % 64;
        for (int j = 0; j < length; ++j) {
            char c = next();
            target += (c & 1) ? alphabet[static_cast<unsigned char>(c) % alphabet.size()] : c;
        }
        auto parsed = parse_iclock_query(target);
        if (parsed) {
            CHECK(is_valid_serial_number(parsed.query->serial_number));
        } else {
            CHECK_FALSE(parsed.error.message.empty());
        }
    }
}

#include "server/admin/command_request.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <string>

using namespace adms::server;

namespace {

constexpr const char* names = "one of reboot, info, check, log, clear_log, user_upsert, "
                              "user_delete, query_attlog, set_option";

input_result<command_request> request(std::string_view body)
{
    auto parsed = parse_json_object(body, false);
    INFO(body);
    REQUIRE(parsed);
    return parse_command_request(*parsed.value);
}

// The queued text of a request that must be accepted, checking its name too.
std::string text_of(std::string_view body, std::string_view name)
{
    auto parsed = request(body);
    INFO(body << " -> " << parsed.error.describe());
    REQUIRE(parsed);
    CHECK(parsed.value->name == name);
    return parsed.value->text;
}

// The description of the error for a request that must be refused.
std::string error_of(std::string_view body)
{
    auto parsed = request(body);
    INFO(body);
    REQUIRE_FALSE(parsed);
    return parsed.error.describe();
}

} // namespace

TEST_CASE("Commands without arguments are accepted alone", "[command_request]")
{
    CHECK(text_of(R"({"command": "reboot"})", "reboot") == "REBOOT");
    CHECK(text_of(R"({"command": "info"})", "info") == "INFO");
    CHECK(text_of(R"({"command": "check"})", "check") == "CHECK");
    CHECK(text_of(R"({"command": "log"})", "log") == "LOG");
    CHECK(text_of(R"({"command": "clear_log"})", "clear_log") == "CLEAR LOG");
    CHECK(error_of(R"({"command": "reboot", "delay": 5})") ==
          "field 'delay': unknown field; expected command");
}

TEST_CASE("A missing, mistyped or unknown command is refused with the valid names",
          "[command_request]")
{
    CHECK(error_of("{}") == fmt::format("field 'command': required; {}", names));
    CHECK(error_of(R"({"command": null})") == fmt::format("field 'command': required; {}", names));
    CHECK(error_of(R"({"command": 1})") == "field 'command': must be a string");
    CHECK(error_of(R"({"command": "REBOOT"})") ==
          fmt::format("field 'command': unknown command 'REBOOT'; {}", names));
    CHECK(error_of(R"({"command": "shell", "cmd": "rm"})") ==
          fmt::format("field 'command': unknown command 'shell'; {}", names));
}

TEST_CASE("user_upsert builds DATA UPDATE USERINFO", "[command_request]")
{
    CHECK(text_of(R"({"command": "user_upsert", "pin": "0042"})", "user_upsert") ==
          "DATA UPDATE USERINFO PIN=0042\tName=\tPri=0");
    CHECK(text_of(R"({"command": "user_upsert", "pin": 42, "name": "Ann Lee", "privilege": 14,
                      "password": "0123", "card": 4294967295, "group": 2, "verify": 15})",
                  "user_upsert") == "DATA UPDATE USERINFO PIN=42\tName=Ann Lee\tPri=14\t"
                                    "Passwd=0123\tCard=4294967295\tGrp=2\tVerify=15");
    CHECK(text_of(R"({"command": "user_upsert", "pin": "7", "name": null, "card": "",
                      "password": ""})",
                  "user_upsert") == "DATA UPDATE USERINFO PIN=7\tName=\tPri=0\tPasswd=\tCard=");
    CHECK(text_of(R"({"command": "user_upsert", "pin": "5", "name": "Jos\u00e9"})",
                  "user_upsert") == "DATA UPDATE USERINFO PIN=5\tName=Jos\xc3\xa9\tPri=0");
}

TEST_CASE("user_upsert refuses missing, mistyped, unknown and invalid fields", "[command_request]")
{
    CHECK(error_of(R"({"command": "user_upsert"})") == "field 'pin': required");
    CHECK(error_of(R"({"command": "user_upsert", "pin": null})") == "field 'pin': required");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "role": "admin"})") ==
          "field 'role': unknown field; expected one of command, pin, name, privilege, "
          "password, card, group, verify");
    CHECK(error_of(R"({"command": "user_upsert", "pin": 1.5})") ==
          "field 'pin': must be a string or an integer");
    CHECK(error_of(R"({"command": "user_upsert", "pin": ["1"]})") ==
          "field 'pin': must be a string or an integer");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "name": 5})") ==
          "field 'name': must be a string");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "privilege": "14"})") ==
          "field 'privilege': must be an integer");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "password": 1234})") ==
          "field 'password': must be a string");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "card": true})") ==
          "field 'card': must be a string or an integer");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "group": 1.0})") ==
          "field 'group': must be an integer");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "verify": false})") ==
          "field 'verify': must be an integer");

    CHECK(error_of(R"({"command": "user_upsert", "pin": ""})") ==
          "field 'pin': must be 1 to 24 ASCII letters or digits");
    CHECK(error_of(R"({"command": "user_upsert", "pin": -1})") ==
          "field 'pin': must be 1 to 24 ASCII letters or digits");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "name": "Ann\tLee"})") ==
          "field 'name': must not contain control characters (TAB, CR, LF, NUL, ...)");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "privilege": 3})") ==
          "field 'privilege': must be 0 (user), 2 (enroller), 6 (admin) or 14 (super admin)");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "privilege": 4294967302})") ==
          "field 'privilege': must be 0 (user), 2 (enroller), 6 (admin) or 14 (super admin)");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "password": "12ab"})") ==
          "field 'password': must be empty or 1 to 8 digits");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "card": -1})") ==
          "field 'card': must be empty or 1 to 10 digits up to 4294967295");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "group": 0})") ==
          "field 'group': must be 1 to 99");
    CHECK(error_of(R"({"command": "user_upsert", "pin": "1", "verify": 256})") ==
          "field 'verify': must be -1 (the group's mode) or 0 to 255");
}

TEST_CASE("user_delete builds DATA DELETE USERINFO", "[command_request]")
{
    CHECK(text_of(R"({"command": "user_delete", "pin": "0042"})", "user_delete") ==
          "DATA DELETE USERINFO PIN=0042");
    CHECK(text_of(R"({"command": "user_delete", "pin": 9})", "user_delete") ==
          "DATA DELETE USERINFO PIN=9");
    CHECK(error_of(R"({"command": "user_delete"})") == "field 'pin': required");
    CHECK(error_of(R"({"command": "user_delete", "pin": "1", "name": "x"})") ==
          "field 'name': unknown field; expected one of command, pin");
    CHECK(error_of(R"({"command": "user_delete", "pin": "1\n2"})") ==
          "field 'pin': must be 1 to 24 ASCII letters or digits");
    CHECK(error_of(R"({"command": "user_delete", "pin": {}})") ==
          "field 'pin': must be a string or an integer");
}

TEST_CASE("query_attlog takes device wall-clock times or bare dates", "[command_request]")
{
    CHECK(text_of(R"({"command": "query_attlog", "from": "2024-03-01 08:00:00",
                      "to": "2024-03-01T17:30:00"})",
                  "query_attlog") ==
          "DATA QUERY ATTLOG StartTime=2024-03-01 08:00:00\tEndTime=2024-03-01 17:30:00");
    CHECK(text_of(R"({"command": "query_attlog", "from": "2024-03-01", "to": "2024-03-31"})",
                  "query_attlog") ==
          "DATA QUERY ATTLOG StartTime=2024-03-01 00:00:00\tEndTime=2024-03-31 23:59:59");
    CHECK(text_of(R"({"command": "query_attlog", "from": "2024-03-01", "to": "2024-03-01"})",
                  "query_attlog") ==
          "DATA QUERY ATTLOG StartTime=2024-03-01 00:00:00\tEndTime=2024-03-01 23:59:59");
}

TEST_CASE("query_attlog refuses offsets, bad times, reversed and missing bounds",
          "[command_request]")
{
    const std::string offset = "must be the device's wall-clock time without 'Z' or a UTC "
                               "offset (the device clock is local), e.g. \"2024-03-01 08:00:00\"";
    const std::string format = "must be \"YYYY-MM-DD HH:MM:SS\", \"YYYY-MM-DDTHH:MM:SS\" or "
                               "\"YYYY-MM-DD\" (device wall-clock time)";
    for (std::string bad :
         {"2024-03-01T08:00:00Z", "2024-03-01T08:00:00+01:00", "2024-03-01 08:00:00-0500",
          "2024-03-01T08:00:00.000Z", "2024-03-01Z", "2024-03-01T08:00+01:00"}) {
        INFO(bad);
        CHECK(error_of(fmt::format(R"({{"command": "query_attlog", "from": "{}", "to": "{}"}})",
                                   bad, "2024-03-02")) == "field 'from': " + offset);
        CHECK(error_of(fmt::format(R"({{"command": "query_attlog", "from": "{}", "to": "{}"}})",
                                   "2024-02-01", bad)) == "field 'to': " + offset);
    }
    for (std::string bad : {"", "2024-3-1", "2024-02-30", "2024-03-01 24:00:00", "01/03/2024",
                            "2024-03-01 08:00", "2024-03-01 08:00:00.5", "yesterday"}) {
        INFO(bad);
        CHECK(error_of(fmt::format(R"({{"command": "query_attlog", "from": "{}", "to": "{}"}})",
                                   bad, "2024-03-02")) == "field 'from': " + format);
    }
    CHECK(error_of(R"({"command": "query_attlog", "from": "2024-03-02", "to": "2024-03-01"})") ==
          "field 'to': must not be before 'from'");
    CHECK(error_of(R"({"command": "query_attlog", "from": "1999-12-31", "to": "2024-03-01"})") ==
          "field 'from': must be between 2000-01-01 00:00:00 and 9999-12-31 23:59:59");
    CHECK(error_of(R"({"command": "query_attlog", "to": "2024-03-01"})") ==
          "field 'from': required");
    CHECK(error_of(R"({"command": "query_attlog", "from": "2024-03-01"})") ==
          "field 'to': required");
    CHECK(error_of(R"({"command": "query_attlog", "from": 1709251200, "to": "2024-03-01"})") ==
          "field 'from': must be a string");
    CHECK(error_of(R"({"command": "query_attlog", "from": "2024-03-01", "to": "2024-03-01",
                       "zone": "UTC"})") ==
          "field 'zone': unknown field; expected one of command, from, to");
}

TEST_CASE("set_option builds SET OPTION with a string or integer value", "[command_request]")
{
    CHECK(text_of(R"({"command": "set_option", "name": "Delay", "value": 30})", "set_option") ==
          "SET OPTION Delay=30");
    CHECK(text_of(R"({"command": "set_option", "name": "~DeviceName", "value": "Gate 1"})",
                  "set_option") == "SET OPTION ~DeviceName=Gate 1");
    CHECK(text_of(R"({"command": "set_option", "name": "X", "value": ""})", "set_option") ==
          "SET OPTION X=");
}

TEST_CASE("set_option refuses DateTime, bad names and values, and missing fields",
          "[command_request]")
{
    CHECK(error_of(R"({"command": "set_option", "name": "DateTime", "value": 583080894})") ==
          "field 'name': DateTime is set by the time-sync API, which knows the device's zone");
    CHECK(error_of(R"({"command": "set_option", "name": "datetime", "value": "1"})") ==
          "field 'name': DateTime is set by the time-sync API, which knows the device's zone");
    CHECK(error_of(R"({"command": "set_option", "name": "a b", "value": "1"})") ==
          "field 'name': must be 1 to 64 of A-Z, a-z, 0-9, '_' and '~'");
    CHECK(error_of(R"({"command": "set_option", "name": "Delay", "value": "1\nREBOOT"})") ==
          "field 'value': must not contain control characters (TAB, CR, LF, NUL, ...)");
    CHECK(error_of(R"({"command": "set_option", "name": "Delay", "value": 1.5})") ==
          "field 'value': must be a string or an integer");
    CHECK(error_of(R"({"command": "set_option", "name": 5, "value": "1"})") ==
          "field 'name': must be a string");
    CHECK(error_of(R"({"command": "set_option", "value": "1"})") == "field 'name': required");
    CHECK(error_of(R"({"command": "set_option", "name": "Delay"})") == "field 'value': required");
    CHECK(error_of(R"({"command": "set_option", "name": "Delay", "value": "1", "key": "x"})") ==
          "field 'key': unknown field; expected one of command, name, value");
}

#include "protocol/devicecmd.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>

using adms::protocol::command_result;
using adms::protocol::describe_return_code;
using adms::protocol::key_value;
using adms::protocol::parse_devicecmd;
using namespace std::string_literals;

TEST_CASE("A one-line command result is parsed", "[devicecmd]")
{
    auto result = parse_devicecmd("ID=17&Return=0&CMD=DATA\n");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0] == command_result{"17", 0, "DATA", {}, ""});
}

TEST_CASE("Several results in one body, LF or CRLF, keep their order", "[devicecmd]")
{
    auto result = parse_devicecmd("ID=a1&Return=0&CMD=DATA\r\n"
                                  "ID=a2&Return=-1002&CMD=ENROLL_FP\r\n"
                                  "\r\n"
                                  "ID=a3&Return=-1&CMD=CLEAR LOG\r\n"
                                  "ID=a4&Return=2&CMD=DATA");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 4);
    CHECK(result.records[0] == command_result{"a1", 0, "DATA", {}, ""});
    CHECK(result.records[1] == command_result{"a2", -1002, "ENROLL_FP", {}, ""});
    CHECK(result.records[2] == command_result{"a3", -1, "CLEAR LOG", {}, ""});
    CHECK(result.records[3] == command_result{"a4", 2, "DATA", {}, ""});
}

TEST_CASE("A result without CMD is still a result", "[devicecmd]")
{
    auto result = parse_devicecmd("ID=5&Return=-1005\n");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0] == command_result{"5", -1005, "", {}, ""});
}

TEST_CASE("Only a line starting with ID= starts a result and extra header keys go to info",
          "[devicecmd]")
{
    auto result = parse_devicecmd("CMD=DATA&Return=3&ID=9\n"
                                  "ID=10&Return=0&CMD=PutFile&FileName=a.txt&Size=12\n");
    // The first line does not start with "ID=", so no result starts there.
    REQUIRE(result.rejected.size() == 1);
    CHECK(result.rejected[0].line_number == 1);
    CHECK(result.rejected[0].reason == "no ID= line before this one 'CMD=DATA&Return=3&ID=9'");
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0] ==
          command_result{"10", 0, "PutFile", {{"FileName", "a.txt"}, {"Size", "12"}}, ""});
}

TEST_CASE("An INFO reply carries key=value lines until the next ID= line", "[devicecmd]")
{
    auto result = parse_devicecmd("ID=1&Return=0&CMD=INFO\n"
                                  "~DeviceName=MB460\n"
                                  "MAC=00:17:61:12:34:56\n"
                                  "\n"
                                  "UserCount=153\n"
                                  "FWVersion=Ver 6.60 Apr 28 2017\n"
                                  "IPAddress=192.168.1.203\n"
                                  "Odd=a=b\n"
                                  "ID=2&Return=0&CMD=DATA\n");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 2);
    CHECK(result.records[0] == command_result{"1",
                                              0,
                                              "INFO",
                                              {{"~DeviceName", "MB460"},
                                               {"MAC", "00:17:61:12:34:56"},
                                               {"UserCount", "153"},
                                               {"FWVersion", "Ver 6.60 Apr 28 2017"},
                                               {"IPAddress", "192.168.1.203"},
                                               {"Odd", "a=b"}},
                                              ""});
    CHECK(result.records[1] == command_result{"2", 0, "DATA", {}, ""});
}

TEST_CASE("A line without '=' inside a result is rejected, the result kept", "[devicecmd]")
{
    auto result = parse_devicecmd("ID=1&Return=0&CMD=INFO\nMAC=1\nnonsense\nIP=2\n");
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0].info == std::vector<key_value>{{"MAC", "1"}, {"IP", "2"}});
    REQUIRE(result.rejected.size() == 1);
    CHECK(result.rejected[0].line_number == 3);
    CHECK(result.rejected[0].text == "nonsense");
    CHECK(result.rejected[0].reason == "expected key=value in the result of ID='1'");
}

TEST_CASE("A Shell reply's multi-line Content is kept with its newlines", "[devicecmd]")
{
    auto result = parse_devicecmd("ID=8\r\n"
                                  "Return=0\r\n"
                                  "CMD=Shell\r\n"
                                  "Content=total 4\r\n"
                                  "-rw-r--r-- 1 root root 12 a.txt\r\n"
                                  "\r\n"
                                  "key=value & more\r\n"
                                  "\r\n"
                                  "\r\n"
                                  "ID=9&Return=0&CMD=DATA\r\n");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 2);
    CHECK(result.records[0] ==
          command_result{
              "8", 0, "Shell", {}, "total 4\n-rw-r--r-- 1 root root 12 a.txt\n\nkey=value & more"});
    CHECK(result.records[1] == command_result{"9", 0, "DATA", {}, ""});
}

TEST_CASE("Content on the first line takes the rest of it, '&' included", "[devicecmd]")
{
    auto result = parse_devicecmd("ID=4&Return=0&CMD=GetFile&Content=a&b=c\nsecond line\n");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0] == command_result{"4", 0, "GetFile", {}, "a&b=c\nsecond line"});
}

TEST_CASE("A Shell reply with empty Content at the end of the body", "[devicecmd]")
{
    auto result = parse_devicecmd("ID=8\nReturn=127\nCMD=Shell\nContent=");
    REQUIRE(result.rejected.empty());
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0] == command_result{"8", 127, "Shell", {}, ""});
}

TEST_CASE("Results with no ID, an empty ID or a bad Return are rejected whole", "[devicecmd]")
{
    auto result = parse_devicecmd("Return=0&CMD=DATA\n"
                                  "ID=&Return=0&CMD=DATA\n"
                                  "ID=3&CMD=DATA\n"
                                  "ID=4&Return=ok&CMD=DATA\n"
                                  "ID=5&Return=&CMD=DATA\n"
                                  "ID=6&Return=99999999999&CMD=DATA\n"
                                  "ID=7\n"
                                  "Return=x\n"
                                  "CMD=Shell\n"
                                  "Content=lost?\n"
                                  "\n"
                                  "ID=8&Return= -3 &CMD=DATA\n");
    REQUIRE(result.records.size() == 1);
    CHECK(result.records[0] == command_result{"8", -3, "DATA", {}, ""});
    REQUIRE(result.rejected.size() == 7);
    CHECK(result.rejected[0].line_number == 1);
    CHECK(result.rejected[0].reason == "no ID= line before this one 'Return=0&CMD=DATA'");
    CHECK(result.rejected[1].line_number == 2);
    CHECK(result.rejected[1].reason == "empty ID");
    CHECK(result.rejected[2].line_number == 3);
    CHECK(result.rejected[2].reason == "missing Return");
    CHECK(result.rejected[3].line_number == 4);
    CHECK(result.rejected[3].reason == "Return is not a number 'ok'");
    CHECK(result.rejected[4].reason == "Return is not a number ''");
    CHECK(result.rejected[5].reason == "Return is not a number '99999999999'");
    CHECK(result.rejected[6].line_number == 7);
    CHECK(result.rejected[6].reason == "Return is not a number 'x'");
    CHECK(result.rejected[6].text == "ID=7\nReturn=x\nCMD=Shell\nContent=lost?");
}

TEST_CASE("A rejected multi-line result keeps its CRLF bytes as received", "[devicecmd]")
{
    auto result = parse_devicecmd("ID=1&CMD=INFO\r\nA=1\r\n\r\n");
    REQUIRE(result.rejected.size() == 1);
    CHECK(result.rejected[0].text == "ID=1&CMD=INFO\r\nA=1");
    CHECK(result.rejected[0].reason == "missing Return");
}

TEST_CASE("An empty devicecmd body gives nothing", "[devicecmd]")
{
    CHECK(parse_devicecmd("").records.empty());
    CHECK(parse_devicecmd("").rejected.empty());
    CHECK(parse_devicecmd("\n\r\n").rejected.empty());
}

TEST_CASE("Junk and huge devicecmd bodies never crash", "[devicecmd][fuzz]")
{
    auto junk = parse_devicecmd("\x00\xff\x01\nID=\x00&Return=0\n"s);
    REQUIRE(junk.rejected.size() == 1);
    CHECK(junk.rejected[0].line_number == 1);
    REQUIRE(junk.records.size() == 1);
    CHECK(junk.records[0].id == "\x00"s);

    auto huge = parse_devicecmd("ID=1&Return=0&CMD=Shell&Content=" + std::string(1024 * 1024, 'x'));
    REQUIRE(huge.records.size() == 1);
    CHECK(huge.records[0].content.size() == 1024 * 1024);

    std::mt19937 random{1004};
    const std::string alphabet = "ID=&Return-0CMDContent\n\r1x";
    for (int round = 0; round < 3000; ++round) {
        std::string body;
        auto length = std::uniform_int_distribution<int>{0, 300}(random);
        for (int i = 0; i < length; ++i) {
            body += round % 2 == 0
                        ? static_cast<char>(std::uniform_int_distribution<int>{0, 255}(random))
                        : alphabet[std::uniform_int_distribution<std::size_t>{0, alphabet.size() -
                                                                                     1}(random)];
        }
        auto parsed = parse_devicecmd(body);
        for (const auto& record : parsed.records) {
            REQUIRE_FALSE(record.id.empty());
        }
        for (const auto& rejected : parsed.rejected) {
            REQUIRE(rejected.line_number >= 1);
            REQUIRE(rejected.reason.size() < 100);
        }
    }
}

TEST_CASE("Return codes are described as in the reference", "[devicecmd]")
{
    CHECK(describe_return_code(0) == "ok");
    CHECK(describe_return_code(5) == "ok");
    CHECK(describe_return_code(-1) == "bad parameter");
    CHECK(describe_return_code(-3) == "read/write error");
    CHECK(describe_return_code(-10) == "user not found");
    CHECK(describe_return_code(-1001) == "capacity exceeded");
    CHECK(describe_return_code(-1002) == "not supported");
    CHECK(describe_return_code(-1003) == "timeout");
    CHECK(describe_return_code(-1004) == "data and configuration inconsistent");
    CHECK(describe_return_code(-1005) == "busy");
    CHECK(describe_return_code(-1006) == "data too long");
    CHECK(describe_return_code(-1007) == "out of memory");
    CHECK(describe_return_code(-2) == "failure");
    CHECK(describe_return_code(-1008) == "failure");
    CHECK(describe_return_code(-2147483647 - 1) == "failure");
}

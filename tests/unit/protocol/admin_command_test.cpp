#include "protocol/admin_command.hpp"
#include "protocol/civil_time.hpp"
#include "protocol/command.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace adms::protocol;
using namespace std::chrono;

namespace {

// The text of a command that must build, checked to be sendable.
std::string text_of(const built_command& command)
{
    INFO("error: " << command.error.field << ": " << command.error.message);
    REQUIRE(command);
    CHECK(is_valid_command_text(*command.text));
    CHECK(command.error.field.empty());
    return *command.text;
}

// The field a command that must fail names.
std::string rejected_field(const built_command& command)
{
    REQUIRE_FALSE(command);
    CHECK_FALSE(command.text.has_value());
    CHECK_FALSE(command.error.message.empty());
    return command.error.field;
}

local_seconds at(std::string_view text)
{
    auto time = parse_civil_time(text);
    REQUIRE(time);
    return *time;
}

} // namespace

TEST_CASE("Commands without arguments have their fixed text", "[admin_command]")
{
    CHECK(text_of(reboot_command()) == "REBOOT");
    CHECK(is_reboot_command(text_of(reboot_command())));
    CHECK(text_of(info_command()) == "INFO");
    CHECK(text_of(check_command()) == "CHECK");
    CHECK(text_of(log_command()) == "LOG");
    CHECK(text_of(clear_log_command()) == "CLEAR LOG");
}

TEST_CASE("A user with only a PIN is sent with an empty name and privilege 0", "[admin_command]")
{
    CHECK(text_of(user_upsert_command({.pin = "1"})) == "DATA UPDATE USERINFO PIN=1\tName=\tPri=0");
}

TEST_CASE("A user with every field is sent in the reference order", "[admin_command]")
{
    user_fields user{.pin = "0042",
                     .name = "Ann Lee",
                     .privilege = 14,
                     .password = "12345678",
                     .card = "4294967295",
                     .group = 99,
                     .verify = -1};
    CHECK(text_of(user_upsert_command(user)) ==
          "DATA UPDATE USERINFO PIN=0042\tName=Ann Lee\tPri=14\tPasswd=12345678\t"
          "Card=4294967295\tGrp=99\tVerify=-1");
}

TEST_CASE("Empty password and card are sent to clear them", "[admin_command]")
{
    user_fields user{
        .pin = "7", .privilege = 2, .password = "", .card = "", .group = 1, .verify = 0};
    CHECK(text_of(user_upsert_command(user)) ==
          "DATA UPDATE USERINFO PIN=7\tName=\tPri=2\tPasswd=\tCard=\tGrp=1\tVerify=0");
}

TEST_CASE("User names are UTF-8 up to 24 bytes", "[admin_command]")
{
    // "José Müller" in UTF-8; 24 bytes exactly is accepted; '=' is plain text after the key.
    CHECK(text_of(user_upsert_command({.pin = "5", .name = "Jos\xc3\xa9 M\xc3\xbcller"})) ==
          "DATA UPDATE USERINFO PIN=5\tName=Jos\xc3\xa9 M\xc3\xbcller\tPri=0");
    CHECK(text_of(user_upsert_command({.pin = "5", .name = std::string(24, 'x')})) ==
          "DATA UPDATE USERINFO PIN=5\tName=" + std::string(24, 'x') + "\tPri=0");
    CHECK(text_of(user_upsert_command({.pin = "5", .name = "a=b"})) ==
          "DATA UPDATE USERINFO PIN=5\tName=a=b\tPri=0");
    // Eight 3-byte characters fill the 24 bytes.
    std::string cjk;
    for (int i = 0; i < 8; ++i) {
        cjk += "\xe5\xbc\xa0";
    }
    CHECK(user_upsert_command({.pin = "5", .name = cjk}));
    CHECK(rejected_field(user_upsert_command({.pin = "5", .name = cjk + "a"})) == "name");
}

TEST_CASE("PINs are 1 to 24 ASCII letters or digits", "[admin_command]")
{
    CHECK(text_of(user_upsert_command({.pin = "A1b2"})) ==
          "DATA UPDATE USERINFO PIN=A1b2\tName=\tPri=0");
    CHECK(user_upsert_command({.pin = std::string(24, '9')}));
    CHECK(rejected_field(user_upsert_command({.pin = ""})) == "pin");
    CHECK(rejected_field(user_upsert_command({.pin = std::string(25, '9')})) == "pin");
    CHECK(rejected_field(user_upsert_command({.pin = "1 2"})) == "pin");
    CHECK(rejected_field(user_upsert_command({.pin = "1\t2"})) == "pin");
    CHECK(rejected_field(user_upsert_command({.pin = "1\n"})) == "pin");
    CHECK(rejected_field(user_upsert_command({.pin = "-1"})) == "pin");
    CHECK(rejected_field(user_upsert_command({.pin = "\xc3\xa9"})) == "pin");
    CHECK(rejected_field(user_upsert_command({.pin = std::string{"1\0", 2}})) == "pin");
    CHECK(user_upsert_command({.pin = ""}).error.message ==
          "must be 1 to 24 ASCII letters or digits");
}

TEST_CASE("User names with control bytes, bad UTF-8 or over 24 bytes are refused",
          "[admin_command]")
{
    for (std::string name :
         std::vector<std::string>{"Ann\tLee", "Ann\nLee", "Ann\r", std::string{"A\0", 2},
                                  "\x1b[31m", "A\x7f", std::string(25, 'x'), "\xc3", "\xff",
                                  "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
        INFO(name);
        CHECK(rejected_field(user_upsert_command({.pin = "1", .name = name})) == "name");
    }
    CHECK(user_upsert_command({.pin = "1", .name = "Ann\tLee"}).error.message ==
          "must not contain control characters (TAB, CR, LF, NUL, ...)");
    CHECK(user_upsert_command({.pin = "1", .name = std::string(25, 'x')}).error.message ==
          "must be at most 24 bytes, got 25");
}

TEST_CASE("Privilege is exactly 0, 2, 6 or 14", "[admin_command]")
{
    for (int privilege : {0, 2, 6, 14}) {
        CHECK(user_upsert_command({.pin = "1", .privilege = privilege}));
    }
    for (std::int64_t privilege : {-1LL, 1LL, 3LL, 7LL, 15LL, 4294967296LL + 6}) {
        INFO(privilege);
        CHECK(rejected_field(user_upsert_command({.pin = "1", .privilege = privilege})) ==
              "privilege");
    }
}

TEST_CASE("Passwords are empty or 1 to 8 digits", "[admin_command]")
{
    CHECK(user_upsert_command({.pin = "1", .password = "0"}));
    for (std::string password : {"123456789", "12a4", "12 4", "-1", "1\t2"}) {
        INFO(password);
        CHECK(rejected_field(user_upsert_command({.pin = "1", .password = password})) ==
              "password");
    }
}

TEST_CASE("Cards are empty or 32-bit numbers of up to 10 digits", "[admin_command]")
{
    CHECK(text_of(user_upsert_command({.pin = "1", .card = "0012345"})) ==
          "DATA UPDATE USERINFO PIN=1\tName=\tPri=0\tCard=0012345");
    for (std::string card :
         {"4294967296", "99999999999", "00000000001", "12ab", "+1", "-1", " 1", "1.5"}) {
        INFO(card);
        CHECK(rejected_field(user_upsert_command({.pin = "1", .card = card})) == "card");
    }
}

TEST_CASE("Groups are 1 to 99 and verify modes -1 to 255", "[admin_command]")
{
    CHECK(user_upsert_command({.pin = "1", .group = 1}));
    CHECK(rejected_field(user_upsert_command({.pin = "1", .group = 0})) == "group");
    CHECK(rejected_field(user_upsert_command({.pin = "1", .group = 100})) == "group");
    CHECK(text_of(user_upsert_command({.pin = "1", .verify = 255})) ==
          "DATA UPDATE USERINFO PIN=1\tName=\tPri=0\tVerify=255");
    CHECK(rejected_field(user_upsert_command({.pin = "1", .verify = -2})) == "verify");
    CHECK(rejected_field(user_upsert_command({.pin = "1", .verify = 256})) == "verify");
}

TEST_CASE("The first bad field is the one reported", "[admin_command]")
{
    CHECK(rejected_field(user_upsert_command({.pin = "", .name = "\t", .privilege = 1})) == "pin");
    CHECK(rejected_field(user_upsert_command({.pin = "1", .name = "\t", .privilege = 1})) ==
          "name");
}

TEST_CASE("A user is deleted by PIN", "[admin_command]")
{
    CHECK(text_of(user_delete_command("0042")) == "DATA DELETE USERINFO PIN=0042");
    CHECK(rejected_field(user_delete_command("")) == "pin");
    CHECK(rejected_field(user_delete_command("1\n")) == "pin");
    CHECK(rejected_field(user_delete_command(std::string(25, '1'))) == "pin");
}

TEST_CASE("An ATTLOG query carries both wall-clock bounds", "[admin_command]")
{
    CHECK(text_of(query_attlog_command(at("2024-03-01 00:00:00"), at("2024-03-31 23:59:59"))) ==
          "DATA QUERY ATTLOG StartTime=2024-03-01 00:00:00\tEndTime=2024-03-31 23:59:59");
    CHECK(text_of(query_attlog_command(at("2024-03-01 08:00:00"), at("2024-03-01 08:00:00"))) ==
          "DATA QUERY ATTLOG StartTime=2024-03-01 08:00:00\tEndTime=2024-03-01 08:00:00");
    CHECK(query_attlog_command(at("2000-01-01 00:00:00"), at("9999-12-31 23:59:59")));
}

TEST_CASE("An ATTLOG query whose start is after its end or out of range is refused",
          "[admin_command]")
{
    auto reversed = query_attlog_command(at("2024-03-02 00:00:00"), at("2024-03-01 23:59:59"));
    CHECK(rejected_field(reversed) == "to");
    CHECK(reversed.error.message == "must not be before 'from'");
    CHECK(rejected_field(query_attlog_command(at("1999-12-31 23:59:59"),
                                              at("2024-03-01 00:00:00"))) == "from");
    auto too_late = local_days{year{10000} / January / 1};
    CHECK(rejected_field(
              query_attlog_command(at("2024-03-01 00:00:00"), local_seconds{too_late})) == "to");
}

TEST_CASE("An option is set with SET OPTION name=value", "[admin_command]")
{
    CHECK(text_of(set_option_command("Delay", "30")) == "SET OPTION Delay=30");
    CHECK(text_of(set_option_command("~DeviceName", "Gate 1")) == "SET OPTION ~DeviceName=Gate 1");
    CHECK(text_of(set_option_command("Some_Option", "")) == "SET OPTION Some_Option=");
    CHECK(text_of(set_option_command("X", "a=b,c")) == "SET OPTION X=a=b,c");
    CHECK(set_option_command(std::string(64, 'a'), std::string(256, 'v')));
}

TEST_CASE("Bad option names are refused and DateTime is left to the time-sync API",
          "[admin_command]")
{
    for (std::string name :
         std::vector<std::string>{"", "a b", "a=b", "a.b", "a-b", "a\tb", "\xc3\xa9",
                                  std::string(65, 'a'), "DateTime", "datetime", "DATETIME"}) {
        INFO(name);
        CHECK(rejected_field(set_option_command(name, "1")) == "name");
    }
    CHECK(set_option_command("DateTime", "583080894").error.message ==
          "DateTime is set by the time-sync API, which knows the device's zone");
    CHECK(set_option_command("DateTimeFormat", "1"));
}

TEST_CASE("Option values with control bytes, bad UTF-8 or over 256 bytes are refused",
          "[admin_command]")
{
    for (std::string value : std::vector<std::string>{"1\n", "1\r", "a\tb", std::string{"1\0", 2},
                                                      std::string(257, 'v'), "\xc3"}) {
        INFO(value);
        CHECK(rejected_field(set_option_command("Delay", value)) == "value");
    }
    CHECK(set_option_command("Delay", "1\nREBOOT").error.message ==
          "must not contain control characters (TAB, CR, LF, NUL, ...)");
}

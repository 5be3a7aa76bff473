// The [exports.<name>] tables of the config file: read through load_settings as admsd reads them,
// and each way a table can be wrong named in one line.
#include "server/config/export_settings.hpp"
#include "server/config/settings.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace std::chrono;
using adms::server::check_exports;
using adms::server::export_table;
using adms::server::format_export_at;
using adms::server::load_settings;
using adms::server::parse_export_at;
using adms::server::valid_export_name;

namespace {

// Loads settings from a config file holding `text`; returns the error line (empty when loaded).
std::string load_error(const std::string& text)
{
    static int counter = 0;
    auto path = std::filesystem::temp_directory_path() /
                fmt::format("admsd-exports-{}-{}.toml", ::getpid(), counter++);
    std::ofstream{path} << text;
    auto loaded = load_settings({"--config", path.string()}, {{"TZ", "UTC"}});
    std::filesystem::remove(path);
    return loaded.error;
}

adms::server::settings load_ok(const std::string& text)
{
    static int counter = 0;
    auto path = std::filesystem::temp_directory_path() /
                fmt::format("admsd-exports-ok-{}-{}.toml", ::getpid(), counter++);
    std::ofstream{path} << text;
    auto loaded = load_settings({"--config", path.string()}, {{"TZ", "UTC"}});
    std::filesystem::remove(path);
    INFO(loaded.error);
    REQUIRE(loaded.value);
    return *loaded.value;
}

} // namespace

TEST_CASE("Exports come from [exports.<name>] tables with at, directory and format",
          "[settings][exports]")
{
    auto s = load_ok("time_zone = \"Europe/Berlin\"\n"
                     "[exports.payroll]\nat = \"01:30\"\ndirectory = \"/srv/payroll\"\n"
                     "format = \"csv\"\n"
                     "[exports.audit-2]\nat = \"23:59:30\"\ndirectory = \"/srv/audit\"\n");
    REQUIRE(s.exports.size() == 2);
    const auto& payroll = s.exports.at("payroll");
    CHECK(payroll.at == 1h + 30min);
    CHECK(payroll.directory == "/srv/payroll");
    CHECK(payroll.format == "csv");
    const auto& audit = s.exports.at("audit-2");
    CHECK(audit.at == 23h + 59min + 30s);
    CHECK(audit.format == "csv"); // the default
    CHECK(load_ok("").exports.empty());
}

TEST_CASE("A bad [exports.<name>] table is one error line naming the table and key",
          "[settings][exports]")
{
    const std::string ok_rest = "at = \"01:30\"\ndirectory = \"/srv/p\"\n";
    CHECK(load_error("[exports.payroll]\nat = \"01:30\"\ndirectory = \"/srv/p\"\nformat = "
                     "\"xlsx\"\n") ==
          "invalid exports.payroll.format 'xlsx': expected csv (the only format)");
    CHECK(load_error("[exports.payroll]\n" + ok_rest + "dir = \"/x\"\n") ==
          "unknown setting exports.payroll.dir (expected at, directory, format)");
    CHECK(load_error("[exports.payroll]\nat = \"1:30\"\ndirectory = \"/srv/p\"\n") ==
          "invalid exports.payroll.at '1:30': expected HH:MM (or HH:MM:SS), local time");
    CHECK(load_error("[exports.payroll]\nat = \"24:00\"\ndirectory = \"/srv/p\"\n") ==
          "invalid exports.payroll.at '24:00': expected HH:MM (or HH:MM:SS), local time");
    CHECK(load_error("[exports.payroll]\nat = 130\ndirectory = \"/srv/p\"\n") ==
          "invalid exports.payroll.at: expected a string");
    CHECK(load_error("[exports.payroll]\ndirectory = \"/srv/p\"\n") ==
          "invalid exports.payroll: missing at (HH:MM, local time)");
    CHECK(load_error("[exports.payroll]\nat = \"01:30\"\n") ==
          "invalid exports.payroll: missing directory");
    CHECK(load_error("[exports.payroll]\nat = \"01:30\"\ndirectory = \"\"\n") ==
          "invalid exports.payroll: missing directory");
    CHECK(load_error("exports = 3\n") == "invalid exports: expected a table of [exports.<name>]");
    CHECK(load_error("[exports]\npayroll = \"x\"\n") ==
          "invalid exports.payroll: expected a table");
    CHECK(load_error("[exports.\"pay roll\"]\n" + ok_rest) ==
          "invalid exports.pay roll: the name must be 1 to 64 letters, digits, '-', '_' or '.', "
          "not starting with '.'");
    CHECK(load_error("[exports.\"a/b\"]\n" + ok_rest).starts_with("invalid exports.a/b: the name"));
    CHECK(load_error("[exports.\".hidden\"]\n" + ok_rest)
              .starts_with("invalid exports..hidden: the name"));
    // Control characters in a name are shown escaped, never written raw to a terminal.
    CHECK(load_error("[exports.\"a\\u001bb\"]\n" + ok_rest)
              .starts_with("invalid exports.a\\x1bb: the name"));
    // Two exports writing the same file names into one directory.
    CHECK(load_error("[exports.a]\nat = \"01:00\"\ndirectory = \"/srv/p\"\n"
                     "[exports.b]\nat = \"02:00\"\ndirectory = \"/srv/p/\"\n") ==
          "invalid exports.b.directory '/srv/p/': exports.a writes there too");
}

TEST_CASE("Export names, times of day and the checks settings built in code go through",
          "[exports]")
{
    CHECK(valid_export_name("payroll"));
    CHECK(valid_export_name("Payroll_2.daily-1"));
    CHECK(valid_export_name(std::string(64, 'a')));
    CHECK_FALSE(valid_export_name(std::string(65, 'a')));
    CHECK_FALSE(valid_export_name(""));
    CHECK_FALSE(valid_export_name(".."));
    CHECK_FALSE(valid_export_name("a b"));
    CHECK_FALSE(valid_export_name("a%2Fb"));

    CHECK(parse_export_at("00:00") == 0s);
    CHECK(parse_export_at("23:59:59") == 23h + 59min + 59s);
    CHECK(parse_export_at("01:30:05") == 1h + 30min + 5s);
    for (auto bad : {"", "1:30", "01:60", "01:30:60", "01:30:5", "01-30", "01:30:", "01:30:xx"}) {
        INFO(bad);
        CHECK_FALSE(parse_export_at(bad));
    }
    CHECK(format_export_at(1h + 30min) == "01:30");
    CHECK(format_export_at(23h + 59min + 59s) == "23:59:59");

    export_table table;
    table["payroll"] = {.at = 1h, .directory = "/srv/p", .format = "csv"};
    CHECK(check_exports(table).empty());
    table["payroll"].format = "json";
    CHECK(check_exports(table) ==
          "invalid exports.payroll.format 'json': expected csv (the only format)");
    table["payroll"].format = "csv";
    table["payroll"].at = 24h;
    CHECK(check_exports(table) == "invalid exports.payroll.at: expected a time of day");
    table["payroll"].at = 1h;
    table["bad name"] = {.at = 1h, .directory = "/srv/q", .format = "csv"};
    CHECK(check_exports(table).starts_with("invalid exports.bad name: the name must be"));
}

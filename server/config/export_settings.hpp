#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace adms::server {

// One scheduled payroll export, from the config file's [exports.<name>] table: every day at
// `at` (local time in the server's time_zone) the file of the previous day is written to
// `directory`.
struct export_settings {
    std::chrono::seconds at{};  // time of day, 00:00:00 to 23:59:59
    std::string directory;      // created when missing; relative to the working directory
    std::string format = "csv"; // the only format: the columns of GET /punches.csv
};

// The exports by name.
using export_table = std::map<std::string, export_settings, std::less<>>;

// Whether `name` can name an export in an admin URL path and a log line as it is: 1 to 64
// letters, digits, '-', '_' or '.', not starting with '.'.
bool valid_export_name(std::string_view name);
inline constexpr std::string_view export_name_rule =
    "1 to 64 letters, digits, '-', '_' or '.', not starting with '.'";

// Parses an export's `at`: "HH:MM" or "HH:MM:SS"; nullopt otherwise.
std::optional<std::chrono::seconds> parse_export_at(std::string_view text);
// `at` as "HH:MM", or "HH:MM:SS" when it has seconds.
std::string format_export_at(std::chrono::seconds at);

// Why a set of exports cannot run, naming the table ("exports.payroll: ..."), or empty when it
// can: bad names, an empty directory, a format other than csv, and two exports sharing a
// directory (their files would have the same names). Settings built in code (tests, embedders)
// are checked with it too.
std::string check_exports(const export_table& exports);

} // namespace adms::server

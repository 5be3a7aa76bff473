#pragma once

// The values settings take, each read (and shown) in one place, whoever gives them: flags, the
// environment and the config file, its [devices.<SN>] tables, and the admin API's PATCH.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace adms::server {

// How the clock of one device is set.
enum class time_dialect {
    att, // SET OPTIONS DateTime=<ZK local> (the default; also what ZKTeco's own software sends)
    att_singular, // SET OPTION DateTime=<ZK local>, for firmware that wants the singular verb
};

// "att" or "att-singular".
std::optional<time_dialect> parse_time_dialect(std::string_view text);
std::string_view to_string(time_dialect dialect);

// Parses "HH:MM" into minutes after midnight.
std::optional<std::chrono::minutes> parse_time_of_day(std::string_view text);
// Minutes after midnight as "HH:MM".
std::string format_time_of_day(std::chrono::minutes minutes);

// Parses a duration such as "90s", "15m", "6h", "1d" (a bare number is seconds).
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

// A comma-separated list of 1 to 20 durations of at least 1s ("5s,30s,1m"), e.g. a retry
// schedule; spaces around entries are ignored.
std::optional<std::vector<std::chrono::seconds>> parse_schedule(std::string_view text);
// A schedule as "5s,30s,1m".
std::string format_schedule(const std::vector<std::chrono::seconds>& schedule);

// A periodic time-sync interval: a duration of at least one minute, or "off" (zero minutes: no
// periodic sync, also when a wider setting has one).
std::optional<std::chrono::minutes> parse_sync_interval(std::string_view text);
// An interval as "6h" or "90m"; zero as "off".
std::string format_sync_interval(std::chrono::minutes interval);

// Whether an alias can name a device in an admin URL path without quoting or clashing with a
// route: 1 to 64 letters, digits, '-', '_' or '.', and not "sync-time".
bool valid_alias(std::string_view alias);
inline constexpr std::string_view alias_rule =
    "1 to 64 letters, digits, '-', '_' or '.' (and not 'sync-time')";

// Printable ASCII without spaces (keys, tokens, client ids).
bool printable_without_spaces(std::string_view text);

// An address to listen on: "host:port", IPv6 as "[::1]:port" (the brackets are not part of
// `host`).
struct listen_address {
    std::string host;
    unsigned short port = 0;
};
// Splits "host:port" with a port from 0 to 65535; nullopt when it is not of that shape. The
// host is not checked here (the listener reports a host that is not an IP address).
std::optional<listen_address> split_listen(std::string_view text);

} // namespace adms::server

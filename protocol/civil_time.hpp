#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace adms::protocol {

// Parses a device wall-clock time "YYYY-MM-DD HH:MM:SS" (a 'T' separator is also accepted).
// Returns nullopt for anything else, including impossible dates (2025-02-30) and times (25:00,
// 12:60, a leap second 23:59:60). The result has no zone: the device's zone places it in UTC.
std::optional<std::chrono::local_seconds> parse_civil_time(std::string_view text);

// Formats a wall-clock time as "YYYY-MM-DD HH:MM:SS" (or with `separator` between date and time).
std::string format_civil_time(std::chrono::local_seconds time, char separator = ' ');

// Parses a civil date "YYYY-MM-DD" (exactly that shape, a real date); nullopt otherwise.
std::optional<std::chrono::local_days> parse_civil_date(std::string_view text);

// Formats a civil date as "YYYY-MM-DD".
std::string format_civil_date(std::chrono::local_days day);

// Formats a wall-clock time as "YYYYMMDDHHMMSS".
std::string format_compact_time(std::chrono::local_seconds time);

} // namespace adms::protocol

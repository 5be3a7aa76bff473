#include "protocol/civil_time.hpp"

#include <fmt/format.h>

namespace adms::protocol {
namespace {

// Reads `width` ASCII digits at `pos`; nullopt if any is not a digit.
std::optional<int> read_digits(std::string_view text, std::size_t pos, std::size_t width)
{
    int value = 0;
    for (std::size_t i = pos; i < pos + width; ++i) {
        char c = text[i];
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        value = value * 10 + (c - '0');
    }
    return value;
}

struct civil_fields {
    std::chrono::year_month_day date;
    std::chrono::hh_mm_ss<std::chrono::seconds> time;
};

civil_fields split(std::chrono::local_seconds time)
{
    auto day = std::chrono::floor<std::chrono::days>(time);
    return {std::chrono::year_month_day{day}, std::chrono::hh_mm_ss{time - day}};
}

} // namespace

std::optional<std::chrono::local_seconds> parse_civil_time(std::string_view text)
{
    // "YYYY-MM-DD HH:MM:SS": exactly 19 characters with fixed separators.
    if (text.size() != 19 || text[4] != '-' || text[7] != '-' ||
        (text[10] != ' ' && text[10] != 'T') || text[13] != ':' || text[16] != ':') {
        return std::nullopt;
    }
    auto year = read_digits(text, 0, 4);
    auto month = read_digits(text, 5, 2);
    auto day = read_digits(text, 8, 2);
    auto hour = read_digits(text, 11, 2);
    auto minute = read_digits(text, 14, 2);
    auto second = read_digits(text, 17, 2);
    if (!year || !month || !day || !hour || !minute || !second) {
        return std::nullopt;
    }
    std::chrono::year_month_day date{std::chrono::year{*year},
                                     std::chrono::month{static_cast<unsigned>(*month)},
                                     std::chrono::day{static_cast<unsigned>(*day)}};
    if (!date.ok() || *hour > 23 || *minute > 59 || *second > 59) {
        return std::nullopt;
    }
    return std::chrono::local_days{date} + std::chrono::hours{*hour} +
           std::chrono::minutes{*minute} + std::chrono::seconds{*second};
}

std::string format_civil_time(std::chrono::local_seconds time, char separator)
{
    auto [date, tod] = split(time);
    int year = static_cast<int>(date.year());
    if (year >= 0 && year <= 9999) {
        // Every stored punch goes through here: digits by hand, one allocation-free string.
        std::string out = "0000-00-00 00:00:00";
        auto two = [&](std::size_t at, long long v) {
            out[at] = static_cast<char>('0' + v / 10);
            out[at + 1] = static_cast<char>('0' + v % 10);
        };
        two(0, year / 100);
        two(2, year % 100);
        two(5, static_cast<unsigned>(date.month()));
        two(8, static_cast<unsigned>(date.day()));
        out[10] = separator;
        two(11, tod.hours().count());
        two(14, tod.minutes().count());
        two(17, tod.seconds().count());
        return out;
    }
    return fmt::format("{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}", static_cast<int>(date.year()),
                       static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                       separator, tod.hours().count(), tod.minutes().count(),
                       tod.seconds().count());
}

std::optional<std::chrono::local_days> parse_civil_date(std::string_view text)
{
    if (text.size() != 10) {
        return std::nullopt;
    }
    // The same fields as a whole time at midnight, so both read dates by one rule.
    std::string at_midnight{text};
    at_midnight += " 00:00:00";
    auto time = parse_civil_time(at_midnight);
    if (!time) {
        return std::nullopt;
    }
    return std::chrono::floor<std::chrono::days>(*time);
}

std::string format_civil_date(std::chrono::local_days day)
{
    return format_civil_time(day).substr(0, 10);
}

std::string format_compact_time(std::chrono::local_seconds time)
{
    auto [date, tod] = split(time);
    return fmt::format("{:04}{:02}{:02}{:02}{:02}{:02}", static_cast<int>(date.year()),
                       static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                       tod.hours().count(), tod.minutes().count(), tod.seconds().count());
}

} // namespace adms::protocol

#include "protocol/zk_time.hpp"

#include "protocol/civil_time.hpp"

#include <fmt/format.h>

#include <array>
#include <cstdlib>

namespace adms::protocol {
namespace {

constexpr std::int64_t seconds_per_day = 86400;
constexpr std::int64_t days_per_month = 31;
constexpr std::int64_t days_per_year = 12 * days_per_month;

// Sign and magnitude of an offset in whole minutes (truncated toward zero).
std::pair<char, std::int64_t> offset_minutes(std::chrono::seconds utc_offset)
{
    auto minutes = std::chrono::duration_cast<std::chrono::minutes>(utc_offset).count();
    return {minutes < 0 ? '-' : '+', std::llabs(minutes)};
}

} // namespace

std::optional<std::int64_t> encode_zk_datetime(std::chrono::local_seconds time)
{
    auto day = std::chrono::floor<std::chrono::days>(time);
    std::chrono::year_month_day date{day};
    int year = static_cast<int>(date.year());
    if (year < 2000) {
        return std::nullopt;
    }
    std::int64_t days = (year - 2000) * days_per_year +
                        (static_cast<unsigned>(date.month()) - 1) * days_per_month +
                        (static_cast<unsigned>(date.day()) - 1);
    return days * seconds_per_day + (time - day).count();
}

std::optional<std::chrono::local_seconds> decode_zk_datetime(std::int64_t value)
{
    // Bound the year so the arithmetic below cannot overflow `int`.
    constexpr std::int64_t max_value = std::int64_t{8000} * days_per_year * seconds_per_day;
    if (value < 0 || value >= max_value) {
        return std::nullopt;
    }
    std::int64_t days = value / seconds_per_day;
    std::int64_t second_of_day = value % seconds_per_day;
    std::chrono::year_month_day date{
        std::chrono::year{static_cast<int>(2000 + days / days_per_year)},
        std::chrono::month{static_cast<unsigned>(days % days_per_year / days_per_month + 1)},
        std::chrono::day{static_cast<unsigned>(days % days_per_month + 1)}};
    if (!date.ok()) {
        return std::nullopt;
    }
    return std::chrono::local_days{date} + std::chrono::seconds{second_of_day};
}

int time_zone_option(std::chrono::seconds utc_offset)
{
    auto minutes = std::chrono::duration_cast<std::chrono::minutes>(utc_offset).count();
    if (minutes % 60 == 0 && minutes >= -12 * 60 && minutes <= 12 * 60) {
        return static_cast<int>(minutes / 60);
    }
    return static_cast<int>(minutes);
}

std::string format_offset_hhmm(std::chrono::seconds utc_offset)
{
    auto [sign, minutes] = offset_minutes(utc_offset);
    return fmt::format("{}{:02}{:02}", sign, minutes / 60, minutes % 60);
}

std::string format_offset_iso(std::chrono::seconds utc_offset)
{
    auto [sign, minutes] = offset_minutes(utc_offset);
    return fmt::format("{}{:02}:{:02}", sign, minutes / 60, minutes % 60);
}

std::string render_rtdata_time(std::chrono::sys_seconds now, std::chrono::seconds utc_offset)
{
    auto utc_as_civil = std::chrono::local_seconds{now.time_since_epoch()};
    auto encoded = encode_zk_datetime(utc_as_civil);
    if (!encoded) {
        return {};
    }
    return fmt::format("DateTime={},ServerTZ={}", *encoded, format_offset_hhmm(utc_offset));
}

std::string render_p320_time(std::chrono::sys_seconds now, std::chrono::seconds utc_offset)
{
    auto local = std::chrono::local_seconds{now.time_since_epoch()} + utc_offset;
    return fmt::format("Time={}{}", format_civil_time(local, 'T'), format_offset_iso(utc_offset));
}

std::string format_http_date(std::chrono::sys_seconds time)
{
    static constexpr std::array<const char*, 7> weekdays{"Sun", "Mon", "Tue", "Wed",
                                                         "Thu", "Fri", "Sat"};
    static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    auto day = std::chrono::floor<std::chrono::days>(time);
    std::chrono::year_month_day date{day};
    std::chrono::hh_mm_ss tod{time - day};
    return fmt::format(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        weekdays[std::chrono::weekday{day}.c_encoding()], static_cast<unsigned>(date.day()),
        months[static_cast<unsigned>(date.month()) - 1], static_cast<int>(date.year()),
        tod.hours().count(), tod.minutes().count(), tod.seconds().count());
}

} // namespace adms::protocol

#include "server/config/setting_values.hpp"

#include "protocol/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace adms::server {

using protocol::text::parse_integer;

std::optional<time_dialect> parse_time_dialect(std::string_view text)
{
    if (text == "att") {
        return time_dialect::att;
    }
    if (text == "att-singular") {
        return time_dialect::att_singular;
    }
    return std::nullopt;
}

std::string_view to_string(time_dialect dialect)
{
    return dialect == time_dialect::att_singular ? "att-singular" : "att";
}

std::optional<std::chrono::minutes> parse_time_of_day(std::string_view text)
{
    if (text.size() != 5 || text[2] != ':') {
        return std::nullopt;
    }
    auto hours = parse_integer<long long>(text.substr(0, 2));
    auto minutes = parse_integer<long long>(text.substr(3, 2));
    if (!hours || !minutes || *hours < 0 || *hours > 23 || *minutes < 0 || *minutes > 59) {
        return std::nullopt;
    }
    return std::chrono::minutes{*hours * 60 + *minutes};
}

std::string format_time_of_day(std::chrono::minutes minutes)
{
    return fmt::format("{:02}:{:02}", minutes.count() / 60, minutes.count() % 60);
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text)
{
    if (text.empty()) {
        return std::nullopt;
    }
    long long unit = 0; // set by a unit suffix; a bare number is seconds
    switch (text.back()) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        break;
    }
    if (unit != 0) {
        text.remove_suffix(1);
    } else {
        unit = 1;
    }
    auto value = parse_integer<long long>(text);
    if (!value || *value < 0 || *value > 366LL * 86400 / unit) {
        return std::nullopt;
    }
    return std::chrono::seconds{*value * unit};
}

std::optional<std::chrono::minutes> parse_sync_interval(std::string_view text)
{
    if (text == "off") {
        return std::chrono::minutes{0};
    }
    auto duration = parse_duration(text);
    if (!duration || *duration < std::chrono::minutes{1}) {
        return std::nullopt;
    }
    return std::chrono::duration_cast<std::chrono::minutes>(*duration);
}

std::optional<std::vector<std::chrono::seconds>> parse_schedule(std::string_view text)
{
    std::vector<std::chrono::seconds> schedule;
    for (auto entry : protocol::text::split(text, ',')) {
        auto wait = parse_duration(protocol::text::trim_spaces(entry));
        if (!wait || *wait < std::chrono::seconds{1} || schedule.size() == 20) {
            return std::nullopt;
        }
        schedule.push_back(*wait);
    }
    if (schedule.empty()) {
        return std::nullopt;
    }
    return schedule;
}

std::string format_schedule(const std::vector<std::chrono::seconds>& schedule)
{
    std::string text;
    for (auto wait : schedule) {
        auto s = wait.count();
        auto entry = s % 86400 == 0  ? fmt::format("{}d", s / 86400)
                     : s % 3600 == 0 ? fmt::format("{}h", s / 3600)
                     : s % 60 == 0   ? fmt::format("{}m", s / 60)
                                     : fmt::format("{}s", s);
        text += (text.empty() ? "" : ",") + entry;
    }
    return text;
}

std::string format_sync_interval(std::chrono::minutes interval)
{
    if (interval.count() <= 0) {
        return "off";
    }
    return interval.count() % 60 == 0 ? fmt::format("{}h", interval.count() / 60)
                                      : fmt::format("{}m", interval.count());
}

bool valid_alias(std::string_view alias)
{
    if (alias.empty() || alias.size() > 64 || alias == "sync-time") {
        return false;
    }
    return std::all_of(alias.begin(), alias.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

bool printable_without_spaces(std::string_view text)
{
    return std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 127; });
}

std::optional<listen_address> split_listen(std::string_view text)
{
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        return std::nullopt;
    }
    auto port = parse_integer<long long>(text.substr(colon + 1));
    if (!port || *port < 0 || *port > 65535) {
        return std::nullopt;
    }
    auto host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    return listen_address{std::string{host}, static_cast<unsigned short>(*port)};
}

} // namespace adms::server

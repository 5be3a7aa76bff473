#include "protocol/gettime_reply.hpp"

#include "protocol/civil_time.hpp"

#include <fmt/format.h>
#include <pugixml.hpp>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace adms::protocol {

std::optional<time_format> parse_time_format(std::string_view name)
{
    std::string lower{name};
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (auto format : {time_format::standard, time_format::iso, time_format::compact,
                        time_format::unix_seconds}) {
        if (lower == time_format_name(format)) {
            return format;
        }
    }
    return std::nullopt;
}

std::string_view time_format_name(time_format format)
{
    switch (format) {
    case time_format::standard:
        return "standard";
    case time_format::iso:
        return "iso";
    case time_format::compact:
        return "compact";
    case time_format::unix_seconds:
        return "unix";
    }
    return "standard";
}

std::string render_gettime_reply(std::chrono::sys_seconds now, std::chrono::seconds utc_offset,
                                 time_format format, std::string_view command)
{
    auto local = std::chrono::local_seconds{now.time_since_epoch()} + utc_offset;
    std::string time_text;
    switch (format) {
    case time_format::standard:
        time_text = format_civil_time(local, ' ');
        break;
    case time_format::iso:
        time_text = format_civil_time(local, 'T');
        break;
    case time_format::compact:
        time_text = format_compact_time(local);
        break;
    case time_format::unix_seconds:
        time_text = fmt::format_int(now.time_since_epoch().count()).str();
        break;
    }

    pugi::xml_document document;
    auto response = document.append_child("Response");
    response.append_child("Cmd").text().set(std::string{command}.c_str());
    response.append_child("Status").text().set("OK");
    response.append_child("Time").text().set(time_text.c_str());
    std::ostringstream out;
    document.save(out, "", pugi::format_raw | pugi::format_no_declaration);
    return out.str();
}

} // namespace adms::protocol

#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace adms::protocol {

// The time formats of the Django reference server's GetTime reply.
enum class time_format {
    standard,     // YYYY-MM-DD HH:MM:SS (local)
    iso,          // YYYY-MM-DDTHH:MM:SS (local)
    compact,      // YYYYMMDDHHMMSS (local)
    unix_seconds, // seconds since 1970-01-01T00:00:00Z
};

// Reads a format name: "standard", "iso", "compact" or "unix" (case-insensitive).
std::optional<time_format> parse_time_format(std::string_view name);

// The name parse_time_format() reads.
std::string_view time_format_name(time_format format);

// Renders `<Response><Cmd>GetTime</Cmd><Status>OK</Status><Time>…</Time></Response>` for the
// instant `now` shown in a zone whose offset at that instant is `utc_offset`. `command` names the
// reply's Cmd (the reference server answers `cmd=settime` with a SetTime reply of the same shape).
std::string render_gettime_reply(std::chrono::sys_seconds now, std::chrono::seconds utc_offset,
                                 time_format format, std::string_view command = "GetTime");

} // namespace adms::protocol

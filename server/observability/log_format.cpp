#include "server/observability/log_format.hpp"

#include "protocol/civil_time.hpp"
#include "protocol/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace adms::server {
namespace {

// Length of the valid UTF-8 sequence starting at `i`, or 0 when it is not valid.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i)
{
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    unsigned char lead = byte(i);
    std::size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC2 ? 2 : 0;
    if (length == 0 || lead > 0xF4 || i + length > text.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) {
            return 0;
        }
    }
    unsigned char second = byte(i + 1);
    // Reject overlong forms, UTF-16 surrogates and code points past U+10FFFF.
    if ((lead == 0xE0 && second < 0xA0) || (lead == 0xED && second > 0x9F) ||
        (lead == 0xF0 && second < 0x90) || (lead == 0xF4 && second > 0x8F)) {
        return 0;
    }
    return length;
}

} // namespace

std::string escape_for_log(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            out += static_cast<char>(c);
            ++i;
        } else if (c == '\\') {
            out += "\\\\";
            ++i;
        } else if (std::size_t length = c >= 0x80 ? utf8_sequence_length(text, i) : 0) {
            out.append(text.substr(i, length));
            i += length;
        } else {
            out += fmt::format("\\x{:02x}", c);
            ++i;
        }
    }
    return out;
}

std::string django_request_line(std::chrono::local_seconds server_local_time,
                                std::string_view method, std::string_view target,
                                unsigned http_version, unsigned status, std::size_t body_bytes)
{
    static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    auto day = std::chrono::floor<std::chrono::days>(server_local_time);
    std::chrono::year_month_day date{day};
    std::chrono::hh_mm_ss tod{server_local_time - day};
    return fmt::format("[{:02}/{}/{:04} {:02}:{:02}:{:02}] \"{} {} HTTP/{}.{}\" {} {}",
                       static_cast<unsigned>(date.day()),
                       months[static_cast<unsigned>(date.month()) - 1],
                       static_cast<int>(date.year()), tod.hours().count(), tod.minutes().count(),
                       tod.seconds().count(), escape_for_log(method), escape_for_log(target),
                       http_version / 10, http_version % 10, status, body_bytes);
}

std::string time_sync_block(const time_sync_event& event)
{
    auto utc_as_civil = std::chrono::local_seconds{event.server_utc.time_since_epoch()};
    std::string block =
        fmt::format("\xF0\x9F\x95\x90 Time sync request from device {}\n"
                    "   Server UTC time: {}\n"
                    "   Server local time ({}): {}\n"
                    "   Sending to device: {}\n"
                    "   \xF0\x9F\x93\xA4 Sending: {}",
                    escape_for_log(event.serial_number), protocol::format_civil_time(utc_as_civil),
                    event.zone_name, protocol::format_civil_time(event.server_local),
                    protocol::format_civil_time(event.device_local), escape_for_log(event.sending));
    if (!event.reason.empty()) {
        block += fmt::format(" (reason: {})", event.reason);
    }
    return block;
}

std::string redact_target(std::string_view target)
{
    auto question = target.find('?');
    if (question == std::string_view::npos) {
        return std::string{target};
    }
    std::string out{target.substr(0, question + 1)};
    auto query = target.substr(question + 1);
    std::size_t start = 0;
    while (start <= query.size()) {
        auto amp = std::min(query.find('&', start), query.size());
        auto param = query.substr(start, amp - start);
        auto eq = param.find('=');
        auto name = param.substr(0, eq);
        constexpr std::string_view secret = "pushcommkey";
        bool is_secret = protocol::text::iequals(name, secret);
        if (is_secret && eq != std::string_view::npos) {
            out += name;
            out += "=***";
        } else {
            out += param;
        }
        if (amp < query.size()) {
            out += '&';
        }
        start = amp + 1;
    }
    return out;
}

} // namespace adms::server

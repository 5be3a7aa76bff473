#include "tests/sim/sim_wire.hpp"

#include "protocol/text.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace adms::sim {
namespace {

namespace text = protocol::text;

// ASCII case-insensitive equality.
bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
               return lower(x) == lower(y);
           });
}

// True when the comma-separated header value `list` holds `token` (case-insensitive).
bool has_token(std::string_view list, std::string_view token)
{
    for (auto item : text::split(list, ',')) {
        if (iequals(text::trim_spaces(item), token)) {
            return true;
        }
    }
    return false;
}

} // namespace

std::optional<std::size_t> find_head_end(std::string_view data)
{
    for (std::size_t pos = data.find('\n'); pos != std::string_view::npos;
         pos = data.find('\n', pos + 1)) {
        if (pos + 1 < data.size() && data[pos + 1] == '\n') {
            return pos + 2;
        }
        if (pos + 2 < data.size() && data[pos + 1] == '\r' && data[pos + 2] == '\n') {
            return pos + 3;
        }
    }
    return std::nullopt;
}

std::optional<reply_head> parse_reply_head(std::string_view head)
{
    reply_head r;
    text::line_reader lines{head};
    auto status_line = lines.next();
    // "HTTP/1.1 200 OK": the version, a space, three digits, then a space or the end.
    if (!status_line || status_line->text.size() < 12 ||
        !status_line->text.starts_with("HTTP/1.") || status_line->text[8] != ' ' ||
        (status_line->text.size() > 12 && status_line->text[12] != ' ')) {
        return std::nullopt;
    }
    auto status = text::parse_integer<int>(status_line->text.substr(9, 3));
    if (!status || *status < 100) {
        return std::nullopt;
    }
    r.status = *status;
    bool http10 = status_line->text[7] == '0';
    bool keep_alive = false;
    while (auto line = lines.next()) {
        if (line->text.empty()) {
            break;
        }
        auto colon = line->text.find(':');
        if (colon == std::string_view::npos) {
            continue;
        }
        auto name = line->text.substr(0, colon);
        auto value = text::trim_spaces(line->text.substr(colon + 1));
        if (iequals(name, "Content-Length")) {
            auto length = text::parse_integer<std::size_t>(value);
            if (!length || (r.content_length && *r.content_length != *length)) {
                return std::nullopt;
            }
            r.content_length = length;
        } else if (iequals(name, "Retry-After")) {
            if (auto seconds = text::parse_integer<std::int64_t>(value); seconds && *seconds >= 0) {
                r.retry_after_s = seconds;
            }
        } else if (iequals(name, "Connection")) {
            r.close = r.close || has_token(value, "close");
            keep_alive = keep_alive || has_token(value, "keep-alive");
        } else if (iequals(name, "Transfer-Encoding")) {
            r.chunked = r.chunked || has_token(value, "chunked");
        }
    }
    if (http10 && !keep_alive) {
        r.close = true;
    }
    return r;
}

std::optional<handshake_options> parse_handshake_reply(std::string_view body)
{
    constexpr std::string_view prefix = "GET OPTION FROM:";
    text::line_reader lines{body};
    auto first = lines.next();
    if (!first || !first->text.starts_with(prefix)) {
        return std::nullopt;
    }
    handshake_options h;
    h.serial_number = std::string{text::trim_spaces(first->text.substr(prefix.size()))};
    if (h.serial_number.empty()) {
        return std::nullopt;
    }
    while (auto line = lines.next()) {
        auto equals = line->text.find('=');
        if (equals == std::string_view::npos) {
            continue;
        }
        auto key = text::trim_spaces(line->text.substr(0, equals));
        auto value = text::trim_spaces(line->text.substr(equals + 1));
        h.options.push_back({std::string{key}, std::string{value}});
        if (key == "Delay") {
            h.delay = text::parse_integer<int>(value);
        } else if (key == "ErrorDelay") {
            h.error_delay = text::parse_integer<int>(value);
        } else if (key == "TimeZone") {
            h.time_zone = text::parse_integer<int>(value);
        } else if (key == "ATTLOGStamp" || key == "Stamp") {
            h.attlog_stamp = std::string{value};
        }
    }
    return h;
}

std::chrono::seconds time_zone_offset(int time_zone)
{
    if (time_zone >= -12 && time_zone <= 12) {
        return std::chrono::hours{time_zone};
    }
    return std::chrono::minutes{time_zone};
}

protocol::parse_result<protocol::device_command> parse_command_reply(std::string_view body)
{
    protocol::parse_result<protocol::device_command> result;
    if (text::trim_spaces(body) == "OK") {
        return result;
    }
    text::line_reader lines{body};
    while (auto line = lines.next()) {
        if (text::is_blank(line->text)) {
            continue;
        }
        auto reject = [&](std::string reason) {
            result.rejected.push_back({line->number, std::string{line->text}, std::move(reason)});
        };
        if (!line->text.starts_with("C:")) {
            reject("not a C:<id>:<command> line");
            continue;
        }
        auto rest = line->text.substr(2);
        auto colon = rest.find(':');
        if (colon == std::string_view::npos) {
            reject("no ':' after the command id");
            continue;
        }
        auto id = rest.substr(0, colon);
        auto command = rest.substr(colon + 1);
        if (!protocol::is_valid_command_id(id)) {
            reject(fmt::format("invalid command id {}", text::quote(id)));
            continue;
        }
        if (text::trim_spaces(command).empty()) {
            reject("empty command");
            continue;
        }
        result.records.push_back({std::string{id}, std::string{command}});
    }
    return result;
}

std::optional<std::int64_t> datetime_command_value(std::string_view command)
{
    command = text::trim_spaces(command);
    std::string_view settings;
    if (command.starts_with("SET OPTIONS ")) {
        settings = command.substr(12);
    } else if (command.starts_with("SET OPTION ")) {
        settings = command.substr(11);
    } else {
        return std::nullopt;
    }
    for (auto item : text::split(settings, ',')) {
        item = text::trim_spaces(item);
        auto equals = item.find('=');
        if (equals == std::string_view::npos ||
            text::trim_spaces(item.substr(0, equals)) != "DateTime") {
            continue;
        }
        auto value = text::trim_spaces(item.substr(equals + 1));
        if (!text::is_all_digits(value)) {
            return std::nullopt;
        }
        return text::parse_integer<std::int64_t>(value);
    }
    return std::nullopt;
}

std::string command_result_name(std::string_view command)
{
    command = text::trim_spaces(command);
    auto words = text::split(command, ' ');
    auto word = [&](std::size_t i) { return i < words.size() ? words[i] : std::string_view{}; };
    if (word(0) == "DATA") {
        return "DATA";
    }
    if (word(0) == "CLEAR") {
        return fmt::format("CLEAR_{}", word(1));
    }
    if ((word(0) == "SET" && (word(1) == "OPTION" || word(1) == "OPTIONS")) ||
        (word(0) == "RELOAD" && word(1) == "OPTIONS")) {
        return fmt::format("{} {}", word(0), word(1));
    }
    if (word(0) == "SHELL") {
        return "Shell";
    }
    return std::string{word(0)};
}

std::string render_command_result(std::string_view id, int return_code, std::string_view name)
{
    return fmt::format("ID={}&Return={}&CMD={}", id, return_code, name);
}

std::string url_encode(std::string_view value)
{
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(value.size() * 3);
    for (char c : value) {
        auto byte = static_cast<unsigned char>(c);
        bool plain = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                     (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' || byte == '_' ||
                     byte == '~';
        if (plain) {
            out += c;
        } else {
            out += '%';
            out += hex[byte >> 4];
            out += hex[byte & 0x0f];
        }
    }
    return out;
}

bool is_attlog_acknowledgement(int status, std::string_view body, std::size_t lines)
{
    if (status != 200) {
        return false;
    }
    if (body == "OK") {
        return true;
    }
    return body.starts_with("OK:") && text::is_all_digits(body.substr(3)) &&
           text::parse_integer<std::size_t>(body.substr(3)) == lines;
}

} // namespace adms::sim

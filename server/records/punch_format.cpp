#include "server/records/punch_format.hpp"

#include "protocol/civil_time.hpp"
#include "protocol/zk_time.hpp"
#include "server/observability/log_format.hpp"

#include <boost/json/value.hpp>
#include <fmt/format.h>

#include <cctype>

namespace adms::server {
namespace {

// Parses "+HH:MM", "+HHMM", "+HH" (or '-'); nullopt otherwise.
std::optional<std::chrono::minutes> parse_offset(std::string_view text)
{
    if (text.size() < 3 || (text[0] != '+' && text[0] != '-')) {
        return std::nullopt;
    }
    std::string digits;
    for (std::size_t i = 1; i < text.size(); ++i) {
        if (text[i] == ':' && i == 3) {
            continue;
        }
        if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
            return std::nullopt;
        }
        digits += text[i];
    }
    if (digits.size() != 2 && digits.size() != 4) {
        return std::nullopt;
    }
    int hours = std::stoi(digits.substr(0, 2));
    int minutes = digits.size() == 4 ? std::stoi(digits.substr(2, 2)) : 0;
    if (hours > 14 || minutes > 59) {
        return std::nullopt;
    }
    std::chrono::minutes offset{hours * 60 + minutes};
    return text[0] == '-' ? -offset : offset;
}

// The punch's instant as ISO 8601 with the offset it was placed with on arrival: its local time
// as sent, and the offset between that and its UTC instant. Self-consistent even after the
// device's zone is changed (which affects later punches only).
std::string punch_time(const stored_punch& punch, const tz::zone& zone)
{
    if (auto local = protocol::parse_civil_time(punch.local_time)) {
        auto offset =
            std::chrono::seconds{local->time_since_epoch() - punch.utc->time_since_epoch()};
        return protocol::format_civil_time(*local, 'T') + protocol::format_offset_iso(offset);
    }
    return format_iso(*punch.utc, zone);
}

} // namespace

std::string format_iso(instant t, const tz::zone& zone, bool milliseconds)
{
    auto seconds = std::chrono::floor<std::chrono::seconds>(t);
    auto local = protocol::format_civil_time(zone.to_local(seconds), 'T');
    auto offset = protocol::format_offset_iso(zone.utc_offset(seconds));
    if (!milliseconds) {
        return local + offset;
    }
    return fmt::format("{}.{:03}{}", local, (t - seconds).count(), offset);
}

std::string format_iso_utc(std::chrono::sys_seconds t)
{
    return protocol::format_civil_time(std::chrono::local_seconds{t.time_since_epoch()}, 'T') + "Z";
}

time_bound_result parse_time_bound(std::string_view text, bool upper)
{
    constexpr std::string_view expected =
        "expected YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS (the devices' wall clock) or the same with Z "
        "or an offset such as +03:00";
    if (text.size() == 10) {
        auto day = protocol::parse_civil_time(fmt::format("{} 00:00:00", text));
        if (!day) {
            return {std::nullopt, std::string{expected}};
        }
        auto start = upper ? *day + std::chrono::days{1} : *day;
        return {time_bound{protocol::format_civil_time(start), std::nullopt}, {}};
    }
    if (text.size() < 19) {
        return {std::nullopt, std::string{expected}};
    }
    auto civil = protocol::parse_civil_time(text.substr(0, 19));
    if (!civil) {
        return {std::nullopt, std::string{expected}};
    }
    auto rest = text.substr(19);
    if (rest.empty()) {
        return {time_bound{protocol::format_civil_time(*civil), std::nullopt}, {}};
    }
    std::chrono::minutes offset{0};
    if (rest != "Z" && rest != "z") {
        // An unencoded '+' in a query string arrives as a space: read it as the '+' it was.
        std::string sign_fixed{rest};
        if (sign_fixed.front() == ' ') {
            sign_fixed.front() = '+';
        }
        auto parsed = parse_offset(sign_fixed);
        if (!parsed) {
            return {std::nullopt, std::string{expected}};
        }
        offset = *parsed;
    }
    auto utc = std::chrono::sys_seconds{civil->time_since_epoch()} - offset;
    return {time_bound{std::nullopt, utc}, {}};
}

stored_punch stored_punch_of(std::string_view serial_number, const punch_input& input,
                             std::int64_t id, instant received_at)
{
    const auto& r = input.record;
    stored_punch p;
    p.id = id;
    p.serial_number = std::string{serial_number};
    p.pin = r.pin;
    p.local_time = protocol::format_civil_time(r.time);
    p.utc = input.utc;
    p.status = r.status;
    p.verify = r.verify;
    p.work_code = r.work_code;
    p.sequence = r.sequence;
    p.raw_line = input.raw_line;
    p.received_at = received_at;
    return p;
}

boost::json::object punch_json(const stored_punch& punch, const punch_device& device)
{
    boost::json::object row;
    row["id"] = punch.id;
    row["device"] = device.id;
    row["sn"] = punch.serial_number;
    row["pin"] = punch.pin;
    row["local_time"] = punch.local_time;
    if (punch.utc) {
        row["time"] = punch_time(punch, device.zone);
        row["utc"] = format_iso_utc(*punch.utc);
    } else {
        row["time"] = nullptr;
        row["utc"] = nullptr;
    }
    row["status"] = punch.status;
    row["verify"] = punch.verify;
    row["work_code"] = punch.work_code;
    row["received_at"] = format_iso(punch.received_at, device.zone, true);
    if (punch.quarantined) {
        row["quarantined"] = true;
    }
    return row;
}

std::string csv_header()
{
    return "id,device,sn,pin,local_time,time,utc,status,verify,work_code,received_at\r\n";
}

std::string csv_row(const stored_punch& punch, const punch_device& device)
{
    return fmt::format("{},{},{},{},{},{},{},{},{},{},{}\r\n", punch.id, csv_field(device.id),
                       csv_field(punch.serial_number), csv_field(punch.pin),
                       csv_field(punch.local_time), punch.utc ? punch_time(punch, device.zone) : "",
                       punch.utc ? format_iso_utc(*punch.utc) : "", punch.status, punch.verify,
                       csv_field(punch.work_code),
                       format_iso(punch.received_at, device.zone, true));
}

std::string csv_field(std::string_view text)
{
    std::string value;
    if (!text.empty() && (text[0] == '=' || text[0] == '+' || text[0] == '-' || text[0] == '@' ||
                          text[0] == '\t' || text[0] == '\r')) {
        value = "'";
    }
    // Control characters (ANSI escapes, newlines) and bytes that are not UTF-8 come from devices,
    // not people: written as \xNN like the log, so a terminal or spreadsheet shows them inert.
    value += escape_for_log(text);
    if (value.find_first_of(",\"\r\n") == std::string::npos) {
        return value;
    }
    std::string quoted = "\"";
    for (char c : value) {
        quoted += c;
        if (c == '"') {
            quoted += '"';
        }
    }
    return quoted + "\"";
}

} // namespace adms::server

#include "server/admin/admin_support.hpp"

#include "protocol/devicecmd.hpp"
#include "protocol/text.hpp"
#include "server/devices/punch_devices.hpp"
#include "server/records/punch_format.hpp"

#include <fmt/format.h>

namespace adms::server {

using clock = std::chrono::system_clock;

instant now_instant()
{
    return std::chrono::floor<std::chrono::milliseconds>(clock::now());
}

http_response json_reply(unsigned status, const json::value& body)
{
    return {status, "application/json", json::serialize(body), {}, {}};
}

http_response error_reply(unsigned status, std::string message)
{
    return json_reply(status, json::object{{"success", false}, {"error", std::move(message)}});
}

http_response input_reply(const input_error& error)
{
    return {400, "application/json", error_body(error), {}, {}};
}

http_response storage_unavailable(const storage_error& error)
{
    return error_reply(503, "storage unavailable: " + error.message);
}

std::string id_of(const device_snapshot& d)
{
    return api_id(d.record);
}

tz::zone zone_of(const device_snapshot& d)
{
    return zone_in_force(d);
}

json::value optional_time(const std::optional<instant>& t, const tz::zone& zone)
{
    return t ? json::value(format_iso(*t, zone)) : json::value(nullptr);
}

std::optional<std::string> option_value(const device_record& r, std::string_view key)
{
    for (const auto& kv : r.options) {
        if (kv.key == key) {
            return kv.value;
        }
    }
    return std::nullopt;
}

const std::string* find_param(const query_params& params, std::string_view key)
{
    for (const auto& [k, v] : params) {
        if (k == key) {
            return &v;
        }
    }
    return nullptr;
}

std::optional<long long> parse_number(std::string_view text)
{
    return protocol::text::parse_integer<long long>(text);
}

std::optional<bool> parse_flag(std::string_view text)
{
    if (text == "true" || text == "1" || text == "yes") {
        return true;
    }
    if (text == "false" || text == "0" || text == "no") {
        return false;
    }
    return std::nullopt;
}

json::object command_json(const queued_command& c, const tz::zone& zone)
{
    json::object o;
    o["id"] = c.id;
    o["kind"] = c.kind;
    if (is_time_sync(c)) {
        // The stored text of a time sync not yet sent is a placeholder no device ever gets: its
        // DateTime is encoded at the whole second the reply goes out.
        auto sent = time_sync_text(c);
        o["text"] = sent ? json::value(*sent) : json::value(nullptr);
        auto verb = c.text.substr(0, c.text.find(" DateTime="));
        o["description"] = fmt::format(
            "{} DateTime=<the device's local time, ZK-encoded at the whole second it is sent>",
            verb);
    } else {
        o["text"] = c.text;
    }
    o["state"] = std::string{to_string(c.state)};
    o["created_at"] = format_iso(c.created_at, zone);
    o["sent_at"] = optional_time(c.sent_at, zone);
    o["attempts"] = c.attempts;
    if (c.return_code) {
        o["return_code"] = *c.return_code;
        o["return_meaning"] = std::string{protocol::describe_return_code(*c.return_code)};
    } else {
        o["return_code"] = nullptr;
    }
    o["result_at"] = optional_time(c.result_at, zone);
    if (!c.result_command.empty()) {
        o["result_command"] = c.result_command;
    }
    if (!c.result_content.empty()) {
        o["result_content"] = c.result_content;
    }
    if (!c.result_info.empty()) {
        o["result_info"] = c.result_info;
    }
    return o;
}

} // namespace adms::server

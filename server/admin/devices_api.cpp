#include "protocol/info.hpp"
#include "server/admin/admin_api.hpp"
#include "server/admin/admin_support.hpp"
#include "server/config/setting_values.hpp"
#include "server/net.hpp"
#include "server/personnel/person_rules.hpp"
#include "server/records/punch_format.hpp"
#include "server/storage/blocking_pool.hpp"

#include <fmt/format.h>

namespace adms::server {
namespace {

// The reply to a PATCH or approval the device service refused.
http_response update_failure(const device_service::update_result& updated)
{
    using enum device_service::update_error;
    unsigned status = updated.error == unknown_device ? 404
                      : updated.error == alias_in_use ? 409
                                                      : 503;
    return error_reply(status, updated.message);
}

// Time-sync commands listed in GET /devices/{id}.
constexpr std::size_t listed_time_syncs = 5;

// A device as GET /devices lists it.
json::object device_json(const device_snapshot& d, instant now,
                         std::chrono::milliseconds online_window)
{
    auto zone = zone_of(d);
    const auto& r = d.record;
    json::object o;
    o["id"] = id_of(d);
    o["sn"] = r.serial_number;
    o["alias"] = r.alias ? json::value(*r.alias) : json::value(nullptr);
    o["online"] = now - d.record.last_seen <= online_window;
    o["last_seen"] = format_iso(r.last_seen, zone);
    o["first_seen"] = format_iso(r.first_seen, zone);
    o["zone"] = d.zone_name;
    auto info = protocol::parse_info(r.info);
    auto model = option_value(r, "~DeviceName");
    auto firmware = option_value(r, "FWVersion");
    if (!firmware && info && !info->firmware.empty()) {
        firmware = info->firmware;
    }
    o["model"] = model ? json::value(*model) : json::value(nullptr);
    o["firmware"] = firmware ? json::value(*firmware) : json::value(nullptr);
    o["remote_address"] = r.remote_address;
    o["push_version"] = r.push_version;
    o["protocol"] = r.dialect;
    o["approved"] = r.approved;
    o["area"] = r.area ? json::value(*r.area) : json::value(nullptr);
    o["time_dialect"] = std::string{to_string(d.dialect)};
    o["sync_at"] = format_time_of_day(d.sync_at);
    o["sync_interval"] = d.sync_interval ? json::value(format_sync_interval(*d.sync_interval))
                                         : json::value(nullptr);
    o["last_time_sync"] = json::object{
        {"queued_at", optional_time(r.time_sync_sent_at, zone)},
        {"confirmed_at", optional_time(r.time_sync_confirmed_at, zone)},
        {"error",
         r.time_sync_error.empty() ? json::value(nullptr) : json::value(r.time_sync_error)},
    };
    return o;
}

// Reads a PATCH body: each field a string that sets it, or null that clears the API's value.
// Reads one field of a PATCH body into `out` when the body has it: null clears the API's value
// (back to the config file's or the default), a string is read by `parse` (nullopt: refused,
// with `expected` as the reason).
template <class T, class Parse>
std::optional<input_error> read_clearable(const json::object& body, std::string_view field,
                                          std::optional<std::optional<T>>& out, Parse parse,
                                          std::string_view expected)
{
    const auto* v = body.if_contains(field);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (v->is_null()) {
        out.emplace();
        return std::nullopt;
    }
    if (!v->is_string()) {
        return input_error{std::string{field}, "must be a string or null"};
    }
    std::string text{v->as_string()};
    std::optional<T> value = parse(text);
    if (!value) {
        return input_error{std::string{field}, std::string{expected}};
    }
    out.emplace(std::move(value));
    return std::nullopt;
}

// Reads a PATCH body: each field a string that sets it, or null that clears the API's value.
input_result<device_patch> read_device_patch(std::string_view text)
{
    auto parsed = parse_json_object(text, false);
    if (!parsed) {
        return parsed.error;
    }
    const auto& body = *parsed.value;
    if (auto unknown = reject_unknown_fields(body, {"alias", "zone", "time_dialect", "sync_at",
                                                    "sync_interval", "approved", "area"})) {
        return *unknown;
    }
    device_patch patch;
    auto alias = [](const std::string& t) {
        return valid_alias(t) ? std::optional{t} : std::nullopt;
    };
    std::string zone_error;
    auto zone = [&zone_error](const std::string& t) -> std::optional<std::string> {
        auto found = tz::locate_zone(t);
        if (!found) {
            zone_error = found.error;
            return std::nullopt;
        }
        return t;
    };
    if (auto bad = read_clearable(body, "alias", patch.alias, alias,
                                  fmt::format("must be {}", alias_rule))) {
        return *bad;
    }
    if (auto bad = read_clearable(body, "zone", patch.time_zone, zone, {})) {
        if (bad->message.empty()) {
            bad->message = zone_error; // the zone database's own words
        }
        return *bad;
    }
    if (auto bad = read_clearable(body, "time_dialect", patch.dialect, parse_time_dialect,
                                  "must be att, att-singular or null")) {
        return *bad;
    }
    if (auto bad = read_clearable(body, "sync_at", patch.sync_at, parse_time_of_day,
                                  "must be HH:MM (local time) or null")) {
        return *bad;
    }
    if (auto bad = read_clearable(body, "sync_interval", patch.sync_interval, parse_sync_interval,
                                  "must be a duration of at least 1m (e.g. 6h), off or null")) {
        return *bad;
    }
    auto area = [](const std::string& t) {
        return personnel::check_area_code(t) ? std::nullopt : std::optional{t};
    };
    if (auto bad = read_clearable(body, "area", patch.area, area,
                                  "must be an area's code, or null to take the device out of "
                                  "every area")) {
        return *bad;
    }
    if (body.contains("approved")) {
        auto approved = optional_bool(body, "approved");
        if (!approved) {
            return approved.error;
        }
        patch.approved = *approved.value;
    }
    return patch;
}

} // namespace

boost::asio::awaitable<http_response> admin_api::list_devices(const http_request&,
                                                              const route_match&)
{
    auto now = now_instant();
    json::array data;
    for (const auto& d : devices.devices()) {
        data.push_back(device_json(d, now, online_window()));
    }
    co_return json_reply(200, json::object{{"success", true}, {"data", std::move(data)}});
}

boost::asio::awaitable<http_response> admin_api::get_device(const device_snapshot& d,
                                                            const http_request&, const route_match&)
{
    const auto& sn = d.record.serial_number;
    auto commands = co_await reader.run([&] { return store.commands().list_commands(sn, 50); });
    if (!commands) {
        co_return storage_unavailable(commands.error);
    }
    auto zone = zone_of(d);
    auto o = device_json(d, now_instant(), online_window());
    o["zone_source"] = d.zone_source;
    json::object options;
    for (const auto& kv : d.record.options) {
        options[kv.key] = kv.value;
    }
    o["options"] = std::move(options);
    if (auto info = protocol::parse_info(d.record.info)) {
        o["info"] = json::object{
            {"raw", d.record.info},
            {"firmware", info->firmware},
            {"users", info->user_count ? json::value(*info->user_count) : json::value(nullptr)},
            {"fingerprints", info->fingerprint_count ? json::value(*info->fingerprint_count)
                                                     : json::value(nullptr)},
            {"attlogs",
             info->attlog_count ? json::value(*info->attlog_count) : json::value(nullptr)},
            {"ip_address", info->ip_address},
            {"received_at", optional_time(d.record.info_at, zone)},
        };
    } else {
        o["info"] = nullptr;
    }
    auto stamp = [](const std::optional<std::string>& s) {
        return s ? json::value(*s) : json::value(nullptr);
    };
    o["stamps"] = json::object{{"attlog", stamp(d.record.attlog_stamp)},
                               {"operlog", stamp(d.record.operlog_stamp)},
                               {"attphoto", stamp(d.record.attphoto_stamp)}};
    json::array pending;
    std::vector<const queued_command*> syncs;
    for (const auto& c : *commands.value) {
        if (c.state == command_state::queued || c.state == command_state::sent) {
            pending.push_back(command_json(c, zone));
        }
        if (is_time_sync(c)) {
            syncs.push_back(&c);
        }
    }
    json::array time_syncs; // newest first
    for (auto it = syncs.rbegin(); it != syncs.rend() && time_syncs.size() < listed_time_syncs;
         ++it) {
        time_syncs.push_back(command_json(**it, zone));
    }
    o["pending_commands"] = std::move(pending);
    o["time_syncs"] = std::move(time_syncs);
    co_return json_reply(200, json::object{{"success", true}, {"data", std::move(o)}});
}

boost::asio::awaitable<http_response>
admin_api::patch_device(const device_snapshot& d, const http_request& request, const route_match&)
{
    auto patch = read_device_patch(request.body);
    if (!patch) {
        co_return input_reply(patch.error);
    }
    if (patch.value->area && *patch.value->area) {
        // An unknown area is the client's mistake (400), not a failed write.
        const auto& code = **patch.value->area;
        auto found = co_await reader.run([&] { return store.persons().find_area(code); });
        if (!found) {
            co_return storage_unavailable(found.error);
        }
        if (!*found.value) {
            co_return input_reply({"area", fmt::format("unknown area: {}", code)});
        }
    }
    auto updated = co_await devices.update_device(d.record.serial_number, *patch.value);
    if (!updated.device) {
        co_return update_failure(updated);
    }
    co_return json_reply(
        200, json::object{{"success", true},
                          {"data", device_json(*updated.device, now_instant(), online_window())}});
}

boost::asio::awaitable<http_response>
admin_api::approve_device(const device_snapshot& d, const http_request&, const route_match&)
{
    device_patch patch;
    patch.approved = true;
    auto updated = co_await devices.update_device(d.record.serial_number, patch);
    if (!updated.device) {
        co_return update_failure(updated);
    }
    co_return json_reply(200,
                         json::object{
                             {"success", true},
                             {"message", fmt::format("[{}] Device approved.", id_of(d))},
                             {"data", device_json(*updated.device, now_instant(), online_window())},
                         });
}

boost::asio::awaitable<http_response>
admin_api::ping_device(const device_snapshot& d, const http_request&, const route_match&)
{
    auto now = now_instant();
    auto zone = zone_of(d);
    auto since = std::chrono::duration_cast<std::chrono::seconds>(now - d.record.last_seen).count();
    bool is_online = now - d.record.last_seen <= online_window();
    co_return json_reply(
        200,
        json::object{
            {"success", true},
            {"id", id_of(d)},
            {"sn", d.record.serial_number},
            {"online", is_online},
            {"last_seen", format_iso(d.record.last_seen, zone)},
            {"seconds_since", since},
            {"poll_interval", config.poll_delay},
            {"remote_address", d.record.remote_address},
            {"message", fmt::format("[{}] {} (last request {} s ago, polls every {} s)", id_of(d),
                                    is_online ? "Online" : "Offline", since, config.poll_delay)},
        });
}

} // namespace adms::server

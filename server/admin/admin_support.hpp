#pragma once

// What the admin API's resource files share: replies, a device's API id and zone, and reading
// query values. Internal to server/admin/.

#include "server/admin/admin_api.hpp"
#include "server/devices/device_service.hpp"
#include "server/http/json_input.hpp"
#include "server/http/message.hpp"
#include "server/http/router.hpp"
#include "server/storage/database.hpp"
#include "tz/zone.hpp"

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace adms::server {

namespace json = boost::json;

// How one device's time sync ended, as the API answers it.
struct admin_api::sync_result {
    unsigned status = 500;
    json::object body;
};

// Now, to the millisecond.
instant now_instant();

// A JSON reply.
http_response json_reply(unsigned status, const json::value& body);
// {"success":false,"error":"<message>"}.
http_response error_reply(unsigned status, std::string message);
// 400 naming the field and why it was refused.
http_response input_reply(const input_error& error);
// 503 "storage unavailable: <why>": a read or write failed.
http_response storage_unavailable(const storage_error& error);

// The id the API shows for a device: its alias, else its serial number.
std::string id_of(const device_snapshot& d);
// The zone in force for a device.
tz::zone zone_of(const device_snapshot& d);
// An instant in the device's zone, or null.
json::value optional_time(const std::optional<instant>& t, const tz::zone& zone);
// A value from the device's option list.
std::optional<std::string> option_value(const device_record& r, std::string_view key);

// The first query parameter `key`, or null.
const std::string* find_param(const query_params& params, std::string_view key);
// A whole number.
std::optional<long long> parse_number(std::string_view text);
// true/1/yes or false/0/no.
std::optional<bool> parse_flag(std::string_view text);

// A queued command as the API lists it.
json::object command_json(const queued_command& c, const tz::zone& zone);

} // namespace adms::server

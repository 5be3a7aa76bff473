#include "server/admin/admin_api.hpp"
#include "server/admin/admin_support.hpp"
#include "server/admin/command_request.hpp"
#include "server/net.hpp"
#include "server/storage/blocking_pool.hpp"

#include <fmt/format.h>

namespace adms::server {

boost::asio::awaitable<http_response>
admin_api::list_commands(const device_snapshot& d, const http_request&, const route_match&)
{
    auto commands = co_await reader.run(
        [&] { return store.commands().list_commands(d.record.serial_number, 200); });
    if (!commands) {
        co_return storage_unavailable(commands.error);
    }
    auto zone = zone_of(d);
    json::array data;
    for (const auto& c : *commands.value) {
        data.push_back(command_json(c, zone));
    }
    co_return json_reply(200, json::object{{"success", true}, {"data", std::move(data)}});
}

boost::asio::awaitable<http_response>
admin_api::post_command(const device_snapshot& d, const http_request& request, const route_match&)
{
    auto parsed = parse_json_object(request.body, false);
    if (!parsed) {
        co_return input_reply(parsed.error);
    }
    auto command = parse_command_request(*parsed.value);
    if (!command) {
        co_return input_reply(command.error);
    }
    auto id = id_of(d);
    if (!d.record.approved) {
        co_return error_reply(409, fmt::format("[{}] Device is not approved: POST "
                                               "/devices/{}/approve first",
                                               id, id));
    }
    auto queued = co_await devices.queue_command(d.record.serial_number, command.value->text,
                                                 "admin: " + command.value->name);
    if (!queued) {
        co_return storage_unavailable(queued.error);
    }
    co_return json_reply(
        202, json::object{
                 {"success", true},
                 {"message", fmt::format("[{}] Command queued for the device's next poll.", id)},
                 {"command_id", *queued.value},
                 {"command", command.value->name},
                 {"text", command.value->text},
                 {"status", "queued"}});
}

} // namespace adms::server

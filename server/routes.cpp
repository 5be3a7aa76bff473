#include "server/routes.hpp"

#include "server/admin/admin_api.hpp"
#include "server/admin/exports_api.hpp"
#include "server/admin/persons_api.hpp"
#include "server/devices/device_service.hpp"
#include "server/timekeeping/time_service.hpp"

namespace adms::server {

std::vector<route> server_routes(const settings& config, device_service& devices,
                                 const time_service& times, admin_api& admin, exports_api& exports,
                                 persons_api& persons)
{
    constexpr auto on_devices = route_scope::devices;
    constexpr auto on_admin = route_scope::admin;
    constexpr auto everywhere = route_scope::everywhere;
    using enum route_auth;
    using limit = device_service::rate_limit;
    using params = std::vector<std::string_view>;
    const std::optional<params> any_query; // devices send what they send
    const std::optional<params> no_query = params{};
    const std::optional<params> sync_query = params{"timeout", "wait"};
    const std::optional<params> punch_query =
        params{"device", "pin", "from", "to", "after", "limit", "quarantined"};
    const std::optional<params> drift_query = params{"from", "to", "after", "limit"};
    const std::optional<params> delivery_query = params{"state", "after", "limit"};
    const std::optional<params> person_query = params{"area", "status", "source", "after", "limit"};
    auto tylink = [&times](const http_request& request,
                           const route_match&) -> boost::asio::awaitable<http_response> {
        co_return times.handle(request);
    };
    auto metrics_auth = config.metrics_require_token ? bearer : open;

    // Handshakes and uploads are rate-limited and checked; polls, pings and time requests are
    // cheap and scheduled by the device, so only the network and key checks apply to them.
    return {
        // The iclock protocol (docs/device-server.md).
        {on_devices, "GET", "/iclock/cdata", device, any_query,
         devices.route(&device_service::cdata_get, limit::handshakes)},
        {on_devices, "POST", "/iclock/cdata", device, any_query,
         devices.route(&device_service::upload, limit::always)},
        {on_devices, "GET", "/iclock/getrequest", device, any_query,
         devices.route(&device_service::getrequest, limit::none)},
        {on_devices, "POST", "/iclock/devicecmd", device, any_query,
         devices.route(&device_service::command_results, limit::always)},
        {on_devices, "GET", "/iclock/ping", device, any_query,
         devices.route(&device_service::ping, limit::none)},
        {on_devices, "GET", "/iclock/rtdata", device, any_query,
         devices.route(&device_service::rtdata, limit::none)},
        {on_devices, "POST", "/iclock/fdata", device, any_query,
         devices.route(&device_service::fdata, limit::always)},
        {on_devices, "POST", "/iclock/registry", device, any_query,
         devices.route(&device_service::registry, limit::always)},
        {on_devices, "POST", "/iclock/push", device, any_query,
         devices.route(&device_service::push, limit::always)},
        // The tylink time service (docs/time-service.md); it checks device_networks itself.
        {on_devices, "POST", "/tylink/{id}/ext/time/request", device, any_query, tylink},

        // Container health checks use the device port too.
        {everywhere, "GET", "/healthz", open, no_query, admin.route(&admin_api::healthz)},

        // The admin API (docs/admin-api.md).
        {on_admin, "GET", "/metrics", metrics_auth, any_query,
         admin.route(&admin_api::metrics_text)},
        {on_admin, "GET", "/devices", bearer, no_query, admin.route(&admin_api::list_devices)},
        {on_admin, "POST", "/devices/sync-time", bearer, sync_query,
         admin.route(&admin_api::sync_devices)},
        {on_admin, "GET", "/devices/{id}", bearer, no_query, admin.route(&admin_api::get_device)},
        {on_admin, "PATCH", "/devices/{id}", bearer, no_query,
         admin.route(&admin_api::patch_device)},
        {on_admin, "POST", "/devices/{id}/sync-time", bearer, sync_query,
         admin.route(&admin_api::sync_device)},
        {on_admin, "GET", "/devices/{id}/time", bearer, no_query,
         admin.route(&admin_api::device_time)},
        {on_admin, "GET", "/devices/{id}/drift", bearer, drift_query,
         admin.route(&admin_api::device_drift)},
        {on_admin, "GET", "/devices/{id}/ping", bearer, no_query,
         admin.route(&admin_api::ping_device)},
        {on_admin, "GET", "/devices/{id}/commands", bearer, no_query,
         admin.route(&admin_api::list_commands)},
        {on_admin, "POST", "/devices/{id}/commands", bearer, no_query,
         admin.route(&admin_api::post_command)},
        {on_admin, "POST", "/devices/{id}/approve", bearer, no_query,
         admin.route(&admin_api::approve_device)},
        {on_admin, "GET", "/punches", bearer, punch_query, admin.route(&admin_api::punches)},
        {on_admin, "GET", "/punches.csv", bearer, punch_query,
         admin.route(&admin_api::punches_csv)},
        {on_admin, "GET", "/webhooks", bearer, no_query, admin.route(&admin_api::list_webhooks)},
        {on_admin, "POST", "/webhooks", bearer, no_query, admin.route(&admin_api::create_webhook)},
        {on_admin, "GET", "/webhooks/{name}", bearer, no_query,
         admin.route(&admin_api::get_webhook)},
        {on_admin, "PATCH", "/webhooks/{name}", bearer, no_query,
         admin.route(&admin_api::patch_webhook)},
        {on_admin, "DELETE", "/webhooks/{name}", bearer, no_query,
         admin.route(&admin_api::delete_webhook)},
        {on_admin, "POST", "/webhooks/{name}/rotate-secret", bearer, no_query,
         admin.route(&admin_api::rotate_webhook_secret)},
        {on_admin, "POST", "/webhooks/{name}/test", bearer, no_query,
         admin.route(&admin_api::test_webhook)},
        {on_admin, "POST", "/webhooks/{name}/enable", bearer, no_query,
         admin.route(&admin_api::enable_webhook)},
        {on_admin, "POST", "/webhooks/{name}/replay", bearer, no_query,
         admin.route(&admin_api::replay_webhook)},
        {on_admin, "GET", "/webhooks/{name}/deliveries", bearer, delivery_query,
         admin.route(&admin_api::list_deliveries)},
        {on_admin, "GET", "/webhooks/{name}/deliveries/{event_id}", bearer, no_query,
         admin.route(&admin_api::get_delivery)},
        {on_admin, "POST", "/webhooks/{name}/deliveries/{event_id}/retry", bearer, no_query,
         admin.route(&admin_api::retry_delivery)},
        {on_admin, "GET", "/exports", bearer, no_query, exports.route(&exports_api::list)},
        {on_admin, "POST", "/exports/{name}/run", bearer, no_query,
         exports.route(&exports_api::run)},
        // The people directory (docs/personnel.md).
        {on_admin, "GET", "/areas", bearer, no_query, persons.route(&persons_api::list_areas)},
        {on_admin, "POST", "/areas", bearer, no_query, persons.route(&persons_api::create_area)},
        {on_admin, "GET", "/areas/{code}", bearer, no_query, persons.route(&persons_api::get_area)},
        {on_admin, "PATCH", "/areas/{code}", bearer, no_query,
         persons.route(&persons_api::patch_area)},
        {on_admin, "DELETE", "/areas/{code}", bearer, no_query,
         persons.route(&persons_api::delete_area)},
        {on_admin, "GET", "/persons", bearer, person_query,
         persons.route(&persons_api::list_persons)},
        {on_admin, "POST", "/persons", bearer, no_query,
         persons.route(&persons_api::create_person)},
        {on_admin, "GET", "/persons/{pin}", bearer, no_query,
         persons.route(&persons_api::get_person)},
        {on_admin, "PATCH", "/persons/{pin}", bearer, no_query,
         persons.route(&persons_api::patch_person)},
        {on_admin, "DELETE", "/persons/{pin}", bearer, no_query,
         persons.route(&persons_api::delete_person)},
        {on_admin, "GET", "/persons/{pin}/templates", bearer, no_query,
         persons.route(&persons_api::person_templates)},
    };
}

} // namespace adms::server

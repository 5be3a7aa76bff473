#pragma once

#include "server/config/settings.hpp"
#include "server/http/message.hpp"
#include "server/http/router.hpp"
#include "server/security/access_control.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace adms::server {

class blocking_pool;
class command_waiters;
class device_service;
class logger;
class metrics;
class database;
class webhook_relay;
class webhook_service;
struct webhook_endpoint;
struct device_snapshot;

// The admin HTTP API (docs/admin-api.md): devices, time sync with confirmation, device time and
// drift, commands, punches and their CSV export, /healthz and /metrics, behind bearer tokens.
// Its routes are declared in server/routes.cpp; each handler parses its input, calls the device
// service or storage, and shapes the JSON. The handlers live in one file per resource:
// devices_api.cpp, time_api.cpp, commands_api.cpp, punches_api.cpp, health_api.cpp.
// Thread safety: handlers may run on many I/O threads at once; state lives in the device
// service, the storage and the metrics, which guard themselves.
class admin_api {
  public:
    // `reader` runs storage reads off the I/O threads; `tokens` are the accepted bearer tokens.
    admin_api(const settings& config, device_service& devices, database& store,
              blocking_pool& reader, metrics& stats, command_waiters& waiters, logger& log,
              std::vector<std::string> tokens, webhook_service& webhooks, webhook_relay& relay);

    // The bearer check of the admin routes: nullopt to let the request through, else 401, or
    // 429 after too many failures from its address (logged at most once a minute per address).
    std::optional<http_response> authenticate(const http_request& request);

    // Wakes requests waiting for a device (the server is stopping): they answer 503 at once.
    void stop();

    // A handler of a route, and of a route naming a device ({id}: its alias or serial number).
    using handler = boost::asio::awaitable<http_response> (admin_api::*)(const http_request&,
                                                                         const route_match&);
    using device_handler = boost::asio::awaitable<http_response> (admin_api::*)(
        const device_snapshot&, const http_request&, const route_match&);
    // The route handler calling `h`; for a device handler, after looking the device up (404
    // when no device has that id).
    route_handler route(handler h);
    route_handler route(device_handler h);

    // health_api.cpp
    boost::asio::awaitable<http_response> healthz(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> metrics_text(const http_request&, const route_match&);
    // devices_api.cpp
    boost::asio::awaitable<http_response> list_devices(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> get_device(const device_snapshot& d, const http_request&,
                                                     const route_match&);
    boost::asio::awaitable<http_response>
    patch_device(const device_snapshot& d, const http_request& request, const route_match&);
    boost::asio::awaitable<http_response> approve_device(const device_snapshot& d,
                                                         const http_request&, const route_match&);
    boost::asio::awaitable<http_response> ping_device(const device_snapshot& d, const http_request&,
                                                      const route_match&);
    // time_api.cpp
    boost::asio::awaitable<http_response> sync_devices(const http_request& request,
                                                       const route_match& match);
    boost::asio::awaitable<http_response> sync_device(const http_request& request,
                                                      const route_match& match);
    boost::asio::awaitable<http_response> device_time(const device_snapshot& d, const http_request&,
                                                      const route_match&);
    boost::asio::awaitable<http_response>
    device_drift(const device_snapshot& d, const http_request&, const route_match& match);
    // commands_api.cpp
    boost::asio::awaitable<http_response> list_commands(const device_snapshot& d,
                                                        const http_request&, const route_match&);
    boost::asio::awaitable<http_response>
    post_command(const device_snapshot& d, const http_request& request, const route_match&);
    // punches_api.cpp
    boost::asio::awaitable<http_response> punches(const http_request&, const route_match& match);
    boost::asio::awaitable<http_response> punches_csv(const http_request&,
                                                      const route_match& match);

    // webhooks_api.cpp
    boost::asio::awaitable<http_response> list_webhooks(const http_request&, const route_match&);
    boost::asio::awaitable<http_response> create_webhook(const http_request& request,
                                                         const route_match&);
    boost::asio::awaitable<http_response> get_webhook(const http_request&, const route_match& m);
    boost::asio::awaitable<http_response> patch_webhook(const http_request& request,
                                                        const route_match& match);
    boost::asio::awaitable<http_response> delete_webhook(const http_request&,
                                                         const route_match& match);
    boost::asio::awaitable<http_response> rotate_webhook_secret(const http_request& request,
                                                                const route_match& match);
    boost::asio::awaitable<http_response> test_webhook(const http_request&,
                                                       const route_match& match);
    boost::asio::awaitable<http_response> enable_webhook(const http_request&,
                                                         const route_match& match);
    boost::asio::awaitable<http_response> list_deliveries(const http_request&,
                                                          const route_match& match);
    boost::asio::awaitable<http_response> get_delivery(const http_request&,
                                                       const route_match& match);
    boost::asio::awaitable<http_response> retry_delivery(const http_request&,
                                                         const route_match& match);
    boost::asio::awaitable<http_response> replay_webhook(const http_request& request,
                                                         const route_match& match);

    // How one device's time sync ended: a status and the JSON body (admin_support.hpp).
    struct sync_result;

  private:
    // An endpoint as the API shows it, without its delivery counts.
    boost::json::object webhook_view(const webhook_endpoint& e);
    // One device's time sync, as the single and the batch request answer it.
    boost::asio::awaitable<sync_result> sync_one(std::string requested_id, int timeout_s,
                                                 bool wait);

    // A device polls every Delay seconds; three missed polls and it counts as offline.
    std::chrono::milliseconds online_window() const
    {
        return std::chrono::seconds{3 * config.poll_delay};
    }

    const settings& config;
    device_service& devices;
    database& store;
    blocking_pool& reader;
    metrics& stats;
    command_waiters& waiters;
    logger& log;
    std::vector<std::string> tokens;
    webhook_service& webhooks;
    webhook_relay& relay;
    // Ten failed logins a minute per address, then 429 until the bucket refills.
    rate_limiter auth_failures{10.0 / 60, 10};
    log_throttle auth_log;
    std::atomic<std::uint64_t> auth_failure_count{0};
    std::atomic<bool> stopping{false};
};

} // namespace adms::server

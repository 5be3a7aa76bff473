#pragma once

#include "server/config/settings.hpp"
#include "server/http/message.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace adms::server {

class blocking_pool;
class command_waiters;
class device_service;
class logger;
class metrics;
class database;

// The admin HTTP API (README "Admin API"): devices, time sync with confirmation, device time,
// commands, punches and their CSV export, /healthz and /metrics, behind bearer tokens.
// Thread safety: handle() may run on many I/O threads at once; state lives in the device
// service, the storage and the metrics, which guard themselves.
class admin_api {
  public:
    // `reader` runs storage reads off the I/O threads; `tokens` are the accepted bearer tokens.
    admin_api(const settings& config, device_service& devices, database& store,
              blocking_pool& reader, metrics& stats, command_waiters& waiters, logger& log,
              std::vector<std::string> tokens);

    // Answers one request to an admin path (anything but /iclock/…). `request` must outlive the
    // returned awaitable.
    boost::asio::awaitable<http_response> handle(const http_request& request);

    // Wakes requests waiting for a device (the server is stopping): they answer 503 at once.
    void stop();

  private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace adms::server

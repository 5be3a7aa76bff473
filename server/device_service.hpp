#pragma once

#include "protocol/query.hpp"
#include "server/http_message.hpp"
#include "server/settings.hpp"
#include "server/storage.hpp"
#include "tz/zone.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace adms::server {

class blocking_pool;
class logger;

// The iclock endpoints: handshake, uploads, command polls and results, time replies. Owns the
// in-memory device registry (backed by storage) and decides when a device's clock is set.
// Thread safety: handle() may run on many I/O threads at once; the registry is guarded by one
// mutex never held across co_await, and storage calls run on the writer pool.
class device_service {
  public:
    device_service(const settings& config, storage& store, blocking_pool& writer, logger& log,
                   tz::zone server_zone);

    // Loads the devices from storage and applies the config file's per-device settings.
    storage_status load();

    // Answers one request to /iclock/…; any other path is 404. `request` must outlive the
    // returned awaitable (the session awaits it at once): no copy of the body is made.
    boost::asio::awaitable<http_response> handle(const http_request& request);

  private:
    using clock = std::chrono::system_clock;

    // The registry's copy of one device.
    struct device_entry {
        device_record record;
        device_settings settings; // from the config file
        // zone_of() computed once, not per request; reset it when the zone settings change.
        std::optional<tz::zone> zone;
    };

    // What a request needs to know about its device, copied out of the registry.
    struct device_view {
        device_record record;
        bool is_new = false;
        tz::zone zone;
        std::string verb; // "SET OPTIONS" or "SET OPTION"
        device_settings settings;
    };

    device_view touch(const protocol::iclock_query& query, const http_request& request);
    tz::zone zone_of(const device_entry& entry) const;
    void update_record(const std::string& serial_number,
                       const std::function<void(device_record&)>& change);

    boost::asio::awaitable<http_response> handshake(const http_request& request,
                                                    const protocol::iclock_query& query);
    boost::asio::awaitable<http_response> upload(const http_request& request,
                                                 const protocol::iclock_query& query);
    boost::asio::awaitable<http_response> store_photo(const device_view& device,
                                                      const http_request& request);
    boost::asio::awaitable<http_response> poll(const http_request& request,
                                               const protocol::iclock_query& query);
    boost::asio::awaitable<http_response> command_results(const http_request& request,
                                                          const protocol::iclock_query& query);
    http_response time_reply(const http_request& request, const protocol::iclock_query& query,
                             bool sec);
    http_response compat_time_reply(const http_request& request,
                                    const protocol::iclock_query& query, const std::string& cmd);

    // Queues a time-sync command unless one is already pending; false on a storage failure.
    boost::asio::awaitable<bool> queue_time_sync(const device_view& device, std::string_view reason,
                                                 clock::time_point now);
    // Merges a stamp the device sent into the registry's copy; true when the stored one moved.
    bool merge_into_record(const std::string& serial_number,
                           std::optional<std::string> device_record::*stamp_field,
                           const std::optional<std::string>& incoming);
    // Logs the time-sync block for a time command or reply that goes out now.
    void log_time_sent(const std::string& serial_number, const tz::zone& zone,
                       std::chrono::sys_seconds now, std::string sending, std::string reason);
    // Persists the registry's copy of a device; false on a storage failure (logged).
    boost::asio::awaitable<bool> save_device(const std::string& serial_number);
    // Logs a storage failure once per change of state and builds the 503 reply.
    http_response storage_failure(std::string_view what, const storage_error& error);
    // Notes that storage works (logs the recovery after a failure).
    void storage_ok();

    const settings& config_;
    storage& store_;
    blocking_pool& writer_;
    logger& log_;
    tz::zone server_zone_;

    mutable std::mutex mutex_;
    std::map<std::string, device_entry, std::less<>> devices_;
    bool storage_failed_ = false;
};

} // namespace adms::server

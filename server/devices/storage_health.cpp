#include "server/devices/device_service.hpp"
#include "server/devices/device_service_internal.hpp"
#include "server/observability/logger.hpp"

#include <fmt/format.h>

namespace adms::server {

using namespace device_internal;

void device_service::storage_ok()
{
    bool recovered = false;
    {
        std::lock_guard lock{mutex_};
        recovered = storage_failed_;
        storage_failed_ = false;
        storage_error_.clear();
    }
    if (recovered) {
        log_.event("storage", "Storage recovered: uploads are acknowledged again");
    }
}

http_response device_service::storage_failure(std::string_view what, const storage_error& error)
{
    bool first = false;
    {
        std::lock_guard lock{mutex_};
        first = !storage_failed_;
        storage_failed_ = true;
        storage_error_ = error.message;
        next_write_attempt_ = std::chrono::steady_clock::now() + storage_retry_interval;
    }
    if (first) {
        log_.event("storage",
                   fmt::format("Storage failed ({}): {}; answering 503 until it recovers", what,
                               error.message),
                   {{"what", std::string{what}}, {"error", error.message}});
    }
    return storage_unavailable();
}

http_response device_service::storage_unavailable() const
{
    auto reply = text_response(503, "storage unavailable, retry later\n");
    reply.headers.emplace_back("Retry-After", std::to_string(config_.error_delay));
    return reply;
}

bool device_service::write_allowed()
{
    std::lock_guard lock{mutex_};
    if (!storage_failed_) {
        return true;
    }
    // While storage fails, one upload a second tries it (and notices recovery); the others are
    // answered 503 at once instead of queueing behind a write that waits for a lock or fails.
    auto now = std::chrono::steady_clock::now();
    if (now < next_write_attempt_) {
        return false;
    }
    next_write_attempt_ = now + storage_retry_interval;
    return true;
}

void device_service::report_storage_failure(std::string_view what, const storage_error& error)
{
    storage_failure(what, error);
}

boost::asio::awaitable<void> device_service::probe_storage()
{
    if (storage_healthy()) {
        co_return;
    }
    auto probed = co_await write([](write_tx& tx) { return tx.probe(); });
    if (probed) {
        storage_ok();
    } else {
        std::lock_guard lock{mutex_};
        storage_error_ = probed.error.message;
    }
}

std::string device_service::storage_error_message() const
{
    std::lock_guard lock{mutex_};
    return storage_error_;
}

bool device_service::storage_healthy() const
{
    std::lock_guard lock{mutex_};
    return !storage_failed_;
}

} // namespace adms::server

#pragma once

// What the device_service member definitions (server/devices/*.cpp) share: small helpers and
// constants, and the write() template. Included by those files only.

#include "protocol/text.hpp"
#include "server/devices/device_service.hpp"
#include "server/observability/metrics.hpp"
#include "server/storage/commit_queue.hpp"

#include <chrono>
#include <string>
#include <type_traits>
#include <utility>

namespace adms::server {
namespace device_internal {

using protocol::text::iequals;

// How long the drift watch's history is kept.
inline constexpr auto drift_history_kept = std::chrono::days{90};

// A time point at the millisecond precision storage keeps.
inline instant to_instant(std::chrono::system_clock::time_point t)
{
    return std::chrono::floor<std::chrono::milliseconds>(t);
}

// The time-sync command's verb in a device's dialect.
inline std::string verb_of(time_dialect dialect)
{
    return dialect == time_dialect::att_singular ? "SET OPTION" : "SET OPTIONS";
}

} // namespace device_internal

template <class F>
boost::asio::awaitable<std::invoke_result_t<F&, write_tx&>> device_service::write(F f)
{
    auto start = std::chrono::steady_clock::now();
    auto result = co_await writer_.run(std::move(f));
    stats_.database_commit(std::chrono::steady_clock::now() - start);
    co_return result;
}

} // namespace adms::server

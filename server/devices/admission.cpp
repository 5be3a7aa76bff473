#include "server/devices/device_service.hpp"
#include "server/devices/device_service_internal.hpp"
#include "server/observability/logger.hpp"
#include "server/security/admin_token.hpp"

#include <fmt/format.h>

namespace adms::server {

using namespace device_internal;

std::optional<http_response> device_service::rate_limited(const protocol::iclock_query& query,
                                                          const http_request& request)
{
    auto now = std::chrono::steady_clock::now();
    for (auto* limiter : {&by_serial_number_, &by_address_}) {
        bool by_sn = limiter == &by_serial_number_;
        const auto& key = by_sn ? query.serial_number : request.remote_address;
        auto decision = limiter->take(key, now);
        if (decision.allowed) {
            continue;
        }
        if (decision.log) {
            log_.event("rate_limit",
                       fmt::format("Rate limit: {} {} exceeds {} handshakes and uploads a second; "
                                   "answering 503 (logged once a minute)",
                                   by_sn ? "device" : "address", by_sn ? escape_for_log(key) : key,
                                   limiter->rate()),
                       {{by_sn ? "sn" : "remote", key}});
        }
        auto reply = text_response(503, "rate limit exceeded, retry later\n");
        reply.headers.emplace_back("Retry-After", std::to_string(decision.retry_after.count()));
        return reply;
    }
    return std::nullopt;
}

std::optional<std::string> device_service::refusal_reason(const protocol::iclock_query& query,
                                                          const http_request& request,
                                                          bool handshake)
{
    const auto& address = request.remote_address;
    // app::start() refuses an invalid list; should one reach here anyway, it admits nobody
    // (fail closed) rather than everybody.
    if (!device_networks_ || !device_networks_->contains(address)) {
        return fmt::format("source address {} is outside device_networks", address);
    }
    std::string key = config_.comm_key;
    if (auto it = config_.devices.find(query.serial_number);
        it != config_.devices.end() && !it->second.comm_key.empty()) {
        key = it->second.comm_key;
    }
    if (key.empty()) {
        return std::nullopt;
    }
    const auto* presented = query.find_extra("pushcommkey");
    std::lock_guard lock{mutex_};
    if (presented != nullptr) {
        if (!token_matches(*presented, std::span{&key, 1})) {
            return std::string{"wrong communication key (pushcommkey)"};
        }
        key_verified_from_[query.serial_number] = address;
        return std::nullopt;
    }
    if (handshake) {
        return std::string{"the handshake has no communication key (pushcommkey)"};
    }
    auto verified = key_verified_from_.find(query.serial_number);
    if (verified == key_verified_from_.end() || verified->second != address) {
        return fmt::format("no handshake with the communication key from {} yet", address);
    }
    return std::nullopt;
}

boost::asio::awaitable<http_response> device_service::refuse(const protocol::iclock_query& query,
                                                             const http_request& request,
                                                             std::string reason)
{
    const auto& sn = query.serial_number;
    if (refusal_log_.allow(sn + '\n' + request.remote_address + '\n' + reason,
                           std::chrono::steady_clock::now())) {
        log_.event("refused",
                   fmt::format("Refused {} {} from device {} at {}: {} (logged once a minute)",
                               escape_for_log(request.method), escape_for_log(query.path),
                               escape_for_log(sn), request.remote_address, reason),
                   {{"sn", sn}, {"remote", request.remote_address}, {"reason", reason}});
    }
    if (request.method == "POST" && !request.body.empty()) {
        // Kept whole and apart from the device's data: an operator can read it, and the device
        // re-sends once it is let in (a 403 is not an acknowledgement).
        if (!write_allowed()) {
            co_return storage_unavailable();
        }
        std::string table = "refused:" + query.path.substr(query.path.rfind('/') + 1);
        if (query.table) {
            table += ":" + *query.table;
        }
        auto kept = co_await write([&](write_tx& tx) {
            return tx.uploads().store_table_body(sn, table, request.body,
                                                 to_instant(request.received_at));
        });
        if (!kept) {
            co_return storage_failure(fmt::format("keeping a refused upload from {}", sn),
                                      kept.error);
        }
        storage_ok();
    }
    co_return text_response(403, fmt::format("forbidden: {}\n", reason));
}

} // namespace adms::server

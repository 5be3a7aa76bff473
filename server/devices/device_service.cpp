#include "server/devices/device_service.hpp"

#include "protocol/handshake.hpp"
#include "server/devices/device_service_internal.hpp"
#include "server/observability/logger.hpp"

#include <fmt/format.h>

namespace adms::server {
namespace {

// A stable RegistryCode for a SEC device (≤ 32 chars): FNV-1a of its SN, in hex.
std::string registry_code(std::string_view serial_number)
{
    std::uint64_t hash = 1469598103934665603ULL;
    for (unsigned char c : serial_number) {
        hash = (hash ^ c) * 1099511628211ULL;
    }
    return fmt::format("{:016x}", hash);
}

} // namespace

using namespace device_internal;

device_service::device_service(const settings& config, database& store, commit_queue& writer,
                               logger& log, tz::zone server_zone, metrics& stats,
                               command_waiters& waiters, const event_stream& events)
    : config_{config}, store_{store}, writer_{writer}, log_{log},
      server_zone_{server_zone}, stats_{stats}, waiters_{waiters}, events_{events},
      device_networks_{network_list::parse(config.device_networks).value},
      by_serial_number_{static_cast<double>(config.device_rate_limit)},
      by_address_{static_cast<double>(config.address_rate_limit)}
{
    drift_params_.threshold =
        std::chrono::duration_cast<std::chrono::milliseconds>(config.drift_threshold);
}

route_handler device_service::route(endpoint e, rate_limit limit)
{
    return [this, e, limit](const http_request& request,
                            const route_match&) -> boost::asio::awaitable<http_response> {
        auto parsed = protocol::parse_iclock_query(request.target);
        if (!parsed) {
            co_return text_response(400, parsed.error.message + "\n");
        }
        const auto& query = *parsed.query;
        bool time_request = query.type && iequals(*query.type, "time");
        bool limited =
            limit == rate_limit::always || (limit == rate_limit::handshakes && !time_request);
        if (limited) {
            if (auto refused = rate_limited(query, request)) {
                co_return std::move(*refused);
            }
        }
        bool is_handshake = limit == rate_limit::handshakes && !time_request;
        if (auto reason = refusal_reason(query, request, is_handshake)) {
            co_return co_await refuse(query, request, std::move(*reason));
        }
        co_return co_await (this->*e)(request, query);
    };
}

boost::asio::awaitable<http_response> device_service::cdata_get(const http_request& request,
                                                                const protocol::iclock_query& query)
{
    if (query.type && iequals(*query.type, "time")) {
        co_return co_await time_reply(request, query, false);
    }
    co_return co_await handshake(request, query);
}

boost::asio::awaitable<http_response>
device_service::getrequest(const http_request& request, const protocol::iclock_query& query)
{
    if (const auto* cmd = query.find_extra("cmd")) {
        if (iequals(*cmd, "gettime") || iequals(*cmd, "settime")) {
            co_return co_await compat_time_reply(request, query, *cmd);
        }
    }
    co_return co_await poll(request, query);
}

boost::asio::awaitable<http_response> device_service::ping(const http_request& request,
                                                           const protocol::iclock_query& query)
{
    touch(query, request);
    co_return text_response(200, "OK");
}

boost::asio::awaitable<http_response> device_service::rtdata(const http_request& request,
                                                             const protocol::iclock_query& query)
{
    if (query.type && iequals(*query.type, "time")) {
        co_return co_await time_reply(request, query, true);
    }
    touch(query, request);
    co_return text_response(200, "OK");
}

boost::asio::awaitable<http_response> device_service::fdata(const http_request& request,
                                                            const protocol::iclock_query& query)
{
    auto device = touch(query, request);
    if (!write_allowed()) {
        co_return storage_unavailable();
    }
    co_return co_await store_photo(device, request);
}

boost::asio::awaitable<http_response> device_service::registry(const http_request& request,
                                                               const protocol::iclock_query& query)
{
    touch(query, request);
    update_record(query.serial_number, [](device_record& r) { r.dialect = "SEC"; });
    save_device(query.serial_number);
    co_return text_response(200, "RegistryCode=" + registry_code(query.serial_number));
}

boost::asio::awaitable<http_response> device_service::push(const http_request& request,
                                                           const protocol::iclock_query& query)
{
    touch(query, request);
    co_return text_response(200,
                            protocol::format_push_reply({config_.error_delay, config_.poll_delay,
                                                         registry_code(query.serial_number)}));
}

std::string device_service::zone_name_of(std::string_view id) const
{
    if (auto device = find_device(id)) {
        return device->zone_name;
    }
    if (auto it = config_.devices.find(std::string{id});
        it != config_.devices.end() && !it->second.time_zone.empty()) {
        return it->second.time_zone;
    }
    return std::string{server_zone_.name()};
}

boost::asio::awaitable<http_response> device_service::handshake(const http_request& request,
                                                                const protocol::iclock_query& query)
{
    auto device = touch(query, request);
    const auto& sn = query.serial_number;
    if (!device.record.approved) {
        save_device(sn);
        co_return text_response(403, "device not approved\n");
    }
    // A handshake is a (re)boot: set the clock. A failure to queue is logged; the handshake is
    // still answered (its TimeZone and Date header set the clock too).
    co_await queue_time_sync(device, device.is_new ? "first contact" : "boot", request.received_at);

    protocol::handshake_reply reply;
    reply.serial_number = sn;
    reply.legacy_stamp_names = !query.push_version.has_value();
    const auto& record = device.record;
    if (record.full_upload_requested) {
        reply.attlog_stamp = reply.operlog_stamp = reply.attphoto_stamp = "0";
        update_record(sn, [](device_record& r) { r.full_upload_requested = false; });
    } else {
        reply.attlog_stamp = record.attlog_stamp.value_or("None");
        reply.operlog_stamp = record.operlog_stamp.value_or("None");
        reply.attphoto_stamp = record.attphoto_stamp.value_or("None");
    }
    reply.delay = config_.poll_delay;
    reply.error_delay = config_.error_delay;
    update_record(sn, [](device_record& r) {
        if (r.dialect.empty()) {
            r.dialect = "ATT";
        }
    });
    save_device(sn);
    auto now = std::chrono::floor<std::chrono::seconds>(clock::now());
    reply.time_zone = device.zone.time_zone_option(now);
    co_return text_response(200, protocol::render_handshake(reply));
}

} // namespace adms::server

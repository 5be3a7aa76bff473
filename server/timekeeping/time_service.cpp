#include "server/timekeeping/time_service.hpp"

#include "protocol/tylink_time.hpp"
#include "tz/zone.hpp"

#include <fmt/format.h>

namespace adms::server {
namespace {

using protocol::sys_milliseconds;

sys_milliseconds to_ms(std::chrono::system_clock::time_point t)
{
    return std::chrono::floor<std::chrono::milliseconds>(t);
}

time_request_kind kind_of(std::optional<protocol::tylink_biz_type> type)
{
    if (!type) {
        return time_request_kind::unknown;
    }
    return *type == protocol::tylink_biz_type::ntp ? time_request_kind::ntp
                                                   : time_request_kind::dst;
}

} // namespace

time_service::time_service(zone_resolver resolver, metrics& stats,
                           std::optional<network_list> device_networks, clock_function clock)
    : resolver_{std::move(resolver)}, stats_{stats},
      device_networks_{std::move(device_networks)}, clock_{std::move(clock)}
{
}

time_answer time_service::answer(std::string_view device_id, std::string_view body,
                                 std::chrono::system_clock::time_point received_at,
                                 time_transport transport) const
{
    time_answer out;
    auto refuse = [&](std::string_view msg_id, std::string message) {
        out.code = protocol::tylink_code_error;
        out.body = protocol::format_tylink_error_response(msg_id, to_ms(clock_()), message);
        out.error = std::move(message);
        stats_.time_service_answer(transport, out.kind, out.code);
        return out;
    };
    if (body.size() > time_request_max_bytes) {
        out.too_large = true;
        return refuse({}, fmt::format("request larger than {} bytes", time_request_max_bytes));
    }
    auto parsed = protocol::parse_tylink_time_request(body);
    out.kind = kind_of(parsed.biz_type);
    if (!parsed) {
        return refuse(parsed.msg_id, parsed.error);
    }
    if (!protocol::valid_tylink_device_id(device_id)) {
        return refuse(parsed.msg_id,
                      fmt::format("invalid deviceId: expected 1 to {} ASCII letters, digits, '-', "
                                  "'_', '.' or ':'",
                                  protocol::tylink_max_device_id));
    }
    const auto& request = *parsed.request;

    if (request.biz_type == protocol::tylink_biz_type::dst) {
        std::string name = request.timezone_id.empty() ? resolver_(device_id) : request.timezone_id;
        auto found = tz::locate_zone(name, tz::name_match::ignore_case);
        if (!found) {
            return refuse(request.msg_id, found.error);
        }
        // From the request's arrival, one year ahead; an interval in progress keeps its real
        // begin, so a device learns that DST is on now.
        auto from = std::chrono::floor<std::chrono::seconds>(received_at);
        std::vector<protocol::tylink_dst_interval> intervals;
        for (const auto& interval :
             found.value->dst_intervals(from, from + std::chrono::days{365})) {
            intervals.emplace_back(interval.begin, interval.end);
        }
        out.body = protocol::format_tylink_dst_response(
            request.msg_id, to_ms(clock_()), found.value->standard_offset(from), intervals);
        stats_.time_service_answer(transport, out.kind, out.code);
        return out;
    }

    // NTP: the send time (t3) is the last thing read before the body is made.
    auto t2 = to_ms(received_at);
    auto t3 = to_ms(clock_());
    out.body = protocol::format_tylink_ntp_response(request.msg_id, request.dst, t2, t3);
    stats_.time_service_answer(transport, out.kind, out.code);
    return out;
}

http_response time_service::handle(const http_request& request) const
{
    auto path = std::string_view{request.target}.substr(0, request.target.find('?'));
    auto device_id = protocol::tylink_request_path_device(path);
    if (!device_id) {
        return text_response(404, "not found\n");
    }
    if (request.method != "POST") {
        auto reply = text_response(405, "method not allowed\n");
        reply.headers.emplace_back("Allow", "POST");
        return reply;
    }
    // The same networks as /iclock/: the time service is for devices on the site.
    if (!device_networks_ || !device_networks_->contains(request.remote_address)) {
        return text_response(403, "source address outside device_networks\n");
    }
    auto answered = answer(*device_id, request.body, request.received_at, time_transport::http);
    return {answered.too_large ? 413u : 200u, "application/json", std::move(answered.body), {}, {}};
}

} // namespace adms::server

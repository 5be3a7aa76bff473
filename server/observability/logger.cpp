#include "server/observability/logger.hpp"

#include "protocol/civil_time.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

namespace adms::server {
namespace {

std::string iso_utc(std::chrono::system_clock::time_point at)
{
    auto seconds = std::chrono::floor<std::chrono::seconds>(at);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(at - seconds).count();
    return protocol::format_civil_time(std::chrono::local_seconds{seconds.time_since_epoch()},
                                       'T') +
           fmt::format(".{:03}Z", millis);
}

} // namespace

logger::logger(tz::zone zone, bool json, std::FILE* out) : zone_{zone}, json_{json}, out_{out}
{
}

void logger::write(const std::string& line)
{
    std::lock_guard lock{mutex_};
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fputc('\n', out_);
    std::fflush(out_);
}

void logger::request(std::chrono::system_clock::time_point at, std::string_view method,
                     std::string_view target, unsigned version, unsigned status,
                     std::size_t body_bytes)
{
    if (json_) {
        boost::json::object o;
        o["time"] = iso_utc(at);
        o["event"] = "request";
        o["method"] = escape_for_log(method);
        o["target"] = escape_for_log(redact_target(target));
        o["http"] = fmt::format("{}.{}", version / 10, version % 10);
        o["status"] = status;
        o["bytes"] = body_bytes;
        write(boost::json::serialize(o));
        return;
    }
    auto local = zone_.to_local(std::chrono::floor<std::chrono::seconds>(at));
    write(django_request_line(local, method, redact_target(target), version, status, body_bytes));
}

void logger::event(std::string_view kind, std::string_view text,
                   const std::vector<std::pair<std::string, std::string>>& fields)
{
    if (json_) {
        boost::json::object o;
        o["time"] = iso_utc(std::chrono::system_clock::now());
        o["event"] = kind;
        o["message"] = text;
        for (const auto& [key, value] : fields) {
            o[key] = escape_for_log(value);
        }
        write(boost::json::serialize(o));
        return;
    }
    write(std::string{text});
}

void logger::time_sync(const time_sync_event& e)
{
    std::vector<std::pair<std::string, std::string>> fields{
        {"sn", e.serial_number},
        {"server_utc", protocol::format_civil_time(
                           std::chrono::local_seconds{e.server_utc.time_since_epoch()}, 'T')},
        {"zone", e.zone_name},
        {"server_local", protocol::format_civil_time(e.server_local, 'T')},
        {"device_local", protocol::format_civil_time(e.device_local, 'T')},
        {"sending", e.sending},
        {"reason", e.reason}};
    event("time_sync", time_sync_block(e), fields);
}

} // namespace adms::server

#include "server/admin/admin_api.hpp"
#include "server/admin/admin_support.hpp"
#include "server/net.hpp"
#include "server/observability/metrics.hpp"
#include "server/storage/blocking_pool.hpp"
#include "server/version.hpp"

namespace adms::server {

boost::asio::awaitable<http_response> admin_api::healthz(const http_request&, const route_match&)
{
    auto checked = co_await reader.run([this] { return store.check(); });
    bool writes_ok = devices.storage_healthy();
    bool healthy = checked && writes_ok;
    json::object body{
        {"status", healthy ? "ok" : "unhealthy"},
        {"database", checked ? std::string{"ok"} : checked.error.message},
        {"writes", writes_ok ? std::string{"ok"} : "failing: " + devices.storage_error_message()},
        {"devices", devices.device_counts(now_instant(), online_window()).first},
        {"version", version},
    };
    co_return json_reply(healthy ? 200 : 503, body);
}

boost::asio::awaitable<http_response> admin_api::metrics_text(const http_request&,
                                                              const route_match&)
{
    auto [known, online_count] = devices.device_counts(now_instant(), online_window());
    co_return http_response{
        200, "text/plain; version=0.0.4; charset=utf-8", stats.render(known, online_count), {}, {}};
}

} // namespace adms::server

#include "server/admin/admin_api.hpp"

#include "server/admin/admin_support.hpp"
#include "server/devices/command_waiters.hpp"
#include "server/observability/log_format.hpp"
#include "server/observability/logger.hpp"
#include "server/security/admin_token.hpp"

#include <fmt/format.h>

namespace adms::server {

admin_api::admin_api(const settings& c, device_service& d, database& s, blocking_pool& r,
                     metrics& m, command_waiters& w, logger& l, std::vector<std::string> t,
                     webhook_service& hooks, webhook_relay& hook_relay)
    : config{c}, devices{d}, store{s}, reader{r}, stats{m}, waiters{w}, log{l},
      tokens{std::move(t)}, webhooks{hooks}, relay{hook_relay}
{
}

std::optional<http_response> admin_api::authenticate(const http_request& request)
{
    auto presented = bearer_token(request.authorization);
    auto now = std::chrono::steady_clock::now();
    const auto& address = request.remote_address;
    // Too many failures from this address: refused without looking at the token, so guessing
    // stays slow.
    if (auth_failures.exhausted(address, now)) {
        if (auth_log.allow("locked " + address, now)) {
            log.event("admin_auth",
                      fmt::format("Admin API: too many failed logins from {}; answering 429 "
                                  "(logged once a minute)",
                                  address),
                      {{"remote", address}});
        }
        auto reply = error_reply(429, "too many failed logins from this address; retry later");
        reply.headers.emplace_back("Retry-After", "60");
        return reply;
    }
    if (presented && token_matches(*presented, tokens)) {
        return std::nullopt;
    }
    auth_failures.take(address, now);
    auto failures = ++auth_failure_count;
    if (auth_log.allow("failed " + address, now)) {
        auto path = std::string_view{request.target}.substr(0, request.target.find('?'));
        log.event("admin_auth",
                  fmt::format("Admin API: failed login from {} ({}) to {} {}; {} failed "
                              "logins since start (logged once a minute per address)",
                              address, presented ? "invalid bearer token" : "no token",
                              escape_for_log(request.method), escape_for_log(path), failures),
                  {{"remote", address}});
    }
    auto reply = error_reply(401, presented ? "invalid bearer token"
                                            : "missing bearer token: send "
                                              "'Authorization: Bearer <token>'");
    reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"admsd\"");
    return reply;
}

void admin_api::stop()
{
    stopping = true;
    waiters.cancel_all();
}

route_handler admin_api::route(handler h)
{
    return [this, h](const http_request& request, const route_match& match) {
        return (this->*h)(request, match);
    };
}

route_handler admin_api::route(device_handler h)
{
    return [this, h](const http_request& request,
                     const route_match& match) -> boost::asio::awaitable<http_response> {
        const auto& id = match.param("id");
        auto device = devices.find_device(id);
        if (!device) {
            co_return error_reply(404, fmt::format("Device not found: {}", id));
        }
        co_return co_await (this->*h)(*device, request, match);
    };
}

} // namespace adms::server

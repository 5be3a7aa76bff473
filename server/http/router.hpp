#pragma once

#include "server/http/message.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace adms::server {

// What a listener serves: devices and the admin API on one port, or each on its own.
enum class listener_role { both, devices, admin };

// Which listeners serve a route: the device listeners (plain and TLS), the admin listener, or
// every listener (the health check: container probes use the device port).
enum class route_scope { devices, admin, everywhere };

// Who may call a route. `device`: devices, whose networks, keys and rate limits the device server
// checks itself (its refusals are part of the protocol); `bearer`: an admin API token, checked by
// the router before the handler runs; `open`: anyone the listener accepts.
enum class route_auth { open, device, bearer };

// A request matched to its route: the decoded path parameters ({id}) and, for routes that
// declare their query parameters, the decoded query.
struct route_match {
    std::vector<std::pair<std::string_view, std::string>> path;
    query_params query;

    // The path parameter `name` (the route's pattern declares it, so it is always there).
    const std::string& param(std::string_view name) const;
    // The first query parameter `name`, or null.
    const std::string* find_query(std::string_view name) const;
};

// Answers one matched request.
using route_handler =
    std::function<boost::asio::awaitable<http_response>(const http_request&, const route_match&)>;

// One endpoint of the server.
struct route {
    route_scope scope;
    std::string_view method;  // "GET", "POST", …
    std::string_view pattern; // "/devices/{id}/sync-time": literal segments and {name} segments;
                              // also the endpoint's metrics label
    route_auth auth;
    // The query parameters the route accepts; anything else is refused with 400 before the
    // handler runs. nullopt: any query (device routes: devices send what they send).
    std::optional<std::vector<std::string_view>> query;
    route_handler handler;
};

// Checks a bearer-protected request: nullopt to let it through, else the refusal (401, 429).
using bearer_check = std::function<std::optional<http_response>(const http_request&)>;

// Dispatches requests from one table of routes (the only list of the server's endpoints):
// 404 when no route of the listener has the path, the bearer check, 405 with `Allow` when no
// route has the method, 400 for an unknown query parameter, then the handler. Literal segments
// win over parameters (`/devices/sync-time` before `/devices/{id}`). Errors on device paths are
// plain text, as devices expect; elsewhere they are the admin API's JSON errors.
// Thread safety: immutable after construction; dispatch() may run on many threads at once.
class router {
  public:
    router(std::vector<route> routes, bearer_check check);

    // A reply and the label its request is counted under in /metrics.
    struct dispatched {
        http_response response;
        std::string_view label; // the route's pattern, or "other" (a bounded label set)
    };

    // Answers `request` as a listener of `role` serves it. `request` must outlive the awaitable.
    boost::asio::awaitable<dispatched> dispatch(const http_request& request,
                                                listener_role role) const;

    // The metrics label of a path on a listener serving everything: its route's pattern, else
    // "other".
    std::string_view label(std::string_view path) const;

    // Every route, in table order.
    const std::vector<route>& routes() const { return routes_; }

  private:
    struct lookup;
    lookup find(std::string_view path, listener_role role) const;

    std::vector<route> routes_;
    bearer_check check_;
};

// Whether a route of `scope` is served by a listener of `role`.
bool serves(listener_role role, route_scope scope);

// The admin API's error body: {"success":false,"error":"<message>"}.
http_response json_error(unsigned status, std::string message);

} // namespace adms::server

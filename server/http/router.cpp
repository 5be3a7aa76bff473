#include "server/http/router.hpp"

#include "server/http/json_input.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace adms::server {
namespace {

// Splits "/a/b/c" into {"a", "b", "c"}; "/" is one empty segment.
std::vector<std::string_view> split_path(std::string_view path)
{
    std::vector<std::string_view> segments;
    path.remove_prefix(1);
    for (;;) {
        auto slash = path.find('/');
        segments.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) {
            return segments;
        }
        path.remove_prefix(slash + 1);
    }
}

bool is_parameter(std::string_view segment)
{
    return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// The first segment of a pattern or path ("iclock" of "/iclock/cdata").
std::string_view first_segment(std::string_view path)
{
    path.remove_prefix(std::min<std::size_t>(path.size(), 1));
    return path.substr(0, path.find('/'));
}

http_response text_error(unsigned status, std::string body)
{
    return text_response(status, std::move(body));
}

} // namespace

const std::string& route_match::param(std::string_view name) const
{
    for (const auto& [key, value] : path) {
        if (key == name) {
            return value;
        }
    }
    static const std::string none;
    return none;
}

const std::string* route_match::find_query(std::string_view name) const
{
    for (const auto& [key, value] : query) {
        if (key == name) {
            return &value;
        }
    }
    return nullptr;
}

bool serves(listener_role role, route_scope scope)
{
    switch (scope) {
    case route_scope::everywhere:
        return true;
    case route_scope::devices:
        return role != listener_role::admin;
    case route_scope::admin:
        return role != listener_role::devices;
    }
    return false;
}

http_response json_error(unsigned status, std::string message)
{
    boost::json::object body{{"success", false}, {"error", std::move(message)}};
    return {status, "application/json", boost::json::serialize(body), {}, {}};
}

// What find() learned of a path: the routes of its best-matching pattern (one per method), the
// decoded path parameters, and whether errors about it are worded for devices.
struct router::lookup {
    std::vector<const route*> candidates;
    std::vector<std::pair<std::string_view, std::string>> params;
    bool for_devices = false;
    bool malformed = false; // a path parameter is not valid percent-encoding
};

router::router(std::vector<route> routes, bearer_check check)
    : routes_{std::move(routes)}, check_{std::move(check)}
{
}

router::lookup router::find(std::string_view path, listener_role role) const
{
    lookup found;
    auto segments = split_path(path);
    // The best pattern: at the first position where two matching patterns differ, a literal
    // segment beats a parameter.
    const route* best = nullptr;
    std::vector<bool> best_literals;
    for (const auto& r : routes_) {
        if (!serves(role, r.scope)) {
            continue;
        }
        auto pattern = split_path(r.pattern);
        if (pattern.size() != segments.size()) {
            continue;
        }
        std::vector<bool> literals(pattern.size());
        bool matches = true;
        for (std::size_t i = 0; i < pattern.size() && matches; ++i) {
            literals[i] = !is_parameter(pattern[i]);
            matches = literals[i] ? pattern[i] == segments[i] : !segments[i].empty();
        }
        if (matches && (best == nullptr || literals > best_literals)) {
            best = &r;
            best_literals = std::move(literals);
        }
    }
    if (best != nullptr) {
        for (const auto& r : routes_) {
            if (serves(role, r.scope) && r.pattern == best->pattern) {
                found.candidates.push_back(&r);
            }
        }
        found.for_devices = best->scope == route_scope::devices;
        auto pattern = split_path(best->pattern);
        for (std::size_t i = 0; i < pattern.size(); ++i) {
            if (!is_parameter(pattern[i])) {
                continue;
            }
            auto encoded = boost::urls::make_pct_string_view(segments[i]);
            if (!encoded) {
                found.malformed = true;
                break;
            }
            found.params.emplace_back(pattern[i].substr(1, pattern[i].size() - 2),
                                      encoded->decode());
        }
        return found;
    }
    // No route: the path is answered in the words of the routes that share its first segment
    // (a device asking for an unknown /iclock/ path gets plain text), else the listener's.
    auto head = first_segment(path);
    found.for_devices =
        role == listener_role::devices ||
        std::any_of(routes_.begin(), routes_.end(), [&](const route& r) {
            return r.scope == route_scope::devices && first_segment(r.pattern) == head;
        });
    return found;
}

std::string_view router::label(std::string_view path) const
{
    if (path.empty() || path.front() != '/') {
        return "other";
    }
    auto found = find(path, listener_role::both);
    return found.candidates.empty() ? std::string_view{"other"} : found.candidates.front()->pattern;
}

boost::asio::awaitable<router::dispatched> router::dispatch(const http_request& request,
                                                            listener_role role) const
{
    auto path = std::string_view{request.target}.substr(0, request.target.find('?'));
    if (path.empty() || path.front() != '/') {
        co_return dispatched{role == listener_role::devices
                                 ? text_error(400, "malformed request target\n")
                                 : json_error(400, "malformed request target"),
                             "other"};
    }
    auto found = find(path, role);
    if (found.candidates.empty()) {
        co_return dispatched{found.for_devices
                                 ? text_error(404, "not found\n")
                                 : json_error(404, fmt::format("not found: {}", path)),
                             "other"};
    }
    std::string_view label = found.candidates.front()->pattern;
    auto fail = [&](unsigned status, std::string message) {
        return dispatched{found.for_devices ? text_error(status, message + "\n")
                                            : json_error(status, std::move(message)),
                          label};
    };
    if (found.malformed) {
        co_return fail(400, "malformed request target");
    }
    // Authentication before the method: a caller without a token learns nothing more.
    bool bearer = std::any_of(found.candidates.begin(), found.candidates.end(),
                              [](const route* r) { return r->auth == route_auth::bearer; });
    if (bearer && check_) {
        if (auto refused = check_(request)) {
            co_return dispatched{std::move(*refused), label};
        }
    }
    const route* chosen = nullptr;
    std::string allow;
    for (const auto* r : found.candidates) {
        if (r->method == request.method) {
            chosen = r;
        }
        if (allow.find(r->method) == std::string::npos) {
            allow += (allow.empty() ? "" : ", ") + std::string{r->method};
        }
    }
    if (chosen == nullptr) {
        auto reply = found.for_devices
                         ? text_error(405, "method not allowed\n")
                         : json_error(405, fmt::format("method not allowed; use {}", allow));
        reply.headers.emplace_back("Allow", allow);
        co_return dispatched{std::move(reply), label};
    }

    route_match match;
    match.path = std::move(found.params);
    if (chosen->query) {
        auto parsed = boost::urls::parse_origin_form(request.target);
        if (!parsed) {
            co_return fail(400, "malformed request target");
        }
        for (auto param : parsed->params()) {
            match.query.emplace_back(param.key,
                                     param.has_value ? std::string{param.value} : std::string{});
        }
        if (auto unknown = reject_unknown_params(match.query, *chosen->query)) {
            co_return dispatched{{400, "application/json", error_body(*unknown), {}, {}}, label};
        }
    }
    // Awaited on its own line: g++ 12 destroys a co_await result inside a braced initializer
    // twice.
    auto response = co_await chosen->handler(request, match);
    co_return dispatched{std::move(response), label};
}

} // namespace adms::server

#include "server/http/router.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

using namespace adms::server;

namespace {

// A handler that answers with its own name and the path parameter `id`, if any.
route_handler named(std::string name)
{
    return [name](const http_request&,
                  const route_match& match) -> boost::asio::awaitable<http_response> {
        std::string body = name;
        if (!match.param("id").empty()) {
            body += " id=" + match.param("id");
        }
        for (const auto& [key, value] : match.query) {
            body += " " + key + "=" + value;
        }
        co_return text_response(200, body);
    };
}

// The server's route shapes: device paths, an everywhere path, admin paths with a parameter.
router make_router(bool* checked = nullptr)
{
    using params = std::vector<std::string_view>;
    std::vector<route> routes{
        {route_scope::devices, "GET", "/iclock/cdata", route_auth::device, std::nullopt,
         named("handshake")},
        {route_scope::devices, "POST", "/iclock/cdata", route_auth::device, std::nullopt,
         named("upload")},
        {route_scope::devices, "POST", "/tylink/{id}/ext/time/request", route_auth::device,
         std::nullopt, named("tylink")},
        {route_scope::everywhere, "GET", "/healthz", route_auth::open, params{}, named("healthz")},
        {route_scope::admin, "GET", "/devices", route_auth::bearer, params{}, named("list")},
        {route_scope::admin, "POST", "/devices/sync-time", route_auth::bearer,
         params{"timeout", "wait"}, named("sync-all")},
        {route_scope::admin, "GET", "/devices/{id}", route_auth::bearer, params{}, named("get")},
        {route_scope::admin, "PATCH", "/devices/{id}", route_auth::bearer, params{},
         named("patch")},
        {route_scope::admin, "POST", "/devices/{id}/sync-time", route_auth::bearer,
         params{"timeout", "wait"}, named("sync")},
        {route_scope::admin, "GET", "/punches.csv", route_auth::bearer, params{"limit"},
         named("csv")},
    };
    return router{std::move(routes),
                  [checked](const http_request& request) -> std::optional<http_response> {
                      if (checked != nullptr) {
                          *checked = true;
                      }
                      if (request.authorization == "Bearer good") {
                          return std::nullopt;
                      }
                      return text_response(401, "no");
                  }};
}

router::dispatched run(const router& r, std::string method, std::string target,
                       listener_role role = listener_role::both,
                       std::string authorization = "Bearer good")
{
    http_request request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.authorization = std::move(authorization);
    boost::asio::io_context io;
    auto future = boost::asio::co_spawn(io, r.dispatch(request, role), boost::asio::use_future);
    io.run();
    return future.get();
}

} // namespace

TEST_CASE("The router dispatches by method and pattern, a literal segment before a parameter",
          "[router]")
{
    auto r = make_router();
    CHECK(run(r, "GET", "/iclock/cdata?SN=A1").response.body == "handshake");
    CHECK(run(r, "POST", "/iclock/cdata?SN=A1&table=ATTLOG").response.body == "upload");
    CHECK(run(r, "GET", "/devices").response.body == "list");
    CHECK(run(r, "POST", "/devices/sync-time?wait=false").response.body == "sync-all wait=false");
    CHECK(run(r, "GET", "/devices/principal").response.body == "get id=principal");
    CHECK(run(r, "PATCH", "/devices/principal").response.body == "patch id=principal");
    CHECK(run(r, "POST", "/devices/RKQ1/sync-time").response.body == "sync id=RKQ1");
    // Path parameters are percent-decoded.
    CHECK(run(r, "GET", "/devices/a%2Eb").response.body == "get id=a.b");
    CHECK(run(r, "POST", "/tylink/dev-1/ext/time/request").response.body == "tylink id=dev-1");
}

TEST_CASE("The router answers 404 and 405 with Allow from the table, in the words of the path's "
          "audience",
          "[router]")
{
    auto r = make_router();
    auto missing = run(r, "GET", "/wp-admin/setup.php");
    CHECK(missing.response.status == 404);
    CHECK(missing.response.content_type == "application/json");
    CHECK(missing.response.body == R"({"success":false,"error":"not found: /wp-admin/setup.php"})");
    CHECK(missing.label == "other");

    auto device_missing = run(r, "GET", "/iclock/nope?SN=A1");
    CHECK(device_missing.response.status == 404);
    CHECK(device_missing.response.body == "not found\n");

    auto too_deep = run(r, "GET", "/devices/x/y/z");
    CHECK(too_deep.response.status == 404);
    CHECK(run(r, "GET", "/devices//sync-time").response.status == 404);

    auto wrong = run(r, "DELETE", "/devices/principal");
    CHECK(wrong.response.status == 405);
    CHECK(wrong.response.body ==
          R"({"success":false,"error":"method not allowed; use GET, PATCH"})");
    REQUIRE(wrong.response.headers.size() == 1);
    CHECK(wrong.response.headers[0] == std::pair<std::string, std::string>{"Allow", "GET, PATCH"});
    CHECK(wrong.label == "/devices/{id}");

    // A literal route with its own methods: GET /devices/sync-time is not GET /devices/{id}.
    auto literal = run(r, "GET", "/devices/sync-time");
    CHECK(literal.response.status == 405);
    CHECK(literal.response.headers[0].second == "POST");

    auto device_wrong = run(r, "PUT", "/iclock/cdata?SN=A1");
    CHECK(device_wrong.response.status == 405);
    CHECK(device_wrong.response.body == "method not allowed\n");
    CHECK(device_wrong.response.headers[0].second == "GET, POST");
}

TEST_CASE("The router serves each route only on the listeners of its scope", "[router]")
{
    auto r = make_router();
    CHECK(run(r, "GET", "/devices", listener_role::devices).response.status == 404);
    CHECK(run(r, "GET", "/devices", listener_role::devices).response.body == "not found\n");
    CHECK(run(r, "GET", "/iclock/cdata?SN=A1", listener_role::admin).response.status == 404);
    CHECK(run(r, "GET", "/iclock/cdata?SN=A1", listener_role::admin).response.body ==
          "not found\n");
    CHECK(run(r, "GET", "/healthz", listener_role::devices).response.body == "healthz");
    CHECK(run(r, "GET", "/healthz", listener_role::admin).response.body == "healthz");
    CHECK(run(r, "GET", "/devices", listener_role::admin).response.body == "list");
}

TEST_CASE("The router checks the bearer token before the method and the handler, and only on "
          "bearer routes",
          "[router]")
{
    bool checked = false;
    auto r = make_router(&checked);
    CHECK(run(r, "GET", "/devices", listener_role::both, "").response.status == 401);
    CHECK(run(r, "DELETE", "/devices/x", listener_role::both, "").response.status == 401);
    CHECK(checked);
    checked = false;
    CHECK(run(r, "GET", "/healthz", listener_role::both, "").response.status == 200);
    CHECK(run(r, "GET", "/iclock/cdata?SN=A1", listener_role::both, "").response.status == 200);
    // Unknown paths are 404 before authentication.
    CHECK(run(r, "GET", "/nope", listener_role::both, "").response.status == 404);
    CHECK_FALSE(checked);
}

TEST_CASE("The router refuses query parameters a route does not declare, naming them", "[router]")
{
    auto r = make_router();
    auto unknown = run(r, "GET", "/devices?evil=1");
    CHECK(unknown.response.status == 400);
    CHECK(unknown.response.body ==
          R"({"success":false,"error":"field 'evil': unknown query parameter; expected none"})");
    auto listed = run(r, "POST", "/devices/x/sync-time?timeout=5&bogus=");
    CHECK(listed.response.status == 400);
    CHECK(listed.response.body.find("expected timeout, wait") != std::string::npos);
    // Device routes take whatever devices send.
    CHECK(run(r, "GET", "/iclock/cdata?SN=A1&whatever=1").response.status == 200);
    CHECK(run(r, "GET", "/punches.csv?limit=5").response.body == "csv limit=5");
}

TEST_CASE("Endpoint labels are route patterns, a bounded set whatever the path",
          "[router][metrics]")
{
    auto r = make_router();
    CHECK(r.label("/iclock/cdata") == "/iclock/cdata");
    CHECK(r.label("/devices") == "/devices");
    CHECK(r.label("/devices/sync-time") == "/devices/sync-time");
    CHECK(r.label("/devices/principal") == "/devices/{id}");
    CHECK(r.label("/devices/principal/sync-time") == "/devices/{id}/sync-time");
    CHECK(r.label("/devices/RKQ1/nope") == "other");
    CHECK(r.label("/devices//sync-time") == "other");
    CHECK(r.label("/wp-admin/setup.php") == "other");
    CHECK(r.label("/punches.csv") == "/punches.csv");
    CHECK(r.label("/tylink/x/ext/time/request") == "/tylink/{id}/ext/time/request");
    CHECK(run(r, "GET", "/devices/principal").label == "/devices/{id}");
}

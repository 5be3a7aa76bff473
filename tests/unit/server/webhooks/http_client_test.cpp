#include "server/net.hpp"
#include "server/version.hpp"
#include "server/webhooks/http_client.hpp"
#include "server/webhooks/signature.hpp"
#include "tests/unit/server/webhooks/test_receiver.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <set>
#include <sys/socket.h>
#include <thread>

using adms::server::network_list;
using adms::test::test_receiver;
using namespace adms::server::webhooks;
using namespace std::chrono_literals;
namespace net = boost::asio;

namespace {

network_list parse_list(std::string_view text)
{
    auto parsed = network_list::parse(text);
    REQUIRE(parsed.value);
    return *parsed.value;
}

// The spec's test vector as a delivery to `url`.
delivery_request make_request(const std::string& url, const network_list& allow)
{
    auto checked = check_webhook_url(url, allow);
    INFO(checked.error);
    REQUIRE(checked.value);
    delivery_request request;
    request.target = *checked.value;
    request.webhook_id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    request.timestamp = 1614265330;
    request.body = R"({"test": 2432232314})";
    std::vector<secret_bytes> secrets{
        *decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").bytes};
    request.signature =
        signature_header(secrets, request.webhook_id, request.timestamp, request.body);
    request.connect_timeout = 2s;
    request.timeout = 5s;
    request.allow_list = allow;
    return request;
}

// One post() on an io_context of its own, run on this thread.
delivery_result deliver(const delivery_request& request)
{
    net::io_context io;
    auto result = net::co_spawn(io, post(request), net::use_future);
    io.run();
    return result.get();
}

std::string header(const test_receiver::request& request, std::string_view name)
{
    auto it = request.find(name);
    return it == request.end() ? std::string{"(none)"} : std::string{it->value()};
}

std::string url_of(const test_receiver& receiver, std::string_view path = "/hooks/in")
{
    return fmt::format("http://127.0.0.1:{}{}", receiver.port(), path);
}

// 127.0.0.0/8 and ::1, the allow-list of most cases here.
const network_list loopback = *network_list::parse("127.0.0.0/8,::1").value;

} // namespace

TEST_CASE("webhook client: a 2xx delivery carries the exact body and the Standard Webhooks "
          "headers",
          "[webhooks][client]")
{
    test_receiver receiver{[](const auto&) { return test_receiver::answer(204, ""); }};
    auto request = make_request(url_of(receiver, "/hooks/in?tenant=7"), loopback);
    request.extra_headers = {{"Authorization", "token key:secret"}, {"X-Tenant", "7"}};
    auto result = deliver(request);
    INFO(result.error);
    CHECK(result.outcome == delivery_outcome::success);
    CHECK(result.status == 204);
    CHECK(result.error.empty());
    CHECK(result.remote == fmt::format("127.0.0.1:{}", receiver.port()));
    CHECK(result.duration < 5s);

    auto received = receiver.requests();
    REQUIRE(received.size() == 1);
    const auto& got = received[0];
    CHECK(got.method() == boost::beast::http::verb::post);
    CHECK(got.target() == "/hooks/in?tenant=7");
    CHECK(got.version() == 11);
    CHECK(got.body() == R"({"test": 2432232314})");
    CHECK(header(got, "host") == fmt::format("127.0.0.1:{}", receiver.port()));
    CHECK(header(got, "content-type") == "application/json");
    CHECK(header(got, "content-length") == "20");
    CHECK(header(got, "user-agent") == fmt::format("admsd/{}", adms::server::version));
    CHECK(header(got, "connection") == "close");
    CHECK(header(got, "webhook-id") == "msg_p5jXN8AQM9LWM0D4loKWxJek");
    CHECK(header(got, "webhook-timestamp") == "1614265330");
    CHECK(header(got, "webhook-signature") == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    CHECK(header(got, "authorization") == "token key:secret");
    CHECK(header(got, "x-tenant") == "7");
}

TEST_CASE("webhook client: a 500 is a failed attempt with its status and body",
          "[webhooks][client]")
{
    std::string big(10'000, 'e');
    test_receiver receiver{[&](const auto&) { return test_receiver::answer(500, big); }};
    auto result = deliver(make_request(url_of(receiver), loopback));
    CHECK(result.outcome == delivery_outcome::http_status);
    CHECK(result.status == 500);
    CHECK(result.error == "the receiver answered 500 Internal Server Error");
    // At most 4 KB of the body is kept, and a bigger one is no error.
    CHECK(result.body == big.substr(0, max_kept_body));
    CHECK_FALSE(result.retry_after);
}

TEST_CASE("webhook client: a 302 is a failure and its Location is never followed",
          "[webhooks][client]")
{
    test_receiver elsewhere{[](const auto&) { return test_receiver::answer(200); }};
    test_receiver receiver{[&](const auto&) {
        return test_receiver::answer(302, "", {{"Location", url_of(elsewhere, "/stolen")}});
    }};
    auto result = deliver(make_request(url_of(receiver), loopback));
    CHECK(result.outcome == delivery_outcome::http_status);
    CHECK(result.status == 302);
    CHECK(receiver.requests().size() == 1);
    CHECK(elsewhere.connections_after_probe() == 0);
}

TEST_CASE("webhook client: a 429 brings its Retry-After", "[webhooks][client]")
{
    test_receiver receiver{[](const auto&) {
        return test_receiver::answer(429, "slow down", {{"Retry-After", "120"}});
    }};
    auto result = deliver(make_request(url_of(receiver), loopback));
    CHECK(result.outcome == delivery_outcome::http_status);
    CHECK(result.status == 429);
    CHECK(result.retry_after == 120s);
    CHECK(result.body == "slow down");

    test_receiver dated{[](const auto&) {
        return test_receiver::answer(503, "ok", {{"Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"}});
    }};
    auto past = deliver(make_request(url_of(dated), loopback));
    CHECK(past.status == 503);
    CHECK(past.retry_after == 0s);
}

TEST_CASE("webhook client: a receiver that never answers is cut off at the request timeout",
          "[webhooks][client]")
{
    test_receiver receiver{[](const auto&) { return test_receiver::never_answer(); }};
    auto request = make_request(url_of(receiver), loopback);
    request.timeout = 1s;
    auto result = deliver(request);
    CHECK(result.outcome == delivery_outcome::timeout);
    CHECK(result.error ==
          "no response within the 1000 ms timeout (while reading the response header)");
    CHECK(result.duration >= 1s);
    CHECK(result.duration < 3s);
    CHECK(receiver.requests().size() == 1);
}

TEST_CASE("webhook client: a closed port is a connect error", "[webhooks][client]")
{
    std::uint16_t port = 0;
    {
        net::io_context io;
        net::ip::tcp::acceptor acceptor{io, {net::ip::make_address("127.0.0.1"), 0}};
        port = acceptor.local_endpoint().port();
    }
    auto result = deliver(make_request(fmt::format("http://127.0.0.1:{}/", port), loopback));
    CHECK(result.outcome == delivery_outcome::connect_error);
    CHECK(result.status == 0);
    CHECK(result.error ==
          fmt::format("cannot connect to 127.0.0.1: 127.0.0.1:{}: Connection refused", port));
}

namespace {

// A listening port whose accept queue is full: the kernel drops further SYNs, so a connection
// to it neither succeeds nor fails until the client gives up. Nothing ever accepts.
struct full_backlog {
    net::io_context io;
    net::ip::tcp::acceptor acceptor{io};
    std::vector<net::ip::tcp::socket> fillers;
    std::uint16_t port = 0;

    full_backlog()
    {
        net::ip::tcp::endpoint endpoint{net::ip::make_address("127.0.0.1"), 0};
        acceptor.open(endpoint.protocol());
        acceptor.bind(endpoint);
        acceptor.listen(0);
        port = acceptor.local_endpoint().port();
        for (int i = 0; i < 8; ++i) {
            auto& socket = fillers.emplace_back(io);
            socket.open(net::ip::tcp::v4());
            socket.non_blocking(true);
            // connect(2) itself: Asio's connect() would wait for the connection to complete.
            auto target = acceptor.local_endpoint();
            [[maybe_unused]] int in_progress =
                ::connect(socket.native_handle(), target.data(), target.size());
        }
    }
};

} // namespace

TEST_CASE("webhook client: a connection never accepted ends at the connect timeout, or at the "
          "request timeout when that comes first",
          "[webhooks][client]")
{
    full_backlog server;
    auto request = make_request(fmt::format("http://127.0.0.1:{}/", server.port), loopback);
    request.connect_timeout = 500ms;
    request.timeout = 5s;
    auto result = deliver(request);
    CHECK(result.outcome == delivery_outcome::connect_error);
    CHECK(result.error ==
          fmt::format("cannot connect to 127.0.0.1: 127.0.0.1:{}: no answer within 500 ms",
                      server.port));
    CHECK(result.duration >= 500ms);
    CHECK(result.duration < 3s);

    request.connect_timeout = 5s;
    request.timeout = 300ms;
    result = deliver(request);
    CHECK(result.outcome == delivery_outcome::timeout);
    // The address had what was left of the 300 ms when it was dialled.
    CHECK(result.error.starts_with(fmt::format("no connection to 127.0.0.1 within the 300 ms "
                                               "timeout (127.0.0.1:{}: no answer within ",
                                               server.port)));
    CHECK(result.duration >= 300ms);
    CHECK(result.duration < 3s);
}

TEST_CASE("webhook client: a name that does not resolve fails within the request timeout",
          "[webhooks][client]")
{
    // .invalid never resolves (RFC 6761). Where DNS answers, that is a prompt failure; where the
    // name server does not answer, the request timeout ends the wait.
    auto request = make_request("http://nonexistent.invalid/", network_list{});
    request.timeout = 2s;
    auto result = deliver(request);
    INFO(result.error);
    if (result.outcome == delivery_outcome::timeout) {
        CHECK(result.error == "resolving nonexistent.invalid took longer than the 2000 ms timeout");
    } else {
        CHECK(result.outcome == delivery_outcome::connect_error);
        CHECK(result.error.starts_with("cannot resolve nonexistent.invalid: "));
    }
    CHECK(result.duration < 3s);
}

TEST_CASE("webhook client: a refused address is never dialled", "[webhooks][client][ssrf]")
{
    test_receiver receiver{[](const auto&) { return test_receiver::answer(200); }};
    // The URL was accepted under an allow-list that has since been removed: post() checks again.
    auto request = make_request(url_of(receiver), loopback);
    request.allow_list = network_list{};
    auto result = deliver(request);
    CHECK(result.outcome == delivery_outcome::blocked);
    CHECK(result.error ==
          "127.0.0.1 is a loopback address; add it to webhook_allow_networks to allow it");
    CHECK(result.remote.empty());
    CHECK(receiver.connections_after_probe() == 0);
}

TEST_CASE("webhook client: a name that resolves to loopback is refused without the allow-list "
          "and delivered with it",
          "[webhooks][client][ssrf]")
{
    test_receiver receiver{[](const auto&) { return test_receiver::answer(200); }};
    auto url = fmt::format("http://localhost:{}/hooks/in", receiver.port());
    auto refused = deliver(make_request(url, network_list{}));
    CHECK(refused.outcome == delivery_outcome::blocked);
    CHECK(refused.error.starts_with("localhost resolves only to refused addresses ("));
    CHECK(refused.error.find(" is a loopback address; add it to webhook_allow_networks to allow "
                             "it") != std::string::npos);
    CHECK(receiver.connections_after_probe() == 0);

    // Only 127.0.0.0/8: were localhost also ::1, that address would be dropped, not dialled.
    auto allowed = deliver(make_request(url, parse_list("127.0.0.0/8")));
    INFO(allowed.error);
    CHECK(allowed.outcome == delivery_outcome::success);
    CHECK(allowed.remote == fmt::format("127.0.0.1:{}", receiver.port()));
    REQUIRE(receiver.requests().size() == 1);
    CHECK(header(receiver.requests()[0], "host") == fmt::format("localhost:{}", receiver.port()));
}

TEST_CASE("webhook client: IPv6 loopback is refused by default and delivered when allowed",
          "[webhooks][client][ssrf]")
{
    test_receiver receiver{[](const auto&) { return test_receiver::answer(200); }, nullptr, "::1"};
    auto url = fmt::format("http://[::1]:{}/in", receiver.port());
    auto request = make_request(url, parse_list("::1"));
    auto allowed = deliver(request);
    INFO(allowed.error);
    CHECK(allowed.outcome == delivery_outcome::success);
    CHECK(allowed.remote == fmt::format("[::1]:{}", receiver.port()));
    REQUIRE(receiver.requests().size() == 1);
    CHECK(header(receiver.requests()[0], "host") == fmt::format("[::1]:{}", receiver.port()));

    request.allow_list = parse_list("127.0.0.0/8");
    auto refused = deliver(request);
    CHECK(refused.outcome == delivery_outcome::blocked);
    CHECK(refused.error == "::1 is a loopback address; add it to webhook_allow_networks to "
                           "allow it");
    CHECK(receiver.connections_after_probe() == 1);
}

TEST_CASE("webhook client: a header that would split the request is refused before dialling",
          "[webhooks][client]")
{
    test_receiver receiver{[](const auto&) { return test_receiver::answer(200); }};
    auto request = make_request(url_of(receiver), loopback);
    request.extra_headers = {{"X-Note", "a\r\nX-Injected: 1"}};
    auto result = deliver(request);
    CHECK(result.outcome == delivery_outcome::invalid_request);
    CHECK(result.error == "the value of the header X-Note holds a control byte (CR, LF, NUL, ...)");
    request.extra_headers = {{"Content-Length", "0"}};
    CHECK(deliver(request).error == "the header Content-Length is set by admsd and cannot be "
                                    "replaced");
    CHECK(receiver.connections_after_probe() == 0);
}

TEST_CASE("webhook client: many coroutines post at once from two threads", "[webhooks][client]")
{
    test_receiver receiver{[](const auto&) { return test_receiver::answer(200); }};
    constexpr int count = 16;
    std::vector<delivery_request> requests;
    for (int i = 0; i < count; ++i) {
        requests.push_back(make_request(url_of(receiver), loopback));
        requests.back().webhook_id = fmt::format("evt_{}", i);
    }
    net::io_context io;
    std::vector<std::future<delivery_result>> results;
    for (const auto& request : requests) {
        results.push_back(net::co_spawn(io, post(request), net::use_future));
    }
    std::thread second{[&] { io.run(); }};
    io.run();
    second.join();
    for (auto& result : results) {
        CHECK(result.get().outcome == delivery_outcome::success);
    }
    std::set<std::string> ids;
    for (const auto& got : receiver.requests()) {
        ids.insert(header(got, "webhook-id"));
    }
    CHECK(ids.size() == count);
}

TEST_CASE("webhook client: check_extra_header keeps admsd's own headers and framing",
          "[webhooks][client]")
{
    CHECK(check_extra_header("Authorization", "token k:s").empty());
    CHECK(check_extra_header("X-Api-Key", "a\tb").empty());
    for (auto name : {"Host", "content-length", "Transfer-Encoding", "Connection", "User-Agent",
                      "Webhook-Signature", "webhook-id", "WEBHOOK-TIMESTAMP", "Content-Type"}) {
        INFO(name);
        CHECK(check_extra_header(name, "x").ends_with("is set by admsd and cannot be replaced"));
    }
    CHECK(check_extra_header("Bad Name", "x") == "the header name 'Bad Name' is not an HTTP token");
    CHECK(check_extra_header("", "x") == "the header name '' is not an HTTP token");
    CHECK(check_extra_header("X-A", std::string{"a\0b", 3}).find("control byte") !=
          std::string::npos);
    CHECK(check_extra_header("X-A", std::string(9000, 'a')) ==
          "the value of the header X-A is longer than 8192 bytes");
}

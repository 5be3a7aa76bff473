#include "server/webhooks/http_client.hpp"

#include "protocol/text.hpp"
#include "server/net.hpp"
#include "server/version.hpp"
#include "server/webhooks/address_policy.hpp"
#include "server/webhooks/client_tls.hpp"
#include "server/webhooks/retry_after.hpp"

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>

#include <array>
#include <limits>
#include <memory>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace adms::server::webhooks {
namespace {

namespace ssl = net::ssl;
using clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;
using std::chrono::milliseconds;
constexpr auto as_result = net::as_tuple(net::use_awaitable);

// A reply's header may not be larger than this.
constexpr std::uint32_t max_header_size = 16 * 1024;

// What one attempt carries from step to step.
struct attempt {
    const delivery_request& request;
    clock::time_point deadline;
    delivery_result result;

    void fail(delivery_outcome outcome, std::string error)
    {
        result.outcome = outcome;
        result.error = std::move(error);
    }
    long long timeout_ms() const { return request.timeout.count(); }
};

// `text` as one line of printable ASCII (for reason phrases and OpenSSL's messages).
std::string printable(std::string_view text, std::size_t limit = 300)
{
    std::string out;
    for (std::size_t i = 0; i < text.size() && i < limit; ++i) {
        auto byte = static_cast<unsigned char>(text[i]);
        out += (byte < 0x20 || byte >= 0x7f) ? '?' : text[i];
    }
    return out;
}

std::string format_endpoint(const tcp::endpoint& endpoint)
{
    auto address = endpoint.address().to_string();
    return endpoint.address().is_v6() ? fmt::format("[{}]:{}", address, endpoint.port())
                                      : fmt::format("{}:{}", address, endpoint.port());
}

bool is_token(std::string_view name)
{
    constexpr std::string_view specials = "!#$%&'*+-.^_`|~";
    return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               specials.find(c) != std::string_view::npos;
    });
}

// True when `value` holds a control byte other than TAB: CR and LF would end the header early
// and let the text after them become headers of its own.
bool has_control_byte(std::string_view value)
{
    return std::any_of(value.begin(), value.end(), [](char c) {
        auto byte = static_cast<unsigned char>(c);
        return (byte < 0x20 && byte != '\t') || byte == 0x7f;
    });
}

// What check_webhook_url() guarantees, checked again for a request built some other way, and the
// headers.
std::string check_request(const delivery_request& request)
{
    const auto& target = request.target;
    auto bad_target = target.target.empty() || target.target.front() != '/' ||
                      std::any_of(target.target.begin(), target.target.end(), [](char c) {
                          return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
                      });
    if (bad_target || target.host.empty() || has_control_byte(target.host) || target.port == 0) {
        return "the request's target is not one check_webhook_url() produced";
    }
    if (has_control_byte(request.webhook_id) || has_control_byte(request.signature)) {
        return "webhook-id or webhook-signature holds a control byte";
    }
    for (const auto& header : request.extra_headers) {
        if (auto error = check_extra_header(header.name, header.value); !error.empty()) {
            return error;
        }
    }
    return {};
}

using results_type = tcp::resolver::results_type;

// A lookup in flight: shared by the waiting coroutine, the lookup's handler and the deadline's.
struct lookup {
    explicit lookup(const net::any_io_executor& executor) : resolver{executor}, done{executor, 1} {}
    tcp::resolver resolver;
    net::experimental::concurrent_channel<void(error_code, results_type)> done;
};

// Resolves `host` (A and AAAA) by the deadline. getaddrinfo() cannot be interrupted, so at the
// deadline this stops waiting for it instead: the lookup finishes on its own, and its state
// lives until then. Sets a timeout or connect_error and returns nothing on failure.
net::awaitable<std::vector<tcp::endpoint>> resolve(attempt& a)
{
    const auto& target = a.request.target;
    auto executor = co_await net::this_coro::executor;
    auto state = std::make_shared<lookup>(executor);
    state->resolver.async_resolve(target.host, std::to_string(target.port),
                                  tcp::resolver::numeric_service,
                                  [state](error_code ec, results_type results) {
                                      state->done.try_send(ec, std::move(results));
                                  });
    net::steady_timer timer{executor, a.deadline};
    timer.async_wait([state](error_code ec) {
        if (!ec) {
            state->done.cancel();
        }
    });
    auto [ec, results] = co_await state->done.async_receive(as_result);
    timer.cancel();
    std::vector<tcp::endpoint> endpoints;
    if (ec == net::experimental::error::channel_cancelled) {
        a.fail(delivery_outcome::timeout, fmt::format("resolving {} took longer than the {} ms "
                                                      "timeout",
                                                      target.host, a.timeout_ms()));
    } else if (ec) {
        a.fail(delivery_outcome::connect_error,
               fmt::format("cannot resolve {}: {}", target.host, printable(ec.message())));
    } else {
        for (const auto& entry : results) {
            endpoints.push_back(entry.endpoint());
        }
    }
    co_return endpoints;
}

// The addresses of the target that may be dialled: the literal address or every address its
// name resolves to, minus those the SSRF rules refuse. When none is left, the attempt has failed
// (blocked, or the lookup's failure).
net::awaitable<std::vector<tcp::endpoint>> dialable_endpoints(attempt& a)
{
    const auto& target = a.request.target;
    std::vector<tcp::endpoint> candidates;
    if (target.host_is_address) {
        error_code ec;
        auto address = net::ip::make_address(target.host, ec);
        if (ec) {
            a.fail(delivery_outcome::invalid_request,
                   fmt::format("{} is not an IP address", protocol::text::quote(target.host)));
            co_return candidates;
        }
        candidates.emplace_back(address, target.port);
    } else {
        candidates = co_await resolve(a);
        if (candidates.empty()) {
            if (a.result.error.empty()) {
                a.fail(delivery_outcome::connect_error,
                       fmt::format("{} resolves to no address", target.host));
            }
            co_return candidates;
        }
    }
    std::vector<tcp::endpoint> allowed;
    std::vector<std::string> refused;
    std::string first_refusal;
    for (const auto& endpoint : candidates) {
        // The very address that will be dialled is the one checked: no second lookup later.
        auto address = endpoint.address().to_string();
        auto check = check_address(address, a.request.allow_list);
        if (check.allowed) {
            allowed.push_back(endpoint);
            continue;
        }
        refused.push_back(address);
        if (first_refusal.empty()) {
            first_refusal = std::move(check.error);
        }
    }
    if (allowed.empty()) {
        a.fail(delivery_outcome::blocked,
               target.host_is_address
                   ? first_refusal
                   : fmt::format("{} resolves only to refused addresses ({}): {}", target.host,
                                 fmt::join(refused, ", "), first_refusal));
    }
    co_return allowed;
}

// Dials `endpoints` in order, each for at most the connect timeout, until one accepts.
net::awaitable<bool> connect_first(beast::tcp_stream& stream,
                                   const std::vector<tcp::endpoint>& endpoints, attempt& a)
{
    std::vector<std::string> failures;
    for (const auto& endpoint : endpoints) {
        auto now = clock::now();
        if (now >= a.deadline) {
            break;
        }
        error_code ignored;
        stream.socket().close(ignored); // a failed connect leaves the socket unusable
        auto limit = std::min<clock::time_point>(now + a.request.connect_timeout, a.deadline);
        stream.expires_at(limit);
        auto [ec] = co_await stream.async_connect(endpoint, as_result);
        if (!ec) {
            a.result.remote = format_endpoint(endpoint);
            co_return true;
        }
        auto waited = std::chrono::duration_cast<milliseconds>(limit - now).count();
        failures.push_back(fmt::format("{}: {}", format_endpoint(endpoint),
                                       ec == beast::error::timeout
                                           ? fmt::format("no answer within {} ms", waited)
                                           : printable(ec.message())));
    }
    if (clock::now() >= a.deadline) {
        a.fail(delivery_outcome::timeout,
               fmt::format("no connection to {} within the {} ms timeout ({})",
                           a.request.target.host, a.timeout_ms(), fmt::join(failures, "; ")));
    } else {
        a.fail(delivery_outcome::connect_error,
               fmt::format("cannot connect to {}: {}", a.request.target.host,
                           fmt::join(failures, "; ")));
    }
    co_return false;
}

// The request as sent: the Standard Webhooks headers, the endpoint's own, the signed body.
http::request<http::string_body> build_message(const delivery_request& request)
{
    const auto& target = request.target;
    bool default_port = target.port == (target.is_tls ? 443 : 80);
    auto host = target.host_is_address && target.host.find(':') != std::string::npos
                    ? fmt::format("[{}]", target.host)
                    : target.host;
    http::request<http::string_body> message{http::verb::post, target.target, 11};
    message.set(http::field::host, default_port ? host : fmt::format("{}:{}", host, target.port));
    message.set(http::field::user_agent, fmt::format("admsd/{}", version));
    message.set(http::field::content_type, "application/json");
    message.set("webhook-id", request.webhook_id);
    message.set("webhook-timestamp", std::to_string(request.timestamp));
    if (!request.signature.empty()) {
        message.set("webhook-signature", request.signature);
    }
    for (const auto& header : request.extra_headers) {
        message.insert(header.name, header.value);
    }
    message.keep_alive(false); // one connection per request in this version
    message.body() = request.body;
    message.prepare_payload();
    return message;
}

// A failed write or read: a timeout when the deadline cut it off, otherwise the connection failed.
void fail_io(attempt& a, const error_code& ec, std::string_view step)
{
    static const auto& http_errors = http::make_error_code(http::error::bad_version).category();
    if (ec == beast::error::timeout) {
        a.fail(
            delivery_outcome::timeout,
            fmt::format("no response within the {} ms timeout (while {})", a.timeout_ms(), step));
    } else if (ec == http::error::end_of_stream || ec == net::error::eof) {
        a.fail(
            delivery_outcome::connect_error,
            fmt::format("the receiver closed the connection without a response (while {})", step));
    } else if (ec.category() == http_errors) {
        a.fail(delivery_outcome::connect_error,
               fmt::format("invalid HTTP response: {}", printable(ec.message())));
    } else {
        a.fail(delivery_outcome::connect_error,
               fmt::format("{} failed: {}", step, printable(ec.message())));
    }
}

// The status, Retry-After and the outcome they make.
void take_header(const http::response<http::buffer_body>& response, attempt& a)
{
    auto& result = a.result;
    result.status = static_cast<int>(response.result_int());
    if (auto it = response.find(http::field::retry_after); it != response.end()) {
        auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
        result.retry_after =
            parse_retry_after(std::string_view{it->value().data(), it->value().size()}, now);
    }
    if (result.status >= 200 && result.status <= 299) {
        result.outcome = delivery_outcome::success;
        result.error.clear();
        return;
    }
    auto reason = response.reason();
    a.fail(delivery_outcome::http_status,
           fmt::format("the receiver answered {} {}", result.status,
                       printable(std::string_view{reason.data(), reason.size()}, 100)));
}

// Reads the body after the header: the first max_kept_body bytes are kept, the rest up to
// max_read_body is read and dropped, and then the connection is closed. The status has decided
// the outcome already, so a body cut short (deadline, reset) changes nothing.
template <class Stream>
net::awaitable<void> read_body(Stream& stream, beast::flat_buffer& buffer,
                               http::response_parser<http::buffer_body>& parser, attempt& a)
{
    std::array<char, 4096> chunk{};
    std::size_t total = 0;
    while (!parser.is_done() && total < max_read_body) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        beast::get_lowest_layer(stream).expires_at(a.deadline);
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, as_result);
        auto got = chunk.size() - parser.get().body().size;
        auto keep = std::min(got, max_kept_body - a.result.body.size());
        a.result.body.append(chunk.data(), keep);
        total += got;
        if (ec && ec != http::error::need_buffer) {
            break;
        }
    }
}

// Writes the request and reads the reply on a connected stream (plain or TLS).
template <class Stream>
net::awaitable<void> exchange(Stream& stream, const http::request<http::string_body>& message,
                              attempt& a)
{
    beast::get_lowest_layer(stream).expires_at(a.deadline);
    auto [write_ec, written] = co_await http::async_write(stream, message, as_result);
    if (write_ec) {
        fail_io(a, write_ec, "sending the request");
        co_return;
    }
    beast::flat_buffer buffer;
    // Interim 1xx replies (100 Continue, 103 Early Hints) come before the real one: skip them.
    for (int interim = 0; interim < 5; ++interim) {
        http::response_parser<http::buffer_body> parser;
        parser.header_limit(max_header_size);
        parser.body_limit(std::numeric_limits<std::uint64_t>::max()); // read_body bounds it
        beast::get_lowest_layer(stream).expires_at(a.deadline);
        auto [read_ec, read] = co_await http::async_read_header(stream, buffer, parser, as_result);
        if (read_ec) {
            fail_io(a, read_ec, "reading the response header");
            co_return;
        }
        if (parser.get().result_int() / 100 == 1) {
            continue;
        }
        take_header(parser.get(), a);
        co_await read_body(stream, buffer, parser, a);
        co_return;
    }
    a.fail(delivery_outcome::connect_error, "the receiver sent only interim (1xx) responses");
}

// SNI and the peer checks, on the stream. OpenSSL verifies the chain; host_name_verification
// (RFC 6125: DNS names, or IP addresses for a literal host) checks the leaf certificate. The first
// failure is written to `failure` for the error text; the callback may outlive the handshake
// (a renegotiation), hence the shared string.
std::string prepare_tls(beast::ssl_stream<beast::tcp_stream>& stream, const webhook_target& target,
                        const std::shared_ptr<std::string>& failure)
{
    // SNI carries names only (RFC 6066); a literal address is checked against IP SANs instead.
    if (!target.host_is_address &&
        SSL_set_tlsext_host_name(stream.native_handle(), target.host.c_str()) != 1) {
        return "cannot set the TLS server name (SNI)";
    }
    auto verify = [failure, host = target.host, check = ssl::host_name_verification{target.host}](
                      bool preverified, ssl::verify_context& context) {
        if (!preverified) {
            auto* store = context.native_handle();
            *failure = fmt::format("certificate verification failed: {}",
                                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)));
            return false;
        }
        if (!check(preverified, context)) {
            *failure = fmt::format("the certificate is not valid for the host name {}", host);
            return false;
        }
        return true;
    };
    error_code ec;
    stream.set_verify_mode(ssl::verify_peer, ec);
    if (!ec) {
        stream.set_verify_callback(std::move(verify), ec);
    }
    return ec ? fmt::format("cannot set up TLS verification: {}", printable(ec.message()))
              : std::string{};
}

// TLS on a connected socket, then the exchange. No close_notify at the end: the request said
// "Connection: close", and waiting on a peer's shutdown could only cost time.
net::awaitable<void> exchange_tls(beast::tcp_stream& socket,
                                  const http::request<http::string_body>& message, attempt& a)
{
    auto tls = client_tls_context(a.request.ca_file);
    if (!tls.context) {
        a.fail(delivery_outcome::tls_error, std::move(tls.error));
        co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream{std::move(socket), *tls.context};
    auto failure = std::make_shared<std::string>();
    if (auto error = prepare_tls(stream, a.request.target, failure); !error.empty()) {
        a.fail(delivery_outcome::tls_error, std::move(error));
        co_return;
    }
    beast::get_lowest_layer(stream).expires_at(a.deadline);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::client, as_result);
    if (ec == beast::error::timeout) {
        a.fail(delivery_outcome::timeout,
               fmt::format("no TLS handshake within the {} ms timeout", a.timeout_ms()));
        co_return;
    }
    if (ec) {
        a.fail(delivery_outcome::tls_error,
               fmt::format("TLS handshake with {} failed: {}", a.result.remote,
                           failure->empty() ? printable(ec.message()) : *failure));
        co_return;
    }
    co_await exchange(stream, message, a);
}

net::awaitable<delivery_result> run_attempt(const delivery_request& request)
{
    auto start = clock::now();
    attempt a{request, start + request.timeout, {}};
    if (auto error = check_request(request); !error.empty()) {
        a.fail(delivery_outcome::invalid_request, std::move(error));
    } else {
        auto endpoints = co_await dialable_endpoints(a);
        if (!endpoints.empty()) {
            auto executor = co_await net::this_coro::executor;
            beast::tcp_stream stream{executor};
            bool connected = co_await connect_first(stream, endpoints, a);
            if (connected) {
                auto message = build_message(request);
                if (request.target.is_tls) {
                    co_await exchange_tls(stream, message, a);
                } else {
                    co_await exchange(stream, message, a);
                }
            }
        }
    }
    a.result.duration = std::chrono::duration_cast<milliseconds>(clock::now() - start);
    co_return std::move(a.result);
}

} // namespace

std::string_view to_string(delivery_outcome outcome)
{
    switch (outcome) {
    case delivery_outcome::success:
        return "success";
    case delivery_outcome::http_status:
        return "http_status";
    case delivery_outcome::timeout:
        return "timeout";
    case delivery_outcome::connect_error:
        return "connect_error";
    case delivery_outcome::tls_error:
        return "tls_error";
    case delivery_outcome::blocked:
        return "blocked";
    case delivery_outcome::invalid_request:
        return "invalid_request";
    }
    return "unknown";
}

std::string check_extra_header(std::string_view name, std::string_view value)
{
    // Framing, routing and the signature's headers: admsd's own, never an endpoint's.
    constexpr std::array<std::string_view, 16> reserved{"host",
                                                        "content-length",
                                                        "content-type",
                                                        "transfer-encoding",
                                                        "connection",
                                                        "keep-alive",
                                                        "upgrade",
                                                        "te",
                                                        "trailer",
                                                        "expect",
                                                        "user-agent",
                                                        "proxy-connection",
                                                        "webhook-id",
                                                        "webhook-timestamp",
                                                        "webhook-signature",
                                                        "content-encoding"};
    if (!is_token(name) || name.size() > 256) {
        return fmt::format("the header name {} is not an HTTP token", protocol::text::quote(name));
    }
    for (auto reserved_name : reserved) {
        if (protocol::text::iequals(name, reserved_name)) {
            return fmt::format("the header {} is set by admsd and cannot be replaced", name);
        }
    }
    if (value.size() > 8192) {
        return fmt::format("the value of the header {} is longer than 8192 bytes", name);
    }
    if (has_control_byte(value)) {
        return fmt::format("the value of the header {} holds a control byte (CR, LF, NUL, ...)",
                           name);
    }
    return {};
}

net::awaitable<delivery_result> post(const delivery_request& request)
{
    // Each attempt runs on a strand of its own: the stream's deadline timer and its I/O then
    // never run at the same time, whatever threads run the caller's executor.
    auto executor = co_await net::this_coro::executor;
    auto result = co_await net::co_spawn(net::make_strand(executor), run_attempt(request),
                                         net::use_awaitable);
    co_return result;
}

} // namespace adms::server::webhooks

#include "server/http/session.hpp"

#include "protocol/zk_time.hpp"
#include "server/net.hpp"
#include "server/observability/log_format.hpp"
#include "server/observability/logger.hpp"
#include "server/observability/metrics.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>

#include <array>

namespace adms::server {
namespace {

constexpr std::size_t header_limit_bytes = 16 * 1024;
constexpr auto write_timeout = std::chrono::seconds{30};

// The instant for a Date header: the current second, rounded to the nearest.
std::chrono::sys_seconds rounded_now()
{
    return std::chrono::round<std::chrono::seconds>(std::chrono::system_clock::now());
}

// The status and reason for a request that could not be read, or nullopt when there is nothing
// to answer (closed, reset or timed out).
std::optional<std::pair<unsigned, std::string>> read_failure(boost::system::error_code ec)
{
    if (ec.category() != http::make_error_code(http::error::end_of_stream).category() ||
        ec == http::error::end_of_stream || ec == http::error::partial_message) {
        return std::nullopt;
    }
    if (ec == http::error::body_limit) {
        return std::pair{413u, std::string{"request body too large"}};
    }
    if (ec == http::error::header_limit) {
        return std::pair{431u, std::string{"request header fields too large"}};
    }
    return std::pair{400u, "malformed HTTP request: " + ec.message()};
}

// A lingering close after an error reply: closing with unread request bytes makes the kernel
// reset the connection, and a client still sending (a body over the limit) may then lose the
// reply. Half-close, then read and discard what the client still sends, bounded in bytes and
// time, before the socket closes.
template <class Stream>
net::awaitable<void> linger(Stream& stream)
{
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
        co_return; // TLS: the close_notify of the shutdown ends the connection cleanly
    }
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_send, ignored);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds{2});
    std::array<char, 16 * 1024> sink{};
    for (std::size_t drained = 0; drained < 1024 * 1024;) {
        auto [ec, n] =
            co_await stream.async_read_some(net::buffer(sink), net::as_tuple(net::use_awaitable));
        if (ec) {
            break;
        }
        drained += n;
    }
}

// The reply to a request that could not be read; the connection closes after it.
template <class Stream>
net::awaitable<std::size_t> write_error(Stream& stream, unsigned version, unsigned status,
                                        std::string body)
{
    http::response<http::string_body> res{static_cast<http::status>(status), version};
    res.set(http::field::server, "admsd");
    res.set(http::field::content_type, "text/plain");
    res.set(http::field::date, protocol::format_http_date(rounded_now()));
    res.keep_alive(false);
    res.body() = std::move(body);
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(write_timeout);
    auto size = res.body().size();
    co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
    co_return size;
}

// The headers both writers send, and the handler's own.
template <class Message>
void set_headers(Message& res, const http_response& response, bool keep_alive)
{
    res.set(http::field::server, "admsd");
    res.set(http::field::content_type, response.content_type);
    for (const auto& header : response.headers) {
        res.set(header.first, header.second);
    }
    res.keep_alive(keep_alive);
}

// Writes a reply whose body is in memory. Returns the write's error and the body size.
template <class Stream>
net::awaitable<std::pair<boost::system::error_code, std::size_t>>
write_sized(Stream& stream, http_response& response, unsigned version, bool keep_alive)
{
    http::response<http::string_body> res{static_cast<http::status>(response.status), version};
    set_headers(res, response, keep_alive);
    auto body_size = response.body.size();
    res.body() = std::move(response.body);
    res.prepare_payload();
    // Taken as late as possible: devices set their clocks from it.
    res.set(http::field::date, protocol::format_http_date(rounded_now()));
    beast::get_lowest_layer(stream).expires_after(write_timeout);
    boost::system::error_code ec;
    std::tie(ec, std::ignore) =
        co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
    co_return std::pair{ec, body_size};
}

// Writes a streamed body (exports): chunked for HTTP/1.1; for HTTP/1.0 the body ends when the
// connection closes. Each piece is written before the next is produced, so memory stays bounded
// by one piece. A source that fails part-way closes the connection without the last chunk, so
// the client sees a truncated transfer. Returns the write's error and the bytes of body sent.
template <class Stream>
net::awaitable<std::pair<boost::system::error_code, std::size_t>>
write_streamed(Stream& stream, http_response& response, unsigned version, bool keep_alive,
               logger& log, std::string_view target)
{
    bool chunked = version >= 11;
    http::response<http::empty_body> res{static_cast<http::status>(response.status), version};
    set_headers(res, response, keep_alive);
    res.chunked(chunked);
    res.set(http::field::date, protocol::format_http_date(rounded_now()));
    http::response_serializer<http::empty_body> header{res};
    beast::get_lowest_layer(stream).expires_after(write_timeout);
    boost::system::error_code ec;
    std::tie(ec, std::ignore) =
        co_await http::async_write_header(stream, header, net::as_tuple(net::use_awaitable));
    std::size_t body_size = 0;
    while (!ec) {
        auto piece = co_await response.stream();
        if (!piece) {
            log.event("error", fmt::format("export {} failed part-way; connection closed",
                                           escape_for_log(target)));
            ec = net::error::connection_aborted;
            break;
        }
        beast::get_lowest_layer(stream).expires_after(write_timeout);
        if (piece->empty()) {
            if (chunked) {
                std::tie(ec, std::ignore) = co_await net::async_write(
                    stream, http::make_chunk_last(), net::as_tuple(net::use_awaitable));
            }
            break;
        }
        body_size += piece->size();
        if (chunked) {
            std::tie(ec, std::ignore) = co_await net::async_write(
                stream, http::make_chunk(net::buffer(*piece)), net::as_tuple(net::use_awaitable));
        } else {
            std::tie(ec, std::ignore) = co_await net::async_write(
                stream, net::buffer(*piece), net::as_tuple(net::use_awaitable));
        }
    }
    co_return std::pair{ec, body_size};
}

// The handler's view of a parsed request: no Beast types.
http_request to_request(http::request<http::string_body>& req, const std::string& remote)
{
    http_request request;
    request.method = std::string{req.method_string()};
    request.target = std::string{req.target()};
    request.version = req.version();
    request.body = std::move(req.body());
    request.remote_address = remote;
    request.authorization = std::string{req[http::field::authorization]};
    request.received_at = std::chrono::system_clock::now();
    return request;
}

} // namespace

http_sessions::http_sessions(const router& routes, logger& log, metrics& stats,
                             session_limits limits, net::ssl::context* tls)
    : routes_{routes}, log_{log}, stats_{stats}, limits_{limits}, tls_{tls}
{
}

net::awaitable<void> http_sessions::serve(tcp::socket socket, listener_role role, bool tls)
{
    boost::system::error_code ignored;
    auto peer = socket.remote_endpoint(ignored);
    std::string remote = ignored ? std::string{} : peer.address().to_string();
    if (!tls) {
        beast::tcp_stream stream{std::move(socket)};
        co_await serve_stream(stream, remote, role);
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream{std::move(socket), *tls_};
    // The handshake counts against the read deadline, so a client that never finishes it is
    // cut off like a slow request.
    beast::get_lowest_layer(stream).expires_after(limits_.read_timeout);
    auto [handshake_ec] = co_await stream.async_handshake(net::ssl::stream_base::server,
                                                          net::as_tuple(net::use_awaitable));
    if (handshake_ec) {
        co_return;
    }
    co_await serve_stream(stream, remote, role);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds{5});
    co_await stream.async_shutdown(net::as_tuple(net::use_awaitable));
}

template <class Stream>
net::awaitable<void> http_sessions::serve_stream(Stream& stream, const std::string& remote,
                                                 listener_role role)
{
    beast::flat_buffer buffer;
    while (!stopping_) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(header_limit_bytes);
        parser.body_limit(limits_.max_body_bytes);
        beast::get_lowest_layer(stream).expires_after(limits_.read_timeout);
        auto [ec, bytes] =
            co_await http::async_read(stream, buffer, parser, net::as_tuple(net::use_awaitable));
        if (ec) {
            // A malformed or oversized request gets one clear status and the connection closes
            // (its remaining bytes are not read).
            if (auto failure = read_failure(ec)) {
                const auto& partial = parser.get();
                bool header = parser.is_header_done();
                unsigned version = header ? partial.version() : 11;
                auto size =
                    co_await write_error(stream, version, failure->first, failure->second + "\n");
                log_.request(std::chrono::system_clock::now(),
                             header ? partial.method_string() : "-",
                             header ? partial.target() : "-", version, failure->first, size);
                co_await linger(stream);
            }
            break;
        }

        ++busy_;
        auto started = std::chrono::steady_clock::now();
        auto& req = parser.get();
        auto request = to_request(req, remote);
        router::dispatched answer;
        try {
            answer = co_await routes_.dispatch(request, role);
        } catch (const std::exception& e) {
            log_.event("error",
                       fmt::format("error handling {} {}: {}", escape_for_log(request.method),
                                   escape_for_log(request.target), e.what()));
            answer.response = text_response(500, "internal server error\n");
            answer.label =
                routes_.label(std::string_view{request.target}.substr(0, request.target.find('?')));
        }
        // A streamed body over HTTP/1.0 ends when the connection closes.
        bool keep_alive =
            req.keep_alive() && !stopping_ && (!answer.response.stream || request.version >= 11);
        auto& response = answer.response;
        // No co_await inside ?: here: g++ 12 destroys the temporaries of such an expression twice.
        std::pair<boost::system::error_code, std::size_t> written;
        if (response.stream) {
            written = co_await write_streamed(stream, response, request.version, keep_alive, log_,
                                              request.target);
        } else {
            written = co_await write_sized(stream, response, request.version, keep_alive);
        }
        auto [write_ec, body_size] = written;
        --busy_;
        stats_.request(answer.label, response.status, std::chrono::steady_clock::now() - started);
        log_.request(std::chrono::system_clock::now(), request.method, request.target,
                     request.version, response.status, body_size);
        if (write_ec || !keep_alive) {
            break;
        }
    }
}

} // namespace adms::server

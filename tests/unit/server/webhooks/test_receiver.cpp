#include "tests/unit/server/webhooks/test_receiver.hpp"

#include <boost/beast/ssl.hpp>

namespace adms::test {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

test_receiver::test_receiver(handler respond, net::ssl::context* tls, const std::string& address)
    : respond_{std::move(respond)}, tls_{tls}, acceptor_{io_, {net::ip::make_address(address), 0}}
{
    port_ = acceptor_.local_endpoint().port();
    net::co_spawn(io_, accept_loop(), net::detached);
    thread_ = std::thread{[this] { io_.run(); }};
}

test_receiver::~test_receiver()
{
    io_.stop();
    thread_.join();
}

std::size_t test_receiver::connections() const
{
    std::lock_guard lock{mutex_};
    return connections_;
}

std::vector<test_receiver::request> test_receiver::requests() const
{
    std::lock_guard lock{mutex_};
    return requests_;
}

bool test_receiver::wait_for_connections(std::size_t count, std::chrono::milliseconds limit) const
{
    std::unique_lock lock{mutex_};
    return changed_.wait_for(lock, limit, [&] { return connections_ >= count; });
}

std::size_t test_receiver::connections_after_probe()
{
    auto before = connections();
    net::io_context io;
    tcp::socket probe{io};
    probe.connect(acceptor_.local_endpoint());
    wait_for_connections(before + 1, std::chrono::seconds{10});
    return connections() - 1;
}

net::awaitable<void> test_receiver::accept_loop()
{
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
        if (ec) {
            co_return;
        }
        {
            std::lock_guard lock{mutex_};
            ++connections_;
        }
        changed_.notify_all();
        net::co_spawn(io_, serve(std::move(socket)), net::detached);
    }
}

net::awaitable<void> test_receiver::serve(tcp::socket socket)
{
    if (tls_ == nullptr) {
        beast::tcp_stream stream{std::move(socket)};
        co_await exchange(stream);
        co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream{std::move(socket), *tls_};
    auto [ec] = co_await stream.async_handshake(net::ssl::stream_base::server,
                                                net::as_tuple(net::use_awaitable));
    if (!ec) {
        co_await exchange(stream);
    }
}

template <class Stream>
net::awaitable<void> test_receiver::exchange(Stream& stream)
{
    beast::flat_buffer buffer;
    request received;
    auto [ec, n] =
        co_await http::async_read(stream, buffer, received, net::as_tuple(net::use_awaitable));
    if (ec) {
        co_return;
    }
    {
        std::lock_guard lock{mutex_};
        requests_.push_back(received);
    }
    changed_.notify_all();
    auto answer = respond_(received);
    if (!answer.answer) {
        // Hold the connection, unanswered, until the receiver stops.
        net::steady_timer forever{stream.get_executor(), std::chrono::hours{1}};
        co_await forever.async_wait(net::as_tuple(net::use_awaitable));
        co_return;
    }
    http::response<http::string_body> response{static_cast<http::status>(answer.status), 11};
    for (const auto& [name, value] : answer.headers) {
        response.set(name, value);
    }
    response.body() = answer.body;
    response.keep_alive(false);
    response.prepare_payload();
    co_await http::async_write(stream, response, net::as_tuple(net::use_awaitable));
    beast::get_lowest_layer(stream).close();
}

} // namespace adms::test

#include "server/http/listener.hpp"

#include "server/config/setting_values.hpp"
#include "server/http/session.hpp"
#include "server/net.hpp"
#include "server/observability/logger.hpp"

#include <fmt/format.h>

namespace adms::server {

listener::listener(net::io_context& io, http_sessions& sessions, logger& log)
    : io_{io}, acceptor_{io}, sessions_{sessions}, log_{log}
{
}

std::string listener::bind(const std::string& listen)
{
    auto parts = split_listen(listen);
    if (!parts) {
        return fmt::format("invalid listen '{}': expected host:port", listen);
    }
    boost::system::error_code ec;
    auto address = net::ip::make_address(parts->host, ec);
    if (ec) {
        return fmt::format("invalid listen '{}': '{}' is not an IP address", listen, parts->host);
    }
    tcp::endpoint endpoint{address, parts->port};
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) {
        acceptor_.set_option(net::socket_base::reuse_address(true), ec);
        acceptor_.bind(endpoint, ec);
    }
    if (!ec) {
        acceptor_.listen(net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        return fmt::format("invalid listen '{}': cannot listen: {}", listen, ec.message());
    }
    return {};
}

tcp::endpoint listener::endpoint() const
{
    boost::system::error_code ignored;
    return acceptor_.local_endpoint(ignored);
}

unsigned short listener::port() const
{
    return acceptor_.is_open() ? endpoint().port() : static_cast<unsigned short>(0);
}

void listener::start(listener_role role, bool tls)
{
    net::co_spawn(acceptor_.get_executor(), accept_loop(role, tls), net::detached);
}

void listener::close()
{
    net::post(acceptor_.get_executor(), [this] {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
    });
}

net::awaitable<void> listener::accept_loop(listener_role role, bool tls)
{
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(net::make_strand(io_),
                                                            net::as_tuple(net::use_awaitable));
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) {
            co_return;
        }
        if (ec) {
            // Out of descriptors or a transient error: say so, pause briefly, keep serving.
            log_.event("error", fmt::format("accept failed: {}", ec.message()));
            net::steady_timer pause{acceptor_.get_executor(), std::chrono::milliseconds{100}};
            co_await pause.async_wait(net::as_tuple(net::use_awaitable));
            continue;
        }
        auto executor = socket.get_executor();
        net::co_spawn(
            executor, sessions_.serve(std::move(socket), role, tls), [this](std::exception_ptr e) {
                if (!e) {
                    return;
                }
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    log_.event("error",
                               fmt::format("connection closed after an error: {}", ex.what()));
                }
            });
    }
}

} // namespace adms::server

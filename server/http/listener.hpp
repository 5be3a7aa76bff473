#pragma once

#include "server/http/router.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <string>

namespace adms::server {

class http_sessions;
class logger;

// One listening TCP socket. Each accepted connection gets its own strand and is served by
// `sessions` as a `role` listener; accept errors (out of descriptors) are logged and the loop
// keeps accepting after a short pause.
// Thread safety: bind() and start() from the controlling thread before the I/O threads run;
// close() from any thread.
class listener {
  public:
    listener(boost::asio::io_context& io, http_sessions& sessions, logger& log);

    // Binds "host:port" (IPv6 as "[::1]:port"; port 0 picks a free port). Returns one line
    // saying why it cannot listen, or an empty string.
    std::string bind(const std::string& listen);

    // The bound address and port (after bind()).
    boost::asio::ip::tcp::endpoint endpoint() const;
    unsigned short port() const;
    bool is_open() const { return acceptor_.is_open(); }

    // Starts accepting connections for a `role` listener, over TLS when `tls`.
    void start(listener_role role, bool tls);

    // Stops accepting (connections already accepted go on). Runs on the acceptor's executor.
    void close();

  private:
    boost::asio::awaitable<void> accept_loop(listener_role role, bool tls);

    boost::asio::io_context& io_;
    boost::asio::ip::tcp::acceptor acceptor_;
    http_sessions& sessions_;
    logger& log_;
};

} // namespace adms::server

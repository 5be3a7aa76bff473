#pragma once

#include "server/http/router.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>

namespace boost::asio::ssl {
class context;
}

namespace adms::server {

class logger;
class metrics;

// What a connection may send: how long a request may take to arrive, and how large its body.
struct session_limits {
    std::chrono::seconds read_timeout{30};
    std::size_t max_body_bytes = 0;
};

// The HTTP connections (Kohlhoff's connection + connection manager): each accepted socket is one
// coroutine on its own strand that reads a request with a deadline, dispatches it through the
// router, writes the reply (sized, or streamed in chunks) and loops while keep-alive. Malformed
// and oversized requests get one clear status and a lingering close.
// Thread safety: serve() may run on many threads at once; stop() from any thread.
class http_sessions {
  public:
    // `tls` is the server context of TLS listeners (null without TLS).
    http_sessions(const router& routes, logger& log, metrics& stats, session_limits limits,
                  boost::asio::ssl::context* tls);

    // Serves one connection until it closes (TLS: after the handshake) as a `role` listener.
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket, listener_role role,
                                       bool tls);

    // Requests between read and written: stop() waits for them to drain.
    int busy() const { return busy_; }

    // No new request is read and no connection is kept alive from now on.
    void stop() { stopping_ = true; }

  private:
    template <class Stream>
    boost::asio::awaitable<void> serve_stream(Stream& stream, const std::string& remote,
                                              listener_role role);

    const router& routes_;
    logger& log_;
    metrics& stats_;
    session_limits limits_;
    boost::asio::ssl::context* tls_;
    std::atomic<int> busy_{0};
    std::atomic<bool> stopping_{false};
};

} // namespace adms::server

#pragma once

#include "server/net.hpp"

#include <boost/asio/ssl.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace adms::test {

namespace http = boost::beast::http;

// A real HTTP receiver for the webhook client's tests: listens on `address` port 0 (plain, or TLS
// with `tls`), runs on a thread of its own, records every request it reads and answers it from
// a function. A reply with `answer = false` keeps the connection open, unanswered, until the
// receiver stops.
class test_receiver {
  public:
    using request = http::request<http::string_body>;
    using header_list = std::vector<std::pair<std::string, std::string>>;
    struct reply {
        bool answer = true;
        unsigned status = 200;
        header_list headers;
        std::string body = "ok";
    };
    // A reply with `status`, `body` and `headers`.
    static reply answer(unsigned status, std::string body = "ok", header_list headers = {})
    {
        return {true, status, std::move(headers), std::move(body)};
    }
    // No reply at all: the connection stays open until the receiver stops.
    static reply never_answer() { return {false, 0, {}, {}}; }
    using handler = std::function<reply(const request&)>;

    explicit test_receiver(handler respond, boost::asio::ssl::context* tls = nullptr,
                           const std::string& address = "127.0.0.1");
    test_receiver(const test_receiver&) = delete;
    test_receiver& operator=(const test_receiver&) = delete;
    ~test_receiver();

    std::uint16_t port() const { return port_; }
    // Connections accepted so far, and the requests read from them.
    std::size_t connections() const;
    std::vector<request> requests() const;
    // Waits, at most `limit`, until `count` connections were accepted.
    bool wait_for_connections(std::size_t count, std::chrono::milliseconds limit) const;
    // Shows that no earlier connection is still on its way: connects once itself and waits for
    // that connection to be accepted. Accepts are in order, so connections() is then exact.
    std::size_t connections_after_probe();

  private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
    template <class Stream>
    boost::asio::awaitable<void> exchange(Stream& stream);

    handler respond_;
    boost::asio::ssl::context* tls_;
    boost::asio::io_context io_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::size_t connections_ = 0;
    std::vector<request> requests_;
    std::thread thread_;
};

} // namespace adms::test

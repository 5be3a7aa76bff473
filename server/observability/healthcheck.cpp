#include "server/observability/healthcheck.hpp"

#include "server/config/setting_values.hpp"
#include "server/net.hpp"

#include <fmt/format.h>

namespace adms::server {

healthcheck_result run_healthcheck(const settings& config, std::chrono::seconds timeout)
{
    auto listen = split_listen(config.listen);
    if (!listen) {
        return {1, fmt::format("invalid listen '{}': expected host:port", config.listen)};
    }
    auto host = listen->host;
    auto port = listen->port;
    if (host == "0.0.0.0" || host.empty()) {
        host = "127.0.0.1";
    } else if (host == "::") {
        host = "::1";
    }
    try {
        net::io_context io;
        beast::tcp_stream stream{io};
        stream.expires_after(timeout);
        tcp::endpoint endpoint{net::ip::make_address(host), port};
        stream.connect(endpoint);
        http::request<http::empty_body> request{http::verb::get, "/healthz", 11};
        request.set(http::field::host, host);
        request.set(http::field::user_agent, "admsd-healthcheck");
        request.keep_alive(false);
        http::write(stream, request);
        beast::flat_buffer buffer;
        http::response<http::string_body> response;
        http::read(stream, buffer, response);
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        auto body = response.body();
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) {
            body.pop_back();
        }
        if (response.result_int() == 200) {
            return {0, fmt::format("healthy: {}", body)};
        }
        return {1, fmt::format("unhealthy ({}): {}", response.result_int(), body)};
    } catch (const std::exception& e) {
        return {1, fmt::format("unreachable at {}:{}: {}", host, port, e.what())};
    }
}

} // namespace adms::server

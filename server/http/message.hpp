#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace adms::server {

// Query parameters, decoded, in order.
using query_params = std::vector<std::pair<std::string, std::string>>;

// A request as handlers see it: no Beast types, so handler headers stay light.
struct http_request {
    std::string method;                                // "GET", "POST", …
    std::string target;                                // path and query, as sent
    unsigned version = 11;                             // 10 or 11
    std::string body;                                  // the whole body (bounded by max_body_bytes)
    std::string remote_address;                        // peer IP address
    std::string authorization;                         // the Authorization header, empty if none
    std::chrono::system_clock::time_point received_at; // when the request was read
};

// A body produced piece by piece (exports): each call returns the next piece, an empty string
// at the end, or nullopt when producing failed part-way (the connection is then closed, so the
// client sees a truncated transfer rather than a short file it could take for complete).
using body_source = std::function<boost::asio::awaitable<std::optional<std::string>>()>;

// A response as handlers produce it. The session adds Date, Content-Length (or chunked
// Transfer-Encoding for a streamed body), Server and Connection headers.
struct http_response {
    unsigned status = 200;
    std::string content_type = "text/plain";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers; // extra headers
    body_source stream; // when set, the body is streamed from it and `body` is ignored
};

// A plain-text response.
inline http_response text_response(unsigned status, std::string body)
{
    return {status, "text/plain", std::move(body), {}, {}};
}

} // namespace adms::server

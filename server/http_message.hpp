#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace adms::server {

// A request as handlers see it: no Beast types, so handler headers stay light.
struct http_request {
    std::string method;                                // "GET", "POST", …
    std::string target;                                // path and query, as sent
    unsigned version = 11;                             // 10 or 11
    std::string body;                                  // the whole body (bounded by max_body_bytes)
    std::string remote_address;                        // peer IP address
    std::chrono::system_clock::time_point received_at; // when the request was read
};

// A response as handlers produce it. The session adds Date, Content-Length, Server and
// Connection headers.
struct http_response {
    unsigned status = 200;
    std::string content_type = "text/plain";
    std::string body;
};

// A plain-text response.
inline http_response text_response(unsigned status, std::string body)
{
    return {status, "text/plain", std::move(body)};
}

} // namespace adms::server

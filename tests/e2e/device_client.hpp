#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace adms::test {

// A parsed HTTP response, with the bytes as received.
struct http_reply {
    std::string raw; // every byte the server sent
    std::string status_line;
    int status = 0;
    std::map<std::string, std::string> headers; // names lower-cased
    std::string body;
};

// Sends `raw_request` to 127.0.0.1:`port` over a new TCP connection and returns every byte
// the server sent until it closed (or `timeout`). Throws on connection failure.
std::string round_trip_raw(unsigned short port, const std::string& raw_request,
                           std::chrono::milliseconds timeout = std::chrono::seconds{10});

// round_trip_raw(), parsing the first response.
http_reply round_trip(unsigned short port, const std::string& raw_request,
                      std::chrono::milliseconds timeout = std::chrono::seconds{10});

// The request a terminal sends: `Connection: close`, `User-Agent: iClock Proxy/1.09`, no
// Content-Type, Content-Length on POSTs.
std::string device_request(const std::string& method, const std::string& target,
                           const std::string& body = {}, const std::string& version = "1.1");

// GET/POST as a terminal and parse the reply.
http_reply device_get(unsigned short port, const std::string& target);
http_reply device_post(unsigned short port, const std::string& target, const std::string& body);

// One admin API call as a script makes it: a new connection, JSON content type, `Connection:
// close`, the bearer `token` (none when empty).
http_reply admin_call(unsigned short port, const std::string& method, const std::string& target,
                      const std::string& body, std::string_view token,
                      std::chrono::milliseconds timeout = std::chrono::seconds{20});

// Splits a buffer holding one or more responses (keep-alive) into parsed replies.
std::vector<http_reply> parse_replies(const std::string& raw);

} // namespace adms::test

#include "tests/e2e/device_client.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace adms::test {
namespace {

// Parses one response at the start of `raw`; returns its length, 0 when incomplete.
std::size_t parse_one(const std::string& raw, std::size_t from, http_reply& reply)
{
    auto header_end = raw.find("\r\n\r\n", from);
    if (header_end == std::string::npos) {
        return 0;
    }
    auto line_end = raw.find("\r\n", from);
    reply.status_line = raw.substr(from, line_end - from);
    reply.status = std::stoi(reply.status_line.substr(9, 3));
    std::size_t pos = line_end + 2;
    while (pos < header_end) {
        auto end = raw.find("\r\n", pos);
        auto line = raw.substr(pos, end - pos);
        auto colon = line.find(':');
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        reply.headers[name] = value;
        pos = end + 2;
    }
    std::size_t body_start = header_end + 4;
    if (auto it = reply.headers.find("transfer-encoding");
        it != reply.headers.end() && it->second == "chunked") {
        // <hex size>CRLF<data>CRLF ... 0CRLF CRLF (no trailers from admsd).
        std::size_t pos = body_start;
        std::string body;
        for (;;) {
            auto size_end = raw.find("\r\n", pos);
            if (size_end == std::string::npos) {
                return 0;
            }
            auto size = std::stoul(raw.substr(pos, size_end - pos), nullptr, 16);
            if (raw.size() < size_end + 2 + size + 2) {
                return 0;
            }
            body += raw.substr(size_end + 2, size);
            pos = size_end + 2 + size + 2;
            if (size == 0) {
                break;
            }
        }
        reply.body = std::move(body);
        reply.raw = raw.substr(from, pos - from);
        return pos - from;
    }
    std::size_t length = 0;
    if (auto it = reply.headers.find("content-length"); it != reply.headers.end()) {
        length = std::stoul(it->second);
    }
    if (raw.size() < body_start + length) {
        return 0;
    }
    reply.body = raw.substr(body_start, length);
    reply.raw = raw.substr(from, body_start + length - from);
    return body_start + length - from;
}

} // namespace

std::vector<http_reply> parse_replies(const std::string& raw)
{
    std::vector<http_reply> replies;
    std::size_t pos = 0;
    while (pos < raw.size()) {
        http_reply reply;
        auto used = parse_one(raw, pos, reply);
        if (used == 0) {
            break;
        }
        replies.push_back(std::move(reply));
        pos += used;
    }
    return replies;
}

std::string round_trip_raw(unsigned short port, const std::string& raw_request,
                           std::chrono::milliseconds timeout)
{
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        throw std::runtime_error("socket() failed");
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        throw std::runtime_error("connect() failed");
    }
    std::size_t sent = 0;
    while (sent < raw_request.size()) {
        auto n = ::send(fd, raw_request.data() + sent, raw_request.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            break;
        }
        sent += static_cast<std::size_t>(n);
    }
    std::string raw;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[65536];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            break;
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            break;
        }
        auto n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) {
            break;
        }
        raw.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return raw;
}

http_reply round_trip(unsigned short port, const std::string& raw_request,
                      std::chrono::milliseconds timeout)
{
    auto raw = round_trip_raw(port, raw_request, timeout);
    http_reply reply;
    if (parse_one(raw, 0, reply) == 0) {
        reply.raw = raw;
    }
    return reply;
}

std::string device_request(const std::string& method, const std::string& target,
                           const std::string& body, const std::string& version)
{
    std::string request = method + " " + target + " HTTP/" + version + "\r\n";
    request += "Host: 127.0.0.1\r\nUser-Agent: iClock Proxy/1.09\r\nConnection: close\r\n";
    if (method == "POST") {
        request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    request += "\r\n" + body;
    return request;
}

http_reply device_get(unsigned short port, const std::string& target)
{
    return round_trip(port, device_request("GET", target));
}

http_reply device_post(unsigned short port, const std::string& target, const std::string& body)
{
    return round_trip(port, device_request("POST", target, body));
}

http_reply admin_call(unsigned short port, const std::string& method, const std::string& target,
                      const std::string& body, std::string_view token,
                      std::chrono::milliseconds timeout)
{
    std::string request = fmt::format("{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, target);
    if (!token.empty()) {
        request += fmt::format("Authorization: Bearer {}\r\n", token);
    }
    request += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n"
                           "Connection: close\r\n\r\n{}",
                           body.size(), body);
    return round_trip(port, request, timeout);
}

} // namespace adms::test

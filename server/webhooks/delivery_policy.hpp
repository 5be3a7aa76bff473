#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// What a delivery attempt's outcome means, and how long to wait: pure rules, no I/O, no clock.
namespace adms::server {

// How a request to a receiver ended, as the HTTP client reports it.
enum class send_outcome { answered, timeout, connect_error, tls_error, blocked };

struct send_result {
    send_outcome outcome = send_outcome::answered;
    int status = 0; // the HTTP status when answered
    std::optional<std::chrono::seconds> retry_after;
    std::string error;    // one line, empty when answered
    std::string response; // the start of the response body
    std::chrono::milliseconds duration{0};
};

// What the relay does next.
enum class verdict {
    delivered,   // 2xx: done
    unavailable, // connect/TLS error, timeout, 3xx, 408, 429, 5xx, blocked: the endpoint pauses
                 // and one probe retries on the retry schedule; nothing is parked
    rejected,    // another 4xx: this event is retried on the reject schedule, then parked
    gone,        // 410: the receiver asks to stop: the endpoint is disabled, events kept
};

verdict classify(const send_result& result);

// The metrics label of a result: success, http_3xx, http_4xx, http_5xx, timeout,
// connect_error, tls_error, blocked.
std::string_view result_label(const send_result& result);

// A wait from `schedule` (entry `step`, the last repeating), scaled by a jitter factor in
// [0.8, 1.2) from `unit` in [0, 1); a Retry-After the receiver sent wins when longer (capped at
// one day).
std::chrono::milliseconds
retry_wait(const std::vector<std::chrono::seconds>& schedule, std::size_t step, double unit,
           std::optional<std::chrono::seconds> retry_after = std::nullopt);

// After `rejections` rejections of one event (this one included): the wait before the next try,
// or nullopt when it is to be parked.
std::optional<std::chrono::seconds> reject_wait(const std::vector<std::chrono::seconds>& schedule,
                                                std::size_t rejections);

} // namespace adms::server

#pragma once

#include "server/http/message.hpp"
#include "server/observability/metrics.hpp"
#include "server/security/access_control.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace adms::server {

// The IANA zone name in force for a device id (its configured zone, else the server's).
using zone_resolver = std::function<std::string(std::string_view device_id)>;

// The clock the service reads for the send time (t3); tests pass a fixed one.
using clock_function = std::function<std::chrono::system_clock::time_point()>;

// The largest request body (HTTP) or payload (MQTT) read; larger ones get a 1001 answer.
inline constexpr std::size_t time_request_max_bytes = 4096;

// One answer of the time service, ready to send.
struct time_answer {
    std::string body;       // the JSON response
    int code = 0;           // 0, or 1001 for every refusal
    std::string error;      // a 1001 answer's msg; empty for code 0
    bool too_large = false; // refused for its size (HTTP answers it 413)
    time_request_kind kind = time_request_kind::unknown;
};

// Tuya's tylink time service (ext/time, NTP and DST) from admsd's zone configuration: parses a
// request, looks the zone up, and formats the answer with the send time read as late as
// possible. Transport-neutral (answer()), plus the HTTP route (handle()).
// Thread safety: answer() and handle() may run on any number of threads at once; the resolver
// and the clock must allow that too.
class time_service {
  public:
    // `device_networks`: the source networks allowed on the HTTP route (nullopt admits none).
    time_service(
        zone_resolver resolver, metrics& stats,
        std::optional<network_list> device_networks = network_list{},
        clock_function clock = [] { return std::chrono::system_clock::now(); });

    // Answers one request of `device_id` read at `received_at` (t2). DST intervals are those
    // overlapping [received_at, received_at + 365 days), with their real begin and end. Counts
    // the answer in the metrics under `transport`.
    time_answer answer(std::string_view device_id, std::string_view body,
                       std::chrono::system_clock::time_point received_at,
                       time_transport transport) const;

    // Answers POST /tylink/{deviceId}/ext/time/request: 200 with the JSON answer (code 0 or
    // 1001), 413 with a 1001 answer over 4 KiB, 403 outside device_networks, 404 for another
    // path, 405 for another method.
    http_response handle(const http_request& request) const;

  private:
    zone_resolver resolver_;
    metrics& stats_;
    std::optional<network_list> device_networks_;
    clock_function clock_;
};

} // namespace adms::server

#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

// What a run measured and how it is shown: percentiles, the text report and the JSON report.
// Pure: no I/O.
namespace adms::sim {

// The timed parts of a run: connecting, one entry per iclock endpoint, and the wait for a
// connection slot (--max-connections) before connecting. Polls whose reply carried a DateTime
// command are apart (getrequest_time_sync): admsd holds those until the whole second.
enum class timed_step : std::size_t {
    connect,
    handshake,
    getrequest,
    attlog,
    devicecmd,
    getrequest_time_sync,
    connection_wait,
};
inline constexpr std::size_t timed_step_count = 7;

// The report name of a step: "connect", "handshake", "getrequest", "attlog", "devicecmd",
// "getrequest_time_sync", "connection_wait".
std::string_view step_name(timed_step step);

// The value at percentile `p` (0 < p <= 1) of ascending `sorted` by the nearest-rank method:
// the smallest value with at least p of the samples at or below it (sorted[ceil(p*n) - 1]).
// 0 when empty.
double nearest_rank(const std::vector<double>& sorted, double p);

// Count, percentiles, maximum and mean of a set of samples.
struct distribution {
    std::uint64_t count = 0;
    double p50 = 0;
    double p99 = 0;
    double p999 = 0;
    double max = 0;
    double mean = 0;
};

// Summarises `samples` (sorted in place).
distribution summarize(std::vector<double>& samples);

// Failed requests by kind. Only complete replies carry an HTTP status.
struct error_counts {
    std::uint64_t connect = 0;   // the connection could not be made (refused, unreachable, ...)
    std::uint64_t timeout = 0;   // no complete reply within --timeout (connect included)
    std::uint64_t reset = 0;     // a send or receive error on an open connection
    std::uint64_t closed = 0;    // the server closed before the reply was complete
    std::uint64_t bad_reply = 0; // not HTTP, or a 200 whose body is not what the device expects
    std::map<int, std::uint64_t> http; // complete replies with a status other than 200
    std::uint64_t total() const;
    void add(const error_counts& other);
};

// Everything the report shows. Latencies in milliseconds.
struct report {
    std::string target;
    std::size_t devices = 0;
    std::size_t devices_handshaken = 0; // devices that completed at least one handshake
    std::size_t devices_synced = 0;     // devices that applied at least one DateTime command
    double duration_s = 0;              // the activity phase, as run
    double drain_s = 0;                 // from the end of the activity to the end of the run
    bool drained = false;               // every punch acknowledged before the drain deadline
    double delay_s = 0;                 // seconds between polls (the last value used)
    bool keep_alive = false;
    std::uint64_t seed = 0;
    std::uint64_t requests = 0;
    std::uint64_t connections = 0; // connections opened
    std::uint64_t punches_generated = 0;
    std::uint64_t punches_sent = 0;   // punches sent at least once
    std::uint64_t punches_resent = 0; // lines sent again after a failed attempt
    std::uint64_t punches_acknowledged = 0;
    std::uint64_t commands_executed = 0;
    std::uint64_t zone_mismatches = 0; // handshakes whose TimeZone differs from --zone's offset
    error_counts errors;
    std::array<distribution, timed_step_count> latency_ms{};
    distribution time_sync_abs_ms; // |error| of each applied DateTime command
    double time_sync_mean_ms = 0;  // signed mean (positive: device clocks set fast)
    double cpu_user_s = 0;
    double cpu_system_s = 0;
    int exit_status = 0;

    // Seconds the rates are computed over: the activity and the drain.
    double elapsed_s() const { return duration_s + drain_s; }
};

// The report as text for a terminal.
std::string render_text(const report& r);

// The report as a JSON object (snake_case keys, one top-level key per line).
std::string render_json(const report& r);

} // namespace adms::sim

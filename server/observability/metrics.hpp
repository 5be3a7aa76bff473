#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace adms::server {

// How a time sync ended, for the counters.
enum class sync_outcome { sent, confirmed, refused, timed_out };

// The time service's transports and request kinds, for the counters (fixed label values).
enum class time_transport { http, mqtt };
enum class time_request_kind { ntp, dst, unknown }; // unknown: the bizType could not be read

// The server's Prometheus metrics: counters and histograms updated as requests are served,
// rendered in the Prometheus text format for GET /metrics.
// Thread safety: every member function may be called from any thread.
class metrics {
  public:
    metrics();
    ~metrics();
    metrics(const metrics&) = delete;
    metrics& operator=(const metrics&) = delete;

    // One answered request: its endpoint label (its route's pattern, or "other": a bounded set,
    // so a scanner cannot grow it), status and time from read to written.
    void request(std::string_view endpoint, unsigned status, std::chrono::nanoseconds latency);
    // One stored upload of punches.
    void punches(std::size_t stored, std::size_t duplicate, std::size_t rejected);
    // Commands put on a queue (by the time-sync policy or the admin API).
    void commands_queued(std::size_t count);
    // Commands that went out in a poll reply.
    void commands_sent(std::size_t count);
    // Results matched to commands: Return >= 0 is acknowledged, a negative one failed.
    void command_results(std::size_t acknowledged, std::size_t failed);
    // A time sync sent, confirmed, refused by the device, or not confirmed before an API timeout.
    void time_sync(sync_outcome outcome);
    // A device's clock went beyond the drift threshold (raised) or came back within it.
    void clock_drift(bool raised);
    // One time-service answer (tylink ext/time), with its response code (0 or 1001).
    void time_service_answer(time_transport transport, time_request_kind kind, int code);
    // One storage write transaction (from the writer's queue to its commit).
    void database_commit(std::chrono::nanoseconds latency);
    // One payroll export run of `name` (a configured export): its file written, or not; a
    // written one sets the export's last-success time to `at`.
    void export_run(std::string_view name, bool written, std::chrono::system_clock::time_point at);
    // One datagram on the NTP port: answered, or dropped (malformed, not a client request).
    void ntp_request(bool answered);

    // One webhook delivery attempt: its endpoint, result label (success, http_4xx, timeout, …)
    // and duration.
    void webhook_delivery(std::string_view endpoint, std::string_view result,
                          std::chrono::nanoseconds duration);
    // An endpoint's state, as the relay last read it: up, its pending and parked deliveries and
    // the age of its oldest pending event (the lag to alert on).
    void webhook_endpoint(std::string_view endpoint, bool up, std::size_t pending,
                          std::size_t failed, double oldest_pending_age_seconds);
    // Drops the gauges of endpoints not in `names` (deleted ones).
    void forget_webhook_endpoints_except(const std::vector<std::string>& names);

    // Every metric in the Prometheus text exposition format, with the gauges taken now.
    std::string render(std::size_t devices_known, std::size_t devices_online) const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace adms::server

#include "server/observability/metrics.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <set>
#include <string>

namespace adms::server {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// Seconds, from a millisecond poll reply to a sync-time request that waits for its device.
const Histogram::BucketBoundaries request_buckets{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
// Seconds: an fsync'd SQLite commit takes from tens of microseconds (page cache) to seconds.
const Histogram::BucketBoundaries commit_buckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

double seconds(std::chrono::nanoseconds d)
{
    return std::chrono::duration<double>(d).count();
}

} // namespace

struct metrics::impl {
    impl()
        : requests{prometheus::BuildCounter()
                       .Name("admsd_http_requests_total")
                       .Help("HTTP requests answered, by endpoint and status")
                       .Register(registry)},
          latency{prometheus::BuildHistogram()
                      .Name("admsd_http_request_duration_seconds")
                      .Help("Time from a request read to its reply written, by endpoint")
                      .Register(registry)},
          punch_family{prometheus::BuildCounter()
                           .Name("admsd_punches_total")
                           .Help("ATTLOG lines received, by outcome")
                           .Register(registry)},
          stored{punch_family.Add({{"outcome", "stored"}})},
          duplicate{punch_family.Add({{"outcome", "duplicate"}})}, rejected{punch_family.Add(
                                                                       {{"outcome", "rejected"}})},
          command_family{prometheus::BuildCounter()
                             .Name("admsd_commands_total")
                             .Help("Device commands, by event: queued, sent (each send), "
                                   "acknowledged (Return >= 0) or failed (Return < 0)")
                             .Register(registry)},
          queued{command_family.Add({{"event", "queued"}})}, sent{command_family.Add(
                                                                 {{"event", "sent"}})},
          acknowledged{command_family.Add({{"event", "acknowledged"}})},
          failed{command_family.Add({{"event", "failed"}})},
          sync_family{prometheus::BuildCounter()
                          .Name("admsd_time_syncs_total")
                          .Help("Time syncs, by outcome: sent (DateTime went out), confirmed, "
                                "refused by the device, timed_out (an API wait expired)")
                          .Register(registry)},
          sync_sent{sync_family.Add({{"outcome", "sent"}})}, sync_confirmed{sync_family.Add(
                                                                 {{"outcome", "confirmed"}})},
          sync_refused{sync_family.Add({{"outcome", "refused"}})}, sync_timed_out{sync_family.Add(
                                                                       {{"outcome", "timed_out"}})},
          time_service_family{prometheus::BuildCounter()
                                  .Name("admsd_time_service_requests_total")
                                  .Help("Time-service answers (tylink ext/time), by transport, "
                                        "bizType (unknown: unreadable) and code (0 or 1001)")
                                  .Register(registry)},
          commit{prometheus::BuildHistogram()
                     .Name("admsd_database_commit_duration_seconds")
                     .Help("Storage write transactions, from the writer's queue to the commit")
                     .Register(registry)
                     .Add({}, commit_buckets)},
          device_family{prometheus::BuildGauge()
                            .Name("admsd_devices")
                            .Help("Devices known, and online (a request within 3 poll delays)")
                            .Register(registry)},
          devices_known{device_family.Add({{"state", "known"}})}, devices_online{device_family.Add(
                                                                      {{"state", "online"}})},
          drift_alerts{prometheus::BuildCounter()
                           .Name("admsd_clock_drift_alerts_total")
                           .Help("Device clocks found off by more than drift_threshold (one per "
                                 "episode: counted again only after the clock was back within)")
                           .Register(registry)
                           .Add({})},
          drifted_devices{prometheus::BuildGauge()
                              .Name("admsd_clock_drift_devices")
                              .Help("Devices whose clock is off by more than drift_threshold now")
                              .Register(registry)
                              .Add({})}
    {
    }

    prometheus::Registry registry;
    Family<Counter>& requests;
    Family<Histogram>& latency;
    Family<Counter>& punch_family;
    Counter& stored;
    Counter& duplicate;
    Counter& rejected;
    Family<Counter>& command_family;
    Counter& queued;
    Counter& sent;
    Counter& acknowledged;
    Counter& failed;
    Family<Counter>& sync_family;
    Counter& sync_sent;
    Counter& sync_confirmed;
    Counter& sync_refused;
    Counter& sync_timed_out;
    Family<Counter>& time_service_family;
    Histogram& commit;
    // The SNTP server's datagrams (initialised here, after `registry`, in declaration order).
    Family<Counter>& ntp_family{
        prometheus::BuildCounter()
            .Name("admsd_ntp_requests_total")
            .Help("Datagrams on the NTP port, by result: answered, or dropped (malformed, not an "
                  "NTPv3/v4 client request, unanswerable)")
            .Register(registry)};
    Counter& ntp_answered{ntp_family.Add({{"result", "answered"}})};
    Counter& ntp_dropped{ntp_family.Add({{"result", "dropped"}})};
    // The payroll exports (labelled by configured export name: a bounded set).
    Family<Counter>& export_family{
        prometheus::BuildCounter()
            .Name("admsd_export_runs_total")
            .Help("Payroll export runs, by export and outcome: written or failed")
            .Register(registry)};
    Family<Gauge>& export_success_family{
        prometheus::BuildGauge()
            .Name("admsd_export_last_success_timestamp_seconds")
            .Help("When each payroll export last wrote its file (Unix time)")
            .Register(registry)};
    Family<Gauge>& device_family;
    Gauge& devices_known;
    Gauge& devices_online;
    Counter& drift_alerts;
    Gauge& drifted_devices;
    // Webhooks (initialised here, after `registry`, in declaration order). The endpoint label is
    // an operator-chosen name: a bounded set.
    Family<Counter>& webhook_deliveries{
        prometheus::BuildCounter()
            .Name("admsd_webhook_deliveries_total")
            .Help("Webhook delivery attempts, by endpoint and result (success, http_3xx, "
                  "http_4xx, http_5xx, timeout, connect_error, tls_error, blocked)")
            .Register(registry)};
    Family<Histogram>& webhook_duration{
        prometheus::BuildHistogram()
            .Name("admsd_webhook_request_duration_seconds")
            .Help("Webhook requests, from the call to the receiver's answer, by endpoint")
            .Register(registry)};
    Family<Gauge>& webhook_pending{prometheus::BuildGauge()
                                       .Name("admsd_webhook_pending")
                                       .Help("Events waiting for delivery, by endpoint")
                                       .Register(registry)};
    Family<Gauge>& webhook_failed{prometheus::BuildGauge()
                                      .Name("admsd_webhook_failed")
                                      .Help("Events parked as failed (replayable), by endpoint")
                                      .Register(registry)};
    Family<Gauge>& webhook_oldest{
        prometheus::BuildGauge()
            .Name("admsd_webhook_oldest_pending_age_seconds")
            .Help("Age of the oldest event waiting for delivery, by endpoint: the lag")
            .Register(registry)};
    Family<Gauge>& webhook_up{prometheus::BuildGauge()
                                  .Name("admsd_webhook_endpoint_up")
                                  .Help("1 while an endpoint takes deliveries, 0 while it is "
                                        "unavailable or disabled")
                                  .Register(registry)};
    std::mutex webhook_mutex;
    std::set<std::string> webhook_endpoints; // with gauges; guarded by webhook_mutex
};

metrics::metrics() : impl_{std::make_unique<impl>()}
{
}

metrics::~metrics() = default;

void metrics::request(std::string_view endpoint, unsigned status, std::chrono::nanoseconds latency)
{
    std::string label{endpoint};
    impl_->requests.Add({{"endpoint", label}, {"status", std::to_string(status)}}).Increment();
    impl_->latency.Add({{"endpoint", label}}, request_buckets).Observe(seconds(latency));
}

void metrics::punches(std::size_t stored, std::size_t duplicate, std::size_t rejected)
{
    impl_->stored.Increment(static_cast<double>(stored));
    impl_->duplicate.Increment(static_cast<double>(duplicate));
    impl_->rejected.Increment(static_cast<double>(rejected));
}

void metrics::commands_queued(std::size_t count)
{
    impl_->queued.Increment(static_cast<double>(count));
}

void metrics::commands_sent(std::size_t count)
{
    impl_->sent.Increment(static_cast<double>(count));
}

void metrics::command_results(std::size_t acknowledged, std::size_t failed)
{
    impl_->acknowledged.Increment(static_cast<double>(acknowledged));
    impl_->failed.Increment(static_cast<double>(failed));
}

void metrics::time_sync(sync_outcome outcome)
{
    switch (outcome) {
    case sync_outcome::sent:
        impl_->sync_sent.Increment();
        break;
    case sync_outcome::confirmed:
        impl_->sync_confirmed.Increment();
        break;
    case sync_outcome::refused:
        impl_->sync_refused.Increment();
        break;
    case sync_outcome::timed_out:
        impl_->sync_timed_out.Increment();
        break;
    }
}

void metrics::clock_drift(bool raised)
{
    if (raised) {
        impl_->drift_alerts.Increment();
        impl_->drifted_devices.Increment();
    } else {
        impl_->drifted_devices.Decrement();
    }
}

void metrics::time_service_answer(time_transport transport, time_request_kind kind, int code)
{
    std::string_view biz = kind == time_request_kind::ntp   ? "NTP"
                           : kind == time_request_kind::dst ? "DST"
                                                            : "unknown";
    impl_->time_service_family
        .Add({{"transport", transport == time_transport::http ? "http" : "mqtt"},
              {"biz_type", std::string{biz}},
              {"code", code == 0 ? "0" : "1001"}})
        .Increment();
}

void metrics::database_commit(std::chrono::nanoseconds latency)
{
    impl_->commit.Observe(seconds(latency));
}

void metrics::webhook_delivery(std::string_view endpoint, std::string_view result,
                               std::chrono::nanoseconds duration)
{
    std::string name{endpoint};
    impl_->webhook_deliveries.Add({{"endpoint", name}, {"result", std::string{result}}})
        .Increment();
    impl_->webhook_duration.Add({{"endpoint", name}}, request_buckets).Observe(seconds(duration));
}

void metrics::webhook_endpoint(std::string_view endpoint, bool up, std::size_t pending,
                               std::size_t failed, double oldest_pending_age_seconds)
{
    std::string name{endpoint};
    std::lock_guard lock{impl_->webhook_mutex};
    impl_->webhook_endpoints.insert(name);
    impl_->webhook_up.Add({{"endpoint", name}}).Set(up ? 1 : 0);
    impl_->webhook_pending.Add({{"endpoint", name}}).Set(static_cast<double>(pending));
    impl_->webhook_failed.Add({{"endpoint", name}}).Set(static_cast<double>(failed));
    impl_->webhook_oldest.Add({{"endpoint", name}}).Set(oldest_pending_age_seconds);
}

void metrics::forget_webhook_endpoints_except(const std::vector<std::string>& names)
{
    std::lock_guard lock{impl_->webhook_mutex};
    for (auto it = impl_->webhook_endpoints.begin(); it != impl_->webhook_endpoints.end();) {
        if (std::find(names.begin(), names.end(), *it) != names.end()) {
            ++it;
            continue;
        }
        std::map<std::string, std::string> labels{{"endpoint", *it}};
        for (auto* family : {&impl_->webhook_up, &impl_->webhook_pending, &impl_->webhook_failed,
                             &impl_->webhook_oldest}) {
            family->Remove(&family->Add(labels));
        }
        it = impl_->webhook_endpoints.erase(it);
    }
}

void metrics::ntp_request(bool answered)
{
    (answered ? impl_->ntp_answered : impl_->ntp_dropped).Increment();
}

void metrics::export_run(std::string_view name, bool written,
                         std::chrono::system_clock::time_point at)
{
    std::string label{name};
    impl_->export_family.Add({{"export", label}, {"outcome", written ? "written" : "failed"}})
        .Increment();
    if (written) {
        impl_->export_success_family.Add({{"export", label}})
            .Set(std::chrono::duration<double>(at.time_since_epoch()).count());
    }
}

std::string metrics::render(std::size_t devices_known, std::size_t devices_online) const
{
    impl_->devices_known.Set(static_cast<double>(devices_known));
    impl_->devices_online.Set(static_cast<double>(devices_online));
    return prometheus::TextSerializer{}.Serialize(impl_->registry.Collect());
}

} // namespace adms::server

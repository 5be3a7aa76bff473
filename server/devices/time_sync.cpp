#include "protocol/gettime_reply.hpp"
#include "protocol/zk_time.hpp"
#include "server/devices/device_service.hpp"
#include "server/devices/device_service_internal.hpp"
#include "server/events/event_stream.hpp"
#include "server/observability/logger.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <cmath>

namespace adms::server {
namespace {

// Drift points kept for the next flush at most (while storage fails, newer ones are dropped).
constexpr std::size_t max_pending_drift_points = 100'000;

// The DateTime a queued time sync is stored with until it goes out (ZK 0, 2000-01-01 00:00:00):
// as long as a real value, so the reply-size limit is computed right.
constexpr std::string_view time_sync_placeholder = "DateTime=000000000";

} // namespace

using namespace device_internal;

std::optional<std::string> time_sync_text(const queued_command& command)
{
    if (!command.sent_at || command.text.ends_with(time_sync_placeholder)) {
        return std::nullopt;
    }
    return command.text;
}

boost::asio::awaitable<std::chrono::sys_seconds> device_service::at_next_second()
{
    boost::asio::steady_timer timer{co_await boost::asio::this_coro::executor};
    for (int attempt = 0;; ++attempt) {
        auto now = clock::now();
        auto boundary = std::chrono::ceil<std::chrono::seconds>(now);
        timer.expires_after(boundary - now);
        co_await timer.async_wait(boost::asio::use_awaitable);
        // When many replies wait for the same second (a fleet synced at once), the last ones
        // resume late and would set their clocks behind by that much: they take the next second
        // instead (at most twice), which also spreads the burst.
        if (clock::now() - boundary <= max_time_reply_lateness || attempt == 2) {
            co_return std::chrono::sys_seconds{boundary.time_since_epoch()};
        }
    }
}

boost::asio::awaitable<storage_result<enqueued_command>>
device_service::enqueue_time_sync(const std::string& serial_number, const std::string& verb,
                                  std::string_view reason, clock::time_point now)
{
    // The DateTime value is filled in when the command goes out: queue a placeholder of the
    // same length so the reply-size limit is computed right. A pending time sync (queued, or sent
    // and not answered) is returned instead of queueing a second one, in the same transaction.
    std::string placeholder = fmt::format("{} {}", verb, time_sync_placeholder);
    std::string kind = fmt::format("{}: {}", time_sync_kind, reason);
    auto queued = co_await write([&](write_tx& tx) {
        return tx.commands().enqueue_command_unless_pending(serial_number, placeholder, kind,
                                                            time_sync_kind, to_instant(now));
    });
    if (!queued) {
        storage_failure("queueing a time sync", queued.error);
        co_return queued;
    }
    storage_ok();
    update_record(serial_number, [&](device_record& r) { r.time_sync_sent_at = to_instant(now); });
    if (queued.value->created) {
        note_queued(serial_number);
        stats_.commands_queued(1);
        log_.event("time_sync_queued",
                   fmt::format("Time sync queued for device {} (reason: {})",
                               escape_for_log(serial_number), reason),
                   {{"sn", serial_number}, {"reason", std::string{reason}}});
    }
    co_return queued;
}

boost::asio::awaitable<bool> device_service::queue_time_sync(const device_view& device,
                                                             std::string_view reason,
                                                             clock::time_point now)
{
    if (!storage_healthy()) {
        co_return false; // the handshake's TimeZone and Date still set the clock
    }
    auto queued = co_await enqueue_time_sync(device.record.serial_number, device.verb, reason, now);
    co_return static_cast<bool>(queued);
}

boost::asio::awaitable<storage_result<enqueued_command>>
device_service::request_time_sync(const std::string& serial_number, std::string_view reason)
{
    std::string verb;
    {
        std::lock_guard lock{mutex_};
        auto it = devices_.find(serial_number);
        if (it == devices_.end()) {
            co_return storage_error{fmt::format("unknown device {}", serial_number)};
        }
        verb = verb_of(dialect_of(it->second));
    }
    co_return co_await enqueue_time_sync(serial_number, verb, reason, clock::now());
}

void device_service::log_time_sent(const std::string& serial_number, const tz::zone& zone,
                                   std::chrono::sys_seconds now, std::string sending,
                                   std::string reason)
{
    time_sync_event event;
    event.serial_number = serial_number;
    event.server_utc = now;
    event.zone_name = std::string{zone.name()};
    event.server_local = zone.to_local(now);
    event.device_local = event.server_local;
    event.sending = std::move(sending);
    event.reason = std::move(reason);
    log_.time_sync(event);
}

boost::asio::awaitable<http_response>
device_service::time_reply(const http_request& request, const protocol::iclock_query& query,
                           bool sec)
{
    auto device = touch(query, request);
    auto now = co_await at_next_second();
    auto offset = device.zone.utc_offset(now);
    std::string body =
        sec ? protocol::render_rtdata_time(now, offset) : protocol::render_p320_time(now, offset);
    log_time_sent(query.serial_number, device.zone, now, body, {});
    co_return text_response(200, std::move(body));
}

boost::asio::awaitable<http_response>
device_service::compat_time_reply(const http_request& request, const protocol::iclock_query& query,
                                  const std::string& cmd)
{
    auto device = touch(query, request);
    auto format = protocol::time_format::standard;
    if (const auto* name = query.find_extra("format")) {
        auto parsed = protocol::parse_time_format(*name);
        if (!parsed) {
            co_return text_response(400, "unknown format (standard, iso, compact or unix)\n");
        }
        format = *parsed;
    }
    auto now = co_await at_next_second();
    bool set = iequals(cmd, "settime");
    std::string body = protocol::render_gettime_reply(now, device.zone.utc_offset(now), format,
                                                      set ? "SetTime" : "GetTime");
    log_time_sent(query.serial_number, device.zone, now,
                  fmt::format("{} XML with {} time format", set ? "SetTime" : "GetTime",
                              protocol::time_format_name(format)),
                  {});
    co_return http_response{200, "application/xml", std::move(body), {}, {}};
}

boost::asio::awaitable<void>
device_service::watch_drift(const std::string& serial_number, instant now,
                            const std::function<void(drift_tracker&)>& feed)
{
    if (drift_params_.threshold <= std::chrono::milliseconds{0}) {
        co_return;
    }
    drift_update update;
    std::string id = serial_number;
    {
        std::lock_guard lock{mutex_};
        auto it = devices_.find(serial_number);
        if (it == devices_.end()) {
            co_return;
        }
        feed(it->second.drift);
        update = it->second.drift.evaluate(now, drift_params_);
        if (update.record && drift_points_.size() < max_pending_drift_points) {
            const auto& p = *update.record;
            drift_points_.push_back({serial_number, p.measured_at, p.offset.count(),
                                     p.uncertainty.count(), std::string{to_string(p.source)}});
        }
        id = api_id(it->second.record);
    }
    if (update.alert == drift_alert::none) {
        co_return;
    }
    const auto& e = update.estimate;
    auto offset = e.offset.value_or(std::chrono::milliseconds{0});
    auto seconds = [](std::chrono::milliseconds d) {
        return static_cast<double>(d.count()) / 1000.0;
    };
    bool raised = update.alert == drift_alert::raised;
    stats_.clock_drift(raised);
    if (events_.active()) {
        boost::json::object data;
        data["device"] = id;
        data["sn"] = serial_number;
        data["offset_ms"] = offset.count();
        data["uncertainty_ms"] = e.uncertainty.count();
        data["source"] = std::string{to_string(e.source)};
        data["threshold_ms"] = drift_params_.threshold.count();
        std::vector<event> events{
            {raised ? "device.clock_drift.detected" : "device.clock_drift.resolved", serial_number,
             std::move(data)}};
        if (auto recorded = co_await events_.record(writer_, std::move(events)); !recorded) {
            storage_failure("recording a clock drift event", recorded.error);
        }
    }
    std::vector<std::pair<std::string, std::string>> fields{
        {"sn", serial_number},
        {"offset_ms", std::to_string(offset.count())},
        {"source", std::string{to_string(e.source)}}};
    if (!raised) {
        log_.event("clock_drift_cleared",
                   fmt::format("Device {} clock is back within the drift threshold: {:+.1f} s "
                               "(\u00b1{:.1f} s, from {})",
                               escape_for_log(id), seconds(offset), seconds(e.uncertainty),
                               to_string(e.source)),
                   fields);
        co_return;
    }
    bool sync = config_.drift_auto_sync;
    log_.event(
        "clock_drift",
        fmt::format(
            "\xE2\x9A\xA0\xEF\xB8\x8F Device {} clock is {:.1f} s {} "
            "(\u00b1{:.1f} s, from {}), beyond the drift threshold of {} s{}",
            escape_for_log(id), std::abs(seconds(offset)), offset.count() > 0 ? "fast" : "slow",
            seconds(e.uncertainty), to_string(e.source),
            std::chrono::duration_cast<std::chrono::seconds>(drift_params_.threshold).count(),
            sync ? "; queueing a time sync" : ""),
        fields);
    if (sync) {
        co_await request_time_sync(serial_number, "clock drift");
    }
}

std::vector<clock_offset_point> device_service::take_drift_points()
{
    std::lock_guard lock{mutex_};
    return std::exchange(drift_points_, {});
}

std::optional<device_service::drift_status>
device_service::drift_of(const std::string& serial_number) const
{
    auto now = to_instant(clock::now());
    std::lock_guard lock{mutex_};
    auto it = devices_.find(serial_number);
    if (it == devices_.end()) {
        return std::nullopt;
    }
    // Evaluated on a copy: looking must not record points or move the alert.
    auto tracker = it->second.drift;
    return drift_status{tracker.evaluate(now, drift_params_).estimate, tracker.alerting()};
}

} // namespace adms::server

#include "server/webhooks/webhook_relay.hpp"

#include "server/observability/log_format.hpp"
#include "server/observability/logger.hpp"
#include "server/observability/metrics.hpp"
#include "server/storage/blocking_pool.hpp"
#include "server/storage/commit_queue.hpp"
#include "server/storage/database.hpp"
#include "server/webhooks/webhook_registry.hpp"

#include <fmt/format.h>

namespace adms::server {
namespace {

instant now_instant()
{
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
}

std::uint64_t next_instance()
{
    static std::atomic<std::uint64_t> counter{0};
    return ++counter;
}

std::string describe(const send_result& r)
{
    if (r.outcome != send_outcome::answered) {
        return r.error;
    }
    return fmt::format("HTTP {}", r.status);
}

// How often the housekeeping runs: gauges, disabling, pruning (hourly).
constexpr std::chrono::seconds housekeeping_interval{5};
constexpr int prune_every = 720; // housekeeping rounds: an hour
// Rows one prune round deletes at most (a few tens of milliseconds of the writer's time).
constexpr std::size_t prune_round_rows = 5000;
// After a failed read or write of the outbox, a lane waits this long before it tries again.
constexpr std::chrono::seconds storage_retry{1};

} // namespace

webhook_relay::webhook_relay(net::io_context& io, database& store, blocking_pool& reader,
                             commit_queue& writer, webhook_registry& registry,
                             webhook_sender& sender, logger& log, metrics& stats,
                             relay_settings settings)
    : io_{io}, strand_{net::make_strand(io)}, store_{store}, reader_{reader}, writer_{writer},
      registry_{registry}, sender_{sender}, log_{log}, stats_{stats},
      settings_{std::move(settings)}, random_{std::random_device{}()}
{
    if (settings_.max_in_flight == 0) {
        settings_.max_in_flight = 1;
    }
}

webhook_relay::~webhook_relay() = default;

void webhook_relay::start()
{
    net::post(strand_, [this] {
        for (const auto& endpoint : registry_.list()) {
            refresh(endpoint.name);
        }
        net::co_spawn(strand_, housekeeping(), net::detached);
    });
}

void webhook_relay::stop()
{
    net::post(strand_, [this] { stopping_ = true; });
}

void webhook_relay::refresh(std::string name)
{
    net::post(strand_, [this, name = std::move(name)]() mutable {
        if (stopping_) {
            return;
        }
        auto endpoint = registry_.find(name);
        if (!endpoint) {
            endpoints_.erase(name);
            std::lock_guard lock{status_mutex_};
            statuses_.erase(name);
            return;
        }
        auto [it, created] = endpoints_.try_emplace(name);
        if (created) {
            it->second.generation = next_instance();
        }
        if (!endpoint->enabled) {
            return; // its events wait, in order, for `enable`
        }
        if (!it->second.up) {
            schedule_probe(name, std::chrono::milliseconds{0}); // re-enabled, or requeued: try now
            return;
        }
        net::co_spawn(strand_, load(std::move(name)), net::detached);
    });
}

webhook_relay::endpoint_state* webhook_relay::find(std::string_view name)
{
    auto it = endpoints_.find(name);
    return it == endpoints_.end() ? nullptr : &it->second;
}

void webhook_relay::publish_status(std::string_view name, const endpoint_state& ep)
{
    std::lock_guard lock{status_mutex_};
    auto& s = statuses_[std::string{name}];
    s.up = ep.up;
    s.down_since = ep.down_since;
    s.last_error = ep.last_error;
    s.next_probe = ep.next_probe;
}

webhook_relay::endpoint_status webhook_relay::status(std::string_view name) const
{
    std::lock_guard lock{status_mutex_};
    auto it = statuses_.find(name);
    return it == statuses_.end() ? endpoint_status{} : it->second;
}

net::awaitable<void> webhook_relay::load(std::string name)
{
    auto lanes = co_await reader_.run([&] { return store_.outbox().pending_lanes(name); });
    auto* ep = find(name);
    if (ep == nullptr || stopping_) {
        co_return;
    }
    if (!lanes) {
        log_.event("webhook", fmt::format("Webhook endpoint {}: cannot read its pending events: "
                                          "{}; trying again",
                                          name, lanes.error.message));
        net::steady_timer timer{strand_, storage_retry};
        co_await timer.async_wait(net::use_awaitable);
        refresh(name);
        co_return;
    }
    for (const auto& head : *lanes.value) {
        queue_lane(*ep, head.lane);
    }
    publish_status(name, *ep);
    pump(name);
}

void webhook_relay::queue_lane(endpoint_state& ep, const std::string& lane)
{
    auto& l = ep.lanes[lane];
    if (l.busy || l.queued || l.waiting) {
        return; // its delivery in flight, or its timer, picks up what is new
    }
    l.queued = true;
    ep.ready.push_back(lane);
}

void webhook_relay::on_published(std::span<const published_event> events)
{
    // Called on the writer thread: copy what the strand needs, and return at once.
    std::vector<std::pair<std::string, std::string>> wakes; // (endpoint, lane)
    for (const auto& e : events) {
        for (const auto& endpoint : e.endpoints) {
            wakes.emplace_back(endpoint, e.row.lane);
        }
    }
    if (wakes.empty()) {
        return;
    }
    net::post(strand_, [this, wakes = std::move(wakes)] {
        std::vector<std::string> touched;
        for (const auto& [name, lane] : wakes) {
            if (auto* ep = find(name)) {
                queue_lane(*ep, lane);
                if (touched.empty() || touched.back() != name) {
                    touched.push_back(name);
                }
            }
        }
        for (const auto& name : touched) {
            pump(name);
        }
    });
}

void webhook_relay::pump(const std::string& name)
{
    auto* ep = find(name);
    if (ep == nullptr || stopping_ || !ep->up) {
        return;
    }
    while (ep->in_flight < settings_.max_in_flight && !ep->ready.empty()) {
        auto lane = std::move(ep->ready.front());
        ep->ready.pop_front();
        auto& l = ep->lanes[lane];
        l.queued = false;
        if (l.busy || l.waiting) {
            continue;
        }
        l.busy = true;
        ++ep->in_flight;
        net::co_spawn(strand_, deliver_head(name, std::move(lane), ep->generation), net::detached);
    }
}

void webhook_relay::lane_done(const std::string& name, const std::string& lane,
                              std::uint64_t generation)
{
    auto* ep = find(name);
    if (ep == nullptr || ep->generation != generation) {
        return;
    }
    --ep->in_flight;
    if (auto it = ep->lanes.find(lane); it != ep->lanes.end()) {
        it->second.busy = false;
    }
}

net::awaitable<void> webhook_relay::deliver_head(std::string name, std::string lane,
                                                 std::uint64_t generation)
{
    auto head = co_await reader_.run([&] {
        return store_.outbox().list_deliveries(
            {.endpoint = name, .state = delivery_state::pending, .lane = lane, .limit = 1});
    });
    auto endpoint = registry_.find(name);
    auto* ep = find(name);
    if (ep == nullptr || ep->generation != generation || stopping_ || !endpoint) {
        co_return;
    }
    if (!head) {
        lane_done(name, lane, generation);
        wait_lane(name, lane, now_instant() + storage_retry);
        co_return;
    }
    if (head.value->empty()) {
        lane_done(name, lane, generation);
        if (auto it = ep->lanes.find(lane);
            it != ep->lanes.end() && !it->second.queued && !it->second.waiting) {
            ep->lanes.erase(it); // nothing pending: a new event queues it again
        }
        pump(name);
        co_return;
    }
    auto delivery = std::move(head.value->front());
    if (delivery.next_attempt > now_instant() || !ep->up || !endpoint->enabled) {
        lane_done(name, lane, generation);
        if (delivery.next_attempt > now_instant()) {
            wait_lane(name, lane, delivery.next_attempt);
        }
        pump(name);
        co_return;
    }
    auto result = co_await sender_.send(*endpoint, delivery.event);
    auto v = co_await settle(name, delivery, result, false);
    ep = find(name);
    if (ep == nullptr || ep->generation != generation) {
        co_return;
    }
    lane_done(name, lane, generation);
    if (v == verdict::delivered) {
        if (!ep->up) {
            come_up(name);
        }
        queue_lane(*ep, lane);
    } else if (v == verdict::rejected) {
        // settle recorded when it is due again (or parked it): the head read tells.
        queue_lane(*ep, lane);
    }
    pump(name);
}

net::awaitable<verdict> webhook_relay::settle(const std::string& name,
                                              const webhook_delivery& delivery,
                                              const send_result& result, bool from_probe)
{
    auto v = classify(result);
    auto now = now_instant();
    stats_.webhook_delivery(name, result_label(result), result.duration);
    attempt_record record;
    record.attempt.at = now;
    record.attempt.status = result.outcome == send_outcome::answered ? result.status : 0;
    record.attempt.error = result.error;
    record.attempt.duration = result.duration;
    record.attempt.response = result.response;
    record.next_attempt = now;
    switch (v) {
    case verdict::delivered:
        record.state = delivery_state::delivered;
        break;
    case verdict::unavailable:
    case verdict::gone:
        record.state = delivery_state::pending; // due as soon as the endpoint is back
        break;
    case verdict::rejected: {
        // Count this event's earlier rejections from its attempt log.
        auto log = co_await reader_.run(
            [&] { return store_.outbox().attempts(name, delivery.event.seq); });
        std::size_t rejections = 1;
        if (log) {
            for (const auto& a : *log.value) {
                rejections += classify({send_outcome::answered, a.status, {}, {}, {}, {}}) ==
                              verdict::rejected;
            }
        }
        if (auto wait = reject_wait(settings_.reject_schedule, rejections)) {
            record.next_attempt = now + *wait;
        } else {
            record.state = delivery_state::failed;
            log_.event("webhook",
                       fmt::format("Webhook endpoint {} rejected event {} ({}) {} times: parked "
                                   "as failed (replayable); its device's later events go on",
                                   name, delivery.event.id, describe(result), rejections),
                       {{"endpoint", name}, {"event", delivery.event.id}});
        }
        break;
    }
    }
    auto recorded = co_await writer_.run(
        [&](write_tx& tx) { return tx.outbox().record_attempt(name, delivery.event.seq, record); });
    if (!recorded) {
        log_.event("webhook", fmt::format("Webhook endpoint {}: cannot record an attempt at {}: "
                                          "{} (it may be sent again)",
                                          name, delivery.event.id, recorded.error.message));
    }
    if (v == verdict::unavailable) {
        go_down(name, result, from_probe);
    } else if (v == verdict::gone) {
        co_await disable(name, fmt::format("the receiver answered 410 Gone"));
    }
    co_return v;
}

void webhook_relay::wait_lane(const std::string& name, const std::string& lane, instant due)
{
    auto* ep = find(name);
    if (ep == nullptr) {
        return;
    }
    auto& l = ep->lanes[lane];
    if (l.waiting) {
        return;
    }
    l.waiting = true;
    auto generation = ep->generation;
    net::co_spawn(
        strand_,
        [this, name, lane, due, generation]() -> net::awaitable<void> {
            net::steady_timer timer{strand_};
            timer.expires_after(due - now_instant());
            co_await timer.async_wait(net::use_awaitable);
            auto* ep = find(name);
            if (ep == nullptr || ep->generation != generation || stopping_) {
                co_return;
            }
            ep->lanes[lane].waiting = false;
            queue_lane(*ep, lane);
            pump(name);
        },
        net::detached);
}

void webhook_relay::go_down(const std::string& name, const send_result& result, bool from_probe)
{
    auto* ep = find(name);
    if (ep == nullptr) {
        return;
    }
    ep->last_error = describe(result);
    if (ep->up) {
        ep->up = false;
        ep->down_since = now_instant();
        ep->probe_step = 0;
        log_.event("webhook",
                   fmt::format("Webhook endpoint {} is unavailable ({}); its events wait, and one "
                               "probe retries on the retry schedule",
                               name, escape_for_log(ep->last_error)),
                   {{"endpoint", name}});
    } else if (from_probe) {
        ++ep->probe_step;
    } else {
        // A request that was in flight when the endpoint went down: the probe, scheduled or in
        // flight, paces the retries. Counting this failure too would skip steps of the schedule
        // (with 4 requests in flight, 5 s, 30 s, 1 m, … became 5 s, 5 m, 5 m, …).
        publish_status(name, *ep);
        return;
    }
    schedule_probe(name, retry_wait(settings_.retry_schedule, ep->probe_step, jitter_unit(),
                                    result.retry_after));
    publish_status(name, *ep);
}

void webhook_relay::schedule_probe(const std::string& name, std::chrono::milliseconds wait)
{
    auto* ep = find(name);
    if (ep == nullptr || ep->probing) {
        return;
    }
    ep->probing = true;
    ep->next_probe = now_instant() + wait;
    net::co_spawn(strand_, probe(name, wait), net::detached);
}

net::awaitable<void> webhook_relay::probe(std::string name, std::chrono::milliseconds wait)
{
    net::steady_timer timer{strand_, wait};
    co_await timer.async_wait(net::use_awaitable);
    auto* ep = find(name);
    if (ep == nullptr || stopping_) {
        co_return;
    }
    ep->probing = false;
    ep->next_probe.reset();
    auto endpoint = registry_.find(name);
    if (ep->up || !endpoint || !endpoint->enabled) {
        co_return;
    }
    auto oldest = co_await reader_.run([&] {
        return store_.outbox().list_deliveries(
            {.endpoint = name, .state = delivery_state::pending, .limit = 1});
    });
    if (!oldest || oldest.value->empty()) {
        if (oldest) {
            come_up(name); // nothing left to send
        } else {
            schedule_probe(name, storage_retry);
        }
        co_return;
    }
    auto delivery = std::move(oldest.value->front());
    auto result = co_await sender_.send(*endpoint, delivery.event);
    auto v = co_await settle(name, delivery, result, true); // unavailable: the next probe
    if (v != verdict::unavailable && v != verdict::gone) {
        come_up(name); // it answered: reachable again, whatever it thought of this event
    }
}

void webhook_relay::come_up(const std::string& name)
{
    auto* ep = find(name);
    if (ep == nullptr || ep->up) {
        return;
    }
    auto down_for = ep->down_since ? now_instant() - *ep->down_since : std::chrono::milliseconds{};
    ep->up = true;
    ep->down_since.reset();
    ep->probe_step = 0;
    ep->last_error.clear();
    log_.event("webhook",
               fmt::format("Webhook endpoint {} is back after {} s: delivering what waited, in "
                           "order",
                           name,
                           std::chrono::duration_cast<std::chrono::seconds>(down_for).count()),
               {{"endpoint", name}});
    publish_status(name, *ep);
    net::co_spawn(strand_, load(name), net::detached);
}

net::awaitable<void> webhook_relay::disable(std::string name, std::string reason)
{
    auto endpoint = registry_.find(name);
    if (!endpoint || !endpoint->enabled) {
        co_return;
    }
    endpoint->enabled = false;
    endpoint->disabled_reason = reason;
    registry_.put(*endpoint);
    auto row = row_of(*endpoint);
    auto saved = co_await writer_.run([&](write_tx& tx) { return tx.outbox().save_endpoint(row); });
    log_.event("webhook",
               fmt::format("Webhook endpoint {} disabled: {}; its events are kept (POST "
                           "/webhooks/{}/enable resumes them in order){}",
                           name, reason, name,
                           saved ? "" : fmt::format(" (not saved: {})", saved.error.message)),
               {{"endpoint", name}});
}

net::awaitable<void> webhook_relay::housekeeping()
{
    net::steady_timer timer{strand_};
    for (int round = 1; !stopping_; ++round) {
        timer.expires_after(housekeeping_interval);
        co_await timer.async_wait(net::use_awaitable);
        auto now = now_instant();
        for (const auto& endpoint : registry_.list()) {
            auto* ep = find(endpoint.name);
            auto summary =
                co_await reader_.run([&] { return store_.outbox().summary(endpoint.name); });
            if (summary) {
                double age = 0;
                if (summary.value->oldest_pending) {
                    age =
                        std::chrono::duration<double>(now - *summary.value->oldest_pending).count();
                }
                bool up = endpoint.enabled && (ep == nullptr || ep->up);
                stats_.webhook_endpoint(endpoint.name, up, summary.value->pending,
                                        summary.value->failed, age);
            }
            ep = find(endpoint.name);
            // A rescan: events no wake-up announced (written by a hook inside a batch, or by
            // another process on the same database) are delivered within one round.
            if (ep != nullptr && ep->up && endpoint.enabled && summary &&
                summary.value->pending > 0) {
                co_await load(endpoint.name);
                ep = find(endpoint.name);
            }
            if (ep != nullptr && !ep->up && ep->down_since && endpoint.enabled &&
                settings_.disable_after.count() > 0 &&
                now - *ep->down_since >= settings_.disable_after) {
                co_await disable(endpoint.name,
                                 fmt::format("unavailable for longer than {} s ({})",
                                             settings_.disable_after.count(), ep->last_error));
            }
        }
        std::vector<std::string> names;
        for (const auto& endpoint : registry_.list()) {
            names.push_back(endpoint.name);
        }
        stats_.forget_webhook_endpoints_except(names);
        if (round % prune_every == 0) {
            co_await prune(now - settings_.retention);
        }
    }
}

net::awaitable<void> webhook_relay::prune(instant cut)
{
    // In rounds: the uploads queued behind the single writer wait for one round at most, however
    // much is due (a shortened retention can leave millions of rows at once).
    outbox_writer::pruned_count total;
    while (!stopping_) {
        auto pruned = co_await writer_.run(
            [&](write_tx& tx) { return tx.outbox().prune(cut, prune_round_rows); });
        if (!pruned) {
            log_.event("webhook", fmt::format("Pruning delivered webhook events failed: {}",
                                              pruned.error.message));
            break;
        }
        total.deliveries += pruned.value->deliveries;
        total.events += pruned.value->events;
        if (pruned.value->deliveries < prune_round_rows &&
            pruned.value->events < prune_round_rows) {
            break;
        }
    }
    if (total.deliveries + total.events > 0) {
        log_.event("webhook",
                   fmt::format("Pruned {} webhook deliveries and {} events past the "
                               "retention of {} s",
                               total.deliveries, total.events, settings_.retention.count()));
    }
}

double webhook_relay::jitter_unit()
{
    return std::uniform_real_distribution<double>{0.0, 1.0}(random_);
}

} // namespace adms::server

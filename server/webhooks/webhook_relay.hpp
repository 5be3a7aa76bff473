#pragma once

#include "server/events/event_stream.hpp"
#include "server/net.hpp"
#include "server/webhooks/delivery_policy.hpp"
#include "server/webhooks/endpoint.hpp"

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace adms::server {

class blocking_pool;
class commit_queue;
class database;
class logger;
class metrics;
class webhook_registry;

// Sends one delivery: signs the event's bytes with the endpoint's keys and POSTs them.
class webhook_sender {
  public:
    virtual ~webhook_sender() = default;
    virtual net::awaitable<send_result> send(const webhook_endpoint& endpoint,
                                             const outbox_event& event) = 0;
};

struct relay_settings {
    unsigned max_in_flight = 4;
    std::vector<std::chrono::seconds> retry_schedule{std::chrono::seconds{5}};
    std::vector<std::chrono::seconds> reject_schedule{std::chrono::seconds{5}};
    std::chrono::seconds disable_after{0}; // zero: never
    std::chrono::seconds retention{30 * 24 * 3600};
};

// The outbox relay: delivers each endpoint's pending deliveries, in order per (endpoint, device)
// lane, at most max_in_flight at once per endpoint, recording every attempt through the commit
// queue. The database is the truth: a lane's next delivery is always read from it, so requeued
// (replayed) events, restarts and new events all take the same path. An endpoint that fails as
// a whole (unreachable, 5xx, 429, timeout) pauses: one probe, the oldest pending event, retries
// on the retry schedule with jitter, and when it gets through every lane resumes. An event
// rejected with a 4xx blocks only its lane, for the reject schedule, and is then parked.
// Thread safety: the state lives on one strand; on_published() and refresh() may be called from
// any thread.
class webhook_relay final : public event_listener {
  public:
    webhook_relay(net::io_context& io, database& store, blocking_pool& reader, commit_queue& writer,
                  webhook_registry& registry, webhook_sender& sender, logger& log, metrics& stats,
                  relay_settings settings);
    ~webhook_relay() override;

    // Loads every endpoint's pending lanes and starts delivering; starts the housekeeping
    // (metrics, disabling endpoints down too long, pruning delivered rows).
    void start();
    // Sends nothing more; requests in flight are abandoned with the io_context (their events
    // stay pending and go again at the next start, with the same ids).
    void stop();

    void on_published(std::span<const published_event> events) override;
    // Re-reads an endpoint (created, changed, enabled, disabled, deleted, or deliveries
    // requeued): its lanes are loaded again from the database.
    void refresh(std::string name);

    // What the API shows of an endpoint's delivery state.
    struct endpoint_status {
        bool up = true;
        std::optional<instant> down_since;
        std::string last_error;
        std::optional<instant> next_probe;
    };
    endpoint_status status(std::string_view name) const;

  private:
    struct lane_state {
        bool busy = false;    // a delivery of this lane is in flight
        bool queued = false;  // in ready
        bool waiting = false; // its head is due later (a rejected event's retry)
    };
    struct endpoint_state {
        bool up = true;
        std::optional<instant> down_since;
        std::size_t probe_step = 0;
        bool probing = false; // a probe is scheduled or in flight
        std::optional<instant> next_probe;
        std::size_t in_flight = 0;
        std::unordered_map<std::string, lane_state> lanes;
        std::deque<std::string> ready;
        std::string last_error;
        std::uint64_t generation = 0; // bumped by each load
    };

    endpoint_state* find(std::string_view name);
    void publish_status(std::string_view name, const endpoint_state& ep);
    net::awaitable<void> load(std::string name);
    void queue_lane(endpoint_state& ep, const std::string& lane);
    void pump(const std::string& name);
    net::awaitable<void> deliver_head(std::string name, std::string lane, std::uint64_t generation);
    // Records the attempt and applies its verdict; returns it. `from_probe`: the attempt was the
    // probe of an endpoint that is down.
    net::awaitable<verdict> settle(const std::string& name, const webhook_delivery& delivery,
                                   const send_result& result, bool from_probe);
    void lane_done(const std::string& name, const std::string& lane, std::uint64_t generation);
    void wait_lane(const std::string& name, const std::string& lane, instant due);
    void go_down(const std::string& name, const send_result& result, bool from_probe);
    void schedule_probe(const std::string& name, std::chrono::milliseconds wait);
    net::awaitable<void> probe(std::string name, std::chrono::milliseconds wait);
    void come_up(const std::string& name);
    net::awaitable<void> disable(std::string name, std::string reason);
    net::awaitable<void> housekeeping();
    // Deletes delivered deliveries and their events older than `cut`, in rounds.
    net::awaitable<void> prune(instant cut);
    double jitter_unit();

    net::io_context& io_;
    net::strand<net::io_context::executor_type> strand_;
    database& store_;
    blocking_pool& reader_;
    commit_queue& writer_;
    webhook_registry& registry_;
    webhook_sender& sender_;
    logger& log_;
    metrics& stats_;
    relay_settings settings_;
    std::minstd_rand random_; // jitter only; on the strand

    std::map<std::string, endpoint_state, std::less<>> endpoints_; // on the strand
    bool stopping_ = false;                                        // on the strand

    mutable std::mutex status_mutex_;
    std::map<std::string, endpoint_status, std::less<>> statuses_; // a copy for status()
};

} // namespace adms::server

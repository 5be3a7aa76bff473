#pragma once

#include "server/storage/result.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// The event outbox: each event a subscriber wants is written in the same transaction as the data
// it announces, with one delivery row per webhook endpoint that wants it; the relay sends the
// pending ones and records every attempt. Also the webhook endpoints themselves.
namespace adms::server {

// One event, as stored: the bytes every delivery attempt sends, fixed when it was written.
struct outbox_event {
    std::int64_t seq = 0; // the outbox's order, given by append_event
    std::string id;       // "evt_…": the webhook-id, the same on every attempt and replay
    std::string type;     // "punch.created", …
    std::string lane;     // the serial number of the device it concerns; "" for none
    instant created_at{}; // when admsd recorded it
    std::string body;     // the envelope, sent byte for byte on every attempt
    friend bool operator==(const outbox_event&, const outbox_event&) = default;
};

enum class delivery_state {
    pending,   // to be sent (again) at next_attempt
    delivered, // a 2xx answered it
    failed,    // parked: rejected too often, or its endpoint disabled it; replayable
};

// One event's delivery to one endpoint.
struct webhook_delivery {
    std::string endpoint;
    outbox_event event;
    delivery_state state = delivery_state::pending;
    int attempts = 0;
    instant next_attempt{};
    int last_status = 0; // the HTTP status of the last attempt; 0 when nothing answered
    std::string last_error;
    std::optional<instant> delivered_at;
};

// One attempt at a delivery, for the attempt log.
struct delivery_attempt {
    int number = 0; // 1 for the first
    instant at{};
    int status = 0; // 0 when nothing answered
    std::string error;
    std::chrono::milliseconds duration{0};
    std::string response; // the start of the response body
    friend bool operator==(const delivery_attempt&, const delivery_attempt&) = default;
};

// What record_attempt stores: the attempt, and the delivery's state after it.
struct attempt_record {
    delivery_attempt attempt; // `number` is ignored: the next one is used
    delivery_state state = delivery_state::pending;
    instant next_attempt{}; // when state stays pending
};

// Which deliveries list_deliveries returns: one endpoint's, in outbox order (seq > after_seq).
struct delivery_filter {
    std::string endpoint;
    std::optional<delivery_state> state = std::nullopt;
    std::optional<std::string> lane = std::nullopt;
    std::int64_t after_seq = 0;
    std::size_t limit = 100;
};

// One endpoint's backlog, for the metrics and the API.
struct delivery_summary {
    std::size_t pending = 0;
    std::size_t failed = 0;
    std::optional<instant> oldest_pending; // created_at of the oldest pending event
};

// Which deliveries requeue makes pending again: one endpoint's, in a seq range and, when set,
// a range of created_at; from the given states.
struct requeue_range {
    std::string endpoint;
    std::int64_t from_seq = 0;                         // seq >= from_seq
    std::optional<std::int64_t> to_seq = std::nullopt; // seq <= to_seq
    std::optional<instant> created_from = std::nullopt;
    std::optional<instant> created_to = std::nullopt; // created_at < created_to
    bool delivered = true;                            // include delivered ones (a replay)
    bool failed = true;                               // include parked ones
};

// A webhook endpoint as stored: its definition is the webhook layer's JSON, opaque here.
struct webhook_endpoint_row {
    std::string name;
    std::string definition;
    bool enabled = true;
    std::string disabled_reason;
    std::string source; // "config" or "api"
    instant created_at{};
    friend bool operator==(const webhook_endpoint_row&, const webhook_endpoint_row&) = default;
};

// Reads of the outbox (see database.hpp for what every store promises).
// Thread safety: any thread may call, concurrently.
class outbox_store {
  public:
    virtual storage_result<std::vector<webhook_endpoint_row>> endpoints() = 0;
    // Deliveries matching `filter`, oldest (smallest seq) first, at most filter.limit.
    virtual storage_result<std::vector<webhook_delivery>>
    list_deliveries(const delivery_filter& filter) = 0;
    // The lanes of an endpoint that have pending deliveries, each with its oldest pending seq,
    // in that seq's order.
    struct lane_head {
        std::string lane;
        std::int64_t seq = 0;
        friend bool operator==(const lane_head&, const lane_head&) = default;
    };
    virtual storage_result<std::vector<lane_head>> pending_lanes(std::string_view endpoint) = 0;
    // The delivery of event `event_id` to `endpoint`, if there is one.
    virtual storage_result<std::optional<webhook_delivery>>
    find_delivery(std::string_view endpoint, std::string_view event_id) = 0;
    // A delivery's attempts, first first.
    virtual storage_result<std::vector<delivery_attempt>> attempts(std::string_view endpoint,
                                                                   std::int64_t seq) = 0;
    virtual storage_result<delivery_summary> summary(std::string_view endpoint) = 0;

  protected:
    ~outbox_store() = default;
};

// Writes of the outbox; reached only through a write_tx (database.hpp).
class outbox_writer {
  public:
    // Appends each of `events` (setting its seq) with a pending delivery to each endpoint of
    // the same index in `endpoints`, due at once; all of them or none. An event id already
    // stored is an error value. One call for a whole upload's events: each writer call is a
    // savepoint, and one per event was most of a batch's time.
    virtual storage_status append_events(std::span<outbox_event> events,
                                         std::span<const std::vector<std::string>> endpoints) = 0;
    // append_events of one event.
    storage_status append_event(outbox_event& event, std::span<const std::string> endpoints)
    {
        std::vector<std::string> names(endpoints.begin(), endpoints.end());
        return append_events({&event, 1}, {&names, 1});
    }
    // Records an attempt at the delivery (endpoint, seq) and its state after it.
    virtual storage_status record_attempt(std::string_view endpoint, std::int64_t seq,
                                          const attempt_record& record) = 0;
    // Makes the deliveries in `range` pending again, due at `due` (attempt counts and logs
    // stay), and returns how many. Their event ids and bytes do not change.
    virtual storage_result<std::size_t> requeue(const requeue_range& range, instant due) = 0;
    // Creates or replaces an endpoint (by name).
    virtual storage_status save_endpoint(const webhook_endpoint_row& endpoint) = 0;
    // Deletes an endpoint and its deliveries; false when there was none.
    virtual storage_result<bool> delete_endpoint(std::string_view name) = 0;
    // Deletes at most `limit` delivered deliveries (with their attempts) delivered before
    // `before`, oldest first, then the events created before `before` that no delivery refers to
    // any more (at most `limit` of them), and returns how many deliveries and events went. A
    // caller prunes in rounds until it gets less than `limit` of both, so no batch of the single
    // writer holds up uploads for long however much a retention change leaves to prune.
    struct pruned_count {
        std::size_t deliveries = 0;
        std::size_t events = 0;
    };
    virtual storage_result<pruned_count> prune(instant before, std::size_t limit) = 0;

  protected:
    ~outbox_writer() = default;
};

} // namespace adms::server

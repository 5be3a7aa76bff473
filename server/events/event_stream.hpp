#pragma once

#include "server/net.hpp"
#include "server/storage/database.hpp"

#include <boost/json/object.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

// The in-process event stream. Domain code makes events (a punch was stored, a device went
// offline, a command completed) and publishes them after the commit that made them true; storage
// never publishes. Events some webhook endpoint wants are written to the outbox inside that same
// commit (stage), so an event is durable exactly when the data it announces is: a crash loses
// neither one without the other. Listeners (the webhook relay; later the dashboard's live view)
// hear of them after the commit (publish).
namespace adms::server {

class commit_queue;

// One event as domain code makes it.
struct event {
    std::string type;          // dot-separated, e.g. "punch.created"
    std::string serial_number; // the device it concerns; "" for none (its delivery lane)
    boost::json::object data;
};

// An event as staged: its outbox row (seq 0 when no endpoint wanted it, so it was not stored)
// and the endpoints it fans out to.
struct published_event {
    outbox_event row;
    std::vector<std::string> endpoints;
};

// Who wants events durably: the webhook endpoints. Consulted on the writer thread, inside the
// batch, while the admin API may change the endpoints: implementations are thread safe.
class event_routes {
  public:
    virtual ~event_routes() = default;
    // The endpoints that want events of `type` about device `serial_number`.
    virtual std::vector<std::string> endpoints_for(std::string_view type,
                                                   std::string_view serial_number) const = 0;
    // False when no endpoint wants anything: the callers skip building events at all.
    virtual bool any() const = 0;
};

// Told of events after the commit that made them true, on the thread that committed them
// (listeners post their work elsewhere and return at once).
class event_listener {
  public:
    virtual ~event_listener() = default;
    virtual void on_published(std::span<const published_event> events) = 0;
};

// Thread safety: set_routes() and subscribe() before the server starts; the rest from any thread.
class event_stream {
  public:
    void set_routes(const event_routes* routes) { routes_ = routes; }
    void subscribe(event_listener* listener) { listeners_.push_back(listener); }

    // Whether some endpoint may want an event: when false, callers need not build them. (The
    // relay listens only for what endpoints want; a listener that wants every event, such as a
    // live view, must make this ask for it too.)
    bool active() const { return routes_ != nullptr && routes_->any(); }

    // Inside a write batch: gives each event an id and its envelope (timestamped now), appends
    // the ones some endpoint wants to the outbox through `tx`, and adds all of them to `staged`
    // for publish(). On an error the caller's tx.atomic() undoes what was appended.
    storage_status stage(write_tx& tx, std::span<const event> events,
                         std::vector<published_event>& staged) const;

    // After the batch that staged `staged` committed.
    void publish(std::span<const published_event> staged) const;

    // Events that announce no other data: stages them in a writer call of their own, then
    // publishes them once committed.
    net::awaitable<storage_status> record(commit_queue& writer, std::vector<event> events) const;

  private:
    const event_routes* routes_ = nullptr;
    std::vector<event_listener*> listeners_;
};

// A new event id: "evt_" and a ULID (26 characters of Crockford base32: the millisecond of
// `now`, then 80 random bits from OpenSSL), so ids sort by time, are unique across databases and
// instances, and hold no '.' (the signature's separator).
std::string new_event_id(instant now);

// The body every delivery of an event sends: {"id","type","timestamp","data"}, minified, keys
// in that order; timestamp is ISO 8601 UTC with milliseconds.
std::string event_envelope(std::string_view id, std::string_view type, instant timestamp,
                           const boost::json::object& data);

} // namespace adms::server

#pragma once

#include "server/config/settings.hpp"
#include "server/net.hpp"
#include "server/security/access_control.hpp"
#include "server/storage/outbox_store.hpp"
#include "server/webhooks/endpoint.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace adms::server {

class blocking_pool;
class commit_queue;
class database;
class event_stream;
class logger;
class webhook_registry;
class webhook_relay;

// What a create or a change of an endpoint gives: each member present is set.
struct webhook_input {
    std::optional<std::string> name;
    std::optional<std::string> url;
    std::optional<std::string> description;
    std::optional<std::string> secret;
    std::optional<std::vector<std::string>> event_types;
    std::optional<std::vector<std::string>> devices;
    std::optional<std::vector<std::pair<std::string, std::string>>> headers;
    std::optional<std::chrono::seconds> timeout;
    std::optional<std::string> ca_file;
    std::optional<bool> enabled;
};

// Why an operation on an endpoint did nothing.
enum class webhook_error { none, not_found, exists, invalid, storage };

// An operation's outcome: the endpoint as it now is, a secret to show once, or an error naming
// the field (for invalid) and saying why.
struct webhook_outcome {
    std::optional<webhook_endpoint> endpoint;
    std::optional<std::string> new_secret; // shown once: on create without one, and on rotate
    webhook_error error = webhook_error::none;
    std::string field;
    std::string message;
};

// Which deliveries a replay sends again: by outbox sequence range or by creation time.
struct replay_request {
    std::int64_t from_seq = 0;
    std::optional<std::int64_t> to_seq;
    std::optional<instant> from;
    std::optional<instant> to;
};

// The webhook endpoints as a domain: create, change, delete, rotate, test, retry, replay; the
// config file's [webhooks.<name>] applied at start. Validates URLs against the SSRF rules and
// webhook_allow_networks (which only the config, environment or flags set), persists through
// the commit queue, keeps the registry the event stream routes by, and tells the relay.
// Thread safety: any thread; operations on one endpoint should not race (the last write wins).
class webhook_service {
  public:
    webhook_service(const settings& config, database& store, commit_queue& writer,
                    blocking_pool& reader, webhook_registry& registry, webhook_relay& relay,
                    const event_stream& events, logger& log);

    // At start, before serving (blocking): loads the stored endpoints into the registry and
    // applies the config file's (created or replaced; config endpoints no longer in the file
    // are disabled, their events kept). An error names the endpoint and what is wrong.
    std::string apply_config();

    std::vector<webhook_endpoint> list() const;
    std::optional<webhook_endpoint> find(std::string_view name) const;

    net::awaitable<webhook_outcome> create(webhook_input input);
    net::awaitable<webhook_outcome> update(std::string name, webhook_input input);
    net::awaitable<webhook_outcome> remove(std::string name);
    // A new secret (given, or generated); the old one keeps signing for `grace` (zero: not).
    net::awaitable<webhook_outcome>
    rotate_secret(std::string name, std::optional<std::string> secret, std::chrono::seconds grace);
    net::awaitable<webhook_outcome> enable(std::string name);
    // Sends a webhook.test event to this endpoint only; the outcome carries its event id in
    // `message`.
    net::awaitable<webhook_outcome> send_test(std::string name);
    // Makes one delivery pending again (a parked one, or a delivered one to send again).
    net::awaitable<storage_result<bool>> retry(std::string name, std::string event_id);
    // Makes a range of deliveries pending again, in order, with the same ids and bytes.
    net::awaitable<storage_result<std::size_t>> replay(std::string name, replay_request range);

    // Whether create and PATCH resolve a host name to check its addresses (default true). The
    // fuzzer turns it off: its inputs name hosts no test may look up.
    void resolve_names(bool on) { resolve_names_ = on; }

    // The allow-list as parsed from webhook_allow_networks.
    const network_list& allow_list() const { return allow_list_; }

  private:
    // Checks an endpoint as it would be stored; the field and why, or empty.
    net::awaitable<std::pair<std::string, std::string>> check(const webhook_endpoint& e);
    std::pair<std::string, std::string> check_static(const webhook_endpoint& e) const;
    net::awaitable<storage_status> save(const webhook_endpoint& e);
    // The endpoint a config table describes (reusing the stored secrets when the file gives
    // none); an error text when it cannot be built.
    std::string from_config(const std::string& name, const webhook_config& c,
                            const std::optional<webhook_endpoint>& stored, webhook_endpoint& out);

    const settings& config_;
    database& store_;
    commit_queue& writer_;
    blocking_pool& reader_;
    webhook_registry& registry_;
    webhook_relay& relay_;
    const event_stream& events_;
    logger& log_;
    network_list allow_list_;
    bool resolve_names_ = true;
};

// Applies `input` to `e` (the members present).
void apply_input(webhook_endpoint& e, const webhook_input& input);

} // namespace adms::server

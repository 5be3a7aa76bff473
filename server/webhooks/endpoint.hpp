#pragma once

#include "server/storage/outbox_store.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// A webhook endpoint: where events go, which ones, and how they are signed.
namespace adms::server {

// The event types admsd publishes (docs/webhooks.md). "*" in an endpoint's list means all.
inline constexpr std::string_view event_type_names[] = {
    "punch.created",
    "device.online",
    "device.offline",
    "device.time_synced",
    "device.time_sync_failed",
    "device.clock_drift.detected",
    "device.clock_drift.resolved",
    "command.completed",
    "command.failed",
    "webhook.test",
    "export.completed",
};
bool known_event_type(std::string_view type);

// A signing secret; during a rotation the old one signs too until it expires.
struct webhook_secret {
    std::string key; // "whsec_…"
    std::optional<instant> expires_at;
    friend bool operator==(const webhook_secret&, const webhook_secret&) = default;
};

struct webhook_endpoint {
    std::string name;
    std::string url;
    std::string description;
    std::vector<std::string> event_types; // empty or "*": every type
    std::vector<std::string> devices;     // serial numbers or aliases; empty: every device
    std::vector<webhook_secret> secrets;  // the newest first
    std::vector<std::pair<std::string, std::string>> headers; // extra request headers
    std::chrono::seconds timeout{15};
    std::string ca_file;
    bool enabled = true;
    std::string disabled_reason;
    std::string source = "api"; // "config": from [webhooks.<name>], re-applied at every start
    instant created_at{};
    friend bool operator==(const webhook_endpoint&, const webhook_endpoint&) = default;
};

// Whether the endpoint wants events of `type` about the device with `serial_number` (and
// `alias`, when it has one). webhook.test goes only where it is sent, never by subscription.
bool wants(const webhook_endpoint& endpoint, std::string_view type, std::string_view serial_number,
           std::string_view alias);

// The secrets that sign a request at `now`: the current one and those whose grace has not
// ended.
std::vector<std::string> signing_keys(const webhook_endpoint& endpoint, instant now);

// To and from the stored row (the definition is JSON; the secrets are in it).
webhook_endpoint_row row_of(const webhook_endpoint& endpoint);
// nullopt when the stored definition cannot be read.
std::optional<webhook_endpoint> endpoint_of(const webhook_endpoint_row& row);

} // namespace adms::server

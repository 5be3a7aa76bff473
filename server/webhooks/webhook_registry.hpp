#pragma once

#include "server/events/event_stream.hpp"
#include "server/webhooks/endpoint.hpp"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace adms::server {

// The webhook endpoints in force, in memory (the database holds them durably): the event
// stream asks it which endpoints want an event, inside the write batch.
// Thread safety: every member function may be called from any thread.
class webhook_registry final : public event_routes {
  public:
    // The alias of a device, if it has one (endpoints may name devices by alias).
    using alias_lookup = std::function<std::string(std::string_view serial_number)>;
    explicit webhook_registry(alias_lookup alias_of) : alias_of_{std::move(alias_of)} {}

    std::vector<std::string> endpoints_for(std::string_view type,
                                           std::string_view serial_number) const override;
    bool any() const override;

    // Every endpoint, by name.
    std::vector<webhook_endpoint> list() const;
    std::optional<webhook_endpoint> find(std::string_view name) const;
    void put(webhook_endpoint endpoint);
    void erase(std::string_view name);

  private:
    void note_filters(); // with mutex_ held

    alias_lookup alias_of_;
    std::atomic<bool> device_filters_{false}; // some endpoint names devices
    mutable std::mutex mutex_;
    std::map<std::string, webhook_endpoint, std::less<>> endpoints_;
};

} // namespace adms::server

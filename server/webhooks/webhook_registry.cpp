#include "server/webhooks/webhook_registry.hpp"

namespace adms::server {

std::vector<std::string> webhook_registry::endpoints_for(std::string_view type,
                                                         std::string_view serial_number) const
{
    std::vector<std::string> out;
    // Looked up before taking the lock (the device registry has a lock of its own), and only
    // when some endpoint names devices.
    std::string alias;
    if (device_filters_ && !serial_number.empty() && alias_of_) {
        alias = alias_of_(serial_number);
    }
    std::lock_guard lock{mutex_};
    for (const auto& [name, endpoint] : endpoints_) {
        // A disabled endpoint still gets its events: they wait, in order, for `enable`.
        if (wants(endpoint, type, serial_number, alias)) {
            out.push_back(name);
        }
    }
    return out;
}

bool webhook_registry::any() const
{
    std::lock_guard lock{mutex_};
    return !endpoints_.empty();
}

std::vector<webhook_endpoint> webhook_registry::list() const
{
    std::lock_guard lock{mutex_};
    std::vector<webhook_endpoint> out;
    for (const auto& [name, endpoint] : endpoints_) {
        out.push_back(endpoint);
    }
    return out;
}

std::optional<webhook_endpoint> webhook_registry::find(std::string_view name) const
{
    std::lock_guard lock{mutex_};
    if (auto it = endpoints_.find(name); it != endpoints_.end()) {
        return it->second;
    }
    return std::nullopt;
}

void webhook_registry::put(webhook_endpoint endpoint)
{
    std::lock_guard lock{mutex_};
    auto name = endpoint.name;
    endpoints_.insert_or_assign(std::move(name), std::move(endpoint));
    note_filters();
}

void webhook_registry::note_filters()
{
    bool any_filter = false;
    for (const auto& [name, endpoint] : endpoints_) {
        any_filter = any_filter || !endpoint.devices.empty();
    }
    device_filters_ = any_filter;
}

void webhook_registry::erase(std::string_view name)
{
    std::lock_guard lock{mutex_};
    if (auto it = endpoints_.find(name); it != endpoints_.end()) {
        endpoints_.erase(it);
    }
    note_filters();
}

} // namespace adms::server

#include "server/webhooks/endpoint.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace adms::server {

namespace json = boost::json;

bool known_event_type(std::string_view type)
{
    return std::find(std::begin(event_type_names), std::end(event_type_names), type) !=
           std::end(event_type_names);
}

bool wants(const webhook_endpoint& endpoint, std::string_view type, std::string_view serial_number,
           std::string_view alias)
{
    if (type == "webhook.test") {
        return false;
    }
    const auto& types = endpoint.event_types;
    bool type_ok = types.empty() || std::find(types.begin(), types.end(), "*") != types.end() ||
                   std::find(types.begin(), types.end(), type) != types.end();
    if (!type_ok) {
        return false;
    }
    if (endpoint.devices.empty()) {
        return true;
    }
    // An event about no device (export.completed) goes to every endpoint that wants its type.
    if (serial_number.empty()) {
        return true;
    }
    return std::any_of(endpoint.devices.begin(), endpoint.devices.end(), [&](const auto& id) {
        return id == serial_number || (!alias.empty() && id == alias);
    });
}

std::vector<std::string> signing_keys(const webhook_endpoint& endpoint, instant now)
{
    std::vector<std::string> keys;
    for (const auto& secret : endpoint.secrets) {
        if (!secret.expires_at || *secret.expires_at > now) {
            keys.push_back(secret.key);
        }
    }
    return keys;
}

webhook_endpoint_row row_of(const webhook_endpoint& endpoint)
{
    json::object d;
    d["url"] = endpoint.url;
    d["description"] = endpoint.description;
    json::array types(endpoint.event_types.begin(), endpoint.event_types.end());
    d["event_types"] = std::move(types);
    json::array devices(endpoint.devices.begin(), endpoint.devices.end());
    d["devices"] = std::move(devices);
    json::array secrets;
    for (const auto& s : endpoint.secrets) {
        json::object o;
        o["key"] = s.key;
        if (s.expires_at) {
            o["expires_at_ms"] = s.expires_at->time_since_epoch().count();
        }
        secrets.push_back(std::move(o));
    }
    d["secrets"] = std::move(secrets);
    json::array headers;
    for (const auto& [name, value] : endpoint.headers) {
        headers.push_back(json::array{json::value(name), json::value(value)});
    }
    d["headers"] = std::move(headers);
    d["timeout_s"] = endpoint.timeout.count();
    d["ca_file"] = endpoint.ca_file;
    return {endpoint.name,   json::serialize(d), endpoint.enabled, endpoint.disabled_reason,
            endpoint.source, endpoint.created_at};
}

namespace {

std::vector<std::string> strings(const json::object& d, std::string_view key)
{
    std::vector<std::string> out;
    if (const auto* a = d.if_contains(key); a && a->is_array()) {
        for (const auto& v : a->get_array()) {
            if (v.is_string()) {
                out.emplace_back(v.get_string());
            }
        }
    }
    return out;
}

std::string text(const json::object& d, std::string_view key)
{
    const auto* v = d.if_contains(key);
    return v && v->is_string() ? std::string{v->get_string()} : std::string{};
}

} // namespace

std::optional<webhook_endpoint> endpoint_of(const webhook_endpoint_row& row)
{
    boost::system::error_code ec;
    auto parsed = json::parse(row.definition, ec);
    if (ec || !parsed.is_object()) {
        return std::nullopt;
    }
    const auto& d = parsed.get_object();
    webhook_endpoint e;
    e.name = row.name;
    e.url = text(d, "url");
    e.description = text(d, "description");
    e.event_types = strings(d, "event_types");
    e.devices = strings(d, "devices");
    if (const auto* a = d.if_contains("secrets"); a && a->is_array()) {
        for (const auto& v : a->get_array()) {
            if (!v.is_object()) {
                continue;
            }
            webhook_secret s;
            s.key = text(v.get_object(), "key");
            if (const auto* ms = v.get_object().if_contains("expires_at_ms");
                ms && ms->is_int64()) {
                s.expires_at = instant{std::chrono::milliseconds{ms->get_int64()}};
            }
            e.secrets.push_back(std::move(s));
        }
    }
    if (const auto* a = d.if_contains("headers"); a && a->is_array()) {
        for (const auto& v : a->get_array()) {
            if (v.is_array() && v.get_array().size() == 2 && v.get_array()[0].is_string() &&
                v.get_array()[1].is_string()) {
                e.headers.emplace_back(std::string{v.get_array()[0].get_string()},
                                       std::string{v.get_array()[1].get_string()});
            }
        }
    }
    if (const auto* t = d.if_contains("timeout_s"); t && t->is_int64()) {
        e.timeout = std::chrono::seconds{t->get_int64()};
    }
    e.ca_file = text(d, "ca_file");
    e.enabled = row.enabled;
    e.disabled_reason = row.disabled_reason;
    e.source = row.source;
    e.created_at = row.created_at;
    if (e.url.empty() || e.secrets.empty()) {
        return std::nullopt;
    }
    return e;
}

} // namespace adms::server

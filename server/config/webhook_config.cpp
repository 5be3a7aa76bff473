#include "server/config/webhook_config.hpp"

#include "server/config/setting_values.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace adms::server {
namespace {

// A string, or each string of an array; nullopt when the node is anything else.
std::optional<std::vector<std::string>> strings_of(const toml::node& node)
{
    if (auto text = node.value<std::string>()) {
        return std::vector<std::string>{*text};
    }
    const auto* array = node.as_array();
    if (array == nullptr) {
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (const auto& item : *array) {
        auto text = item.value<std::string>();
        if (!text) {
            return std::nullopt;
        }
        out.push_back(*text);
    }
    return out;
}

// A header name as RFC 9110 allows (a token), not one admsd sets itself.
bool valid_header_name(std::string_view name)
{
    if (name.empty() || name.size() > 64) {
        return false;
    }
    constexpr std::string_view specials = "!#$%&'*+-.^_`|~";
    for (char c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c)) &&
            specials.find(c) == std::string_view::npos) {
            return false;
        }
    }
    std::string lower{name};
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return !lower.starts_with("webhook-") && lower != "content-type" && lower != "content-length" &&
           lower != "host" && lower != "user-agent" && lower != "connection" &&
           lower != "transfer-encoding";
}

std::string read_headers(webhook_config& hook, const toml::node& node, const std::string& where)
{
    const auto* table = node.as_table();
    if (table == nullptr) {
        return fmt::format("invalid {}: expected a table of header = \"value\"", where);
    }
    for (const auto& [name_key, value_node] : *table) {
        std::string name{name_key.str()};
        auto value = value_node.value<std::string>();
        if (!valid_header_name(name)) {
            return fmt::format("invalid {}.{}: not a header name admsd lets you set", where, name);
        }
        if (!value || value->find_first_of("\r\n") != std::string::npos) {
            return fmt::format("invalid {}.{}: expected a one-line string", where, name);
        }
        hook.headers.emplace_back(std::move(name), std::move(*value));
    }
    return {};
}

std::string read_key(webhook_config& hook, const std::string& key, const toml::node& node,
                     const std::string& where)
{
    auto text = node.value<std::string>();
    if (key == "event_types" || key == "devices") {
        auto list = strings_of(node);
        if (!list) {
            return fmt::format("invalid {}: expected a list of strings", where);
        }
        (key == "event_types" ? hook.event_types : hook.devices) = std::move(*list);
        return {};
    }
    if (key == "headers") {
        return read_headers(hook, node, where);
    }
    if (key == "timeout") {
        auto seconds = node.value<long long>();
        auto d = text ? parse_duration(*text)
                      : (seconds ? std::optional<std::chrono::seconds>{*seconds} : std::nullopt);
        if (!d || *d < std::chrono::seconds{1} || *d > std::chrono::seconds{30}) {
            return fmt::format("invalid {}: expected a duration from 1s to 30s", where);
        }
        hook.timeout = *d;
        return {};
    }
    if (!text) {
        return fmt::format("invalid {}: expected a string", where);
    }
    if (key == "url") {
        hook.url = *text;
    } else if (key == "description") {
        hook.description = *text;
    } else if (key == "secret") {
        hook.secret = *text; // its form is checked at start, with the others' rules
    } else if (key == "secret_file") {
        hook.secret_file = *text;
    } else if (key == "ca_file") {
        hook.ca_file = *text;
    } else {
        return fmt::format("unknown setting {}", where);
    }
    return {};
}

} // namespace

bool valid_endpoint_name(std::string_view name)
{
    return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

std::string apply_webhooks(settings& s, const toml::table& webhooks)
{
    for (const auto& [name_key, node] : webhooks) {
        std::string name{name_key.str()};
        if (!valid_endpoint_name(name)) {
            return fmt::format("invalid webhooks.{}: a name is 1 to 64 letters, digits, '-', '_' "
                               "or '.'",
                               name);
        }
        const auto* table = node.as_table();
        if (table == nullptr) {
            return fmt::format("invalid webhooks.{}: expected a table", name);
        }
        webhook_config hook;
        for (const auto& [key_node, value_node] : *table) {
            std::string key{key_node.str()};
            auto where = fmt::format("webhooks.{}.{}", name, key);
            if (auto error = read_key(hook, key, value_node, where); !error.empty()) {
                return error;
            }
        }
        if (hook.url.empty()) {
            return fmt::format("invalid webhooks.{}: url is required", name);
        }
        if (!hook.secret.empty() && !hook.secret_file.empty()) {
            return fmt::format("invalid webhooks.{}: give secret or secret_file, not both", name);
        }
        s.webhooks[name] = std::move(hook);
    }
    return {};
}

} // namespace adms::server

#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace adms::server {

// Where an MQTT broker is, read from mqtt://[user[:password]@]host[:port] (1883) or
// mqtts://… (TLS, 8883). IPv6 hosts in brackets.
struct mqtt_endpoint {
    std::string host;
    unsigned short port = 1883;
    bool tls = false;
    std::string username; // from the URL's userinfo, percent-decoded; empty = none
    std::string password;
    friend bool operator==(const mqtt_endpoint&, const mqtt_endpoint&) = default;
};

// The outcome of reading an MQTT URL: the endpoint, or why not (never echoing a password).
struct mqtt_url_parse {
    std::optional<mqtt_endpoint> value;
    std::string error;
};

// Reads an MQTT URL. A path other than "/", a query or a fragment is refused.
mqtt_url_parse parse_mqtt_url(std::string_view url);

} // namespace adms::server

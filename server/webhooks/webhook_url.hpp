#pragma once

#include "server/security/access_control.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// A webhook endpoint's URL, checked once when it is configured (create, PATCH, config file) and
// parsed into what the HTTP client dials.
namespace adms::server::webhooks {

// Where a delivery goes.
struct webhook_target {
    std::string scheme;           // "http" or "https", lower case
    std::string host;             // a lower-case DNS name, or an IP address (IPv6 without brackets)
    std::uint16_t port = 0;       // the URL's port, or 80/443 by scheme
    std::string target;           // path and query as sent in the request line, "/" at least
    bool is_tls = false;          // https
    bool host_is_address = false; // `host` is an IP address: dialled as is, no DNS
};

// The longest URL accepted, in bytes.
inline constexpr std::size_t max_url_size = 2048;

// A checked URL, or one line saying what is wrong with it.
struct url_check {
    std::optional<webhook_target> value;
    std::string error; // empty when `value` is set
};

// Checks a webhook URL (RFC 3986, by Boost.URL): scheme http or https; no userinfo; a host;
// a port from 1 to 65535 when one is given; no fragment. A literal IP host ("http://10.0.0.5/",
// "https://[::1]:8443/") must pass check_address() with `allow_list` here and now. Numeric hosts
// in the forms getaddrinfo() also reads as IPv4 ("2130706433", "0x7f.1", "127.1", "010.0.0.1") are
// refused outright: they hide a loopback or private address behind what looks like a name. A
// DNS name is checked later, on every connection, against the addresses it resolves to.
url_check check_webhook_url(std::string_view text, const network_list& allow_list);

} // namespace adms::server::webhooks

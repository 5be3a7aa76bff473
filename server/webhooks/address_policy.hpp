#pragma once

#include "server/security/access_control.hpp"

#include <string>
#include <string_view>

// The SSRF guard of outgoing webhooks: which IP addresses admsd may dial. Everything that is not
// a public unicast address is refused unless the operator lists its network in
// `webhook_allow_networks` (a flag, environment variable or config file setting, never the admin
// API: a stolen admin token must not widen it).
namespace adms::server::webhooks {

// The setting that admits refused addresses; named in every refusal.
inline constexpr std::string_view allow_networks_setting = "webhook_allow_networks";

// Why an address is refused by default, or that it is not.
enum class address_kind {
    global,        // public unicast: allowed
    invalid,       // not an IP address at all
    unspecified,   // 0.0.0.0/8, ::
    loopback,      // 127.0.0.0/8, ::1
    private_use,   // RFC 1918
    shared,        // 100.64.0.0/10, carrier-grade NAT
    link_local,    // 169.254.0.0/16 (cloud metadata), fe80::/10
    ietf_protocol, // 192.0.0.0/24
    documentation, // 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32
    benchmarking,  // 198.18.0.0/15
    multicast,     // 224.0.0.0/4, ff00::/8
    reserved,      // 240.0.0.0/4
    broadcast,     // 255.255.255.255
    unique_local,  // fc00::/7
    site_local,    // fec0::/10 (deprecated, still private)
};

// What kind of address `address` is ("127.0.0.1", "::ffff:10.0.0.1", "fe80::1"). IPv4 embedded in
// IPv6 (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d) is the kind
// of its IPv4 address, since that is where a connection to it ends up.
address_kind classify_address(std::string_view address);

// The kind as words for a message: "a loopback address", "a private (RFC 1918) address".
std::string_view describe(address_kind kind);

// Whether an address may be dialled, and if not, one line saying why and what to change.
struct address_check {
    bool allowed = false;
    std::string error; // e.g. "127.0.0.1 is a loopback address; add it to webhook_allow_networks
                       // to allow it"; empty when allowed
};

// Checks `address` against the default-deny rules and `allow_list` (the parsed
// webhook_allow_networks). An empty allow-list admits nothing: unlike network_list::contains,
// "no networks" here means no exceptions. An embedded IPv4 address is admitted when either it or
// the IPv6 address is in the list.
address_check check_address(std::string_view address, const network_list& allow_list);

} // namespace adms::server::webhooks

#include "server/webhooks/address_policy.hpp"

#include "protocol/text.hpp"

#include <boost/url/ipv4_address.hpp>
#include <boost/url/ipv6_address.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>

namespace adms::server::webhooks {
namespace {

using v6_bytes = std::array<unsigned char, 16>;

// An address as 16 bytes; IPv4 as IPv4-mapped IPv6, so one path classifies both. RFC 3986's
// grammar (Boost.URL) is the textual form inet_pton() accepts: dotted decimal without leading
// zeros, and IPv6 with an optional dotted IPv4 tail; no zone ("%eth0").
std::optional<v6_bytes> parse_address(std::string_view text)
{
    if (auto v4 = boost::urls::parse_ipv4_address(text)) {
        return boost::urls::ipv6_address{*v4}.to_bytes();
    }
    if (auto v6 = boost::urls::parse_ipv6_address(text)) {
        return v6->to_bytes();
    }
    return std::nullopt;
}

bool starts_with(const v6_bytes& bytes, std::initializer_list<unsigned char> prefix)
{
    return std::equal(prefix.begin(), prefix.end(), bytes.begin());
}

// The IPv4 address inside IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96) and NAT64
// (64:ff9b::/96) addresses: connecting to one of these reaches that IPv4 host (the mapped form
// even on a dual-stack socket of this machine). :: and ::1 are IPv6's own, not IPv4-compatible.
std::optional<std::uint32_t> embedded_v4(const v6_bytes& bytes)
{
    constexpr unsigned char z = 0;
    auto v4 = (std::uint32_t{bytes[12]} << 24) | (std::uint32_t{bytes[13]} << 16) |
              (std::uint32_t{bytes[14]} << 8) | std::uint32_t{bytes[15]};
    if (starts_with(bytes, {z, z, z, z, z, z, z, z, z, z, 0xff, 0xff}) ||
        starts_with(bytes, {z, 0x64, 0xff, 0x9b, z, z, z, z, z, z, z, z})) {
        return v4;
    }
    if (starts_with(bytes, {z, z, z, z, z, z, z, z, z, z, z, z}) && v4 > 1) {
        return v4;
    }
    return std::nullopt;
}

struct v4_range {
    std::uint32_t network;
    int prefix;
    address_kind kind;
};

// The IPv4 special-purpose ranges (IANA's registry, RFC 6890) that must not be dialled by default.
// The broadcast address comes before 240/4, which contains it.
constexpr std::array<v4_range, 15> v4_ranges{{
    {0x00000000, 8, address_kind::unspecified},    // 0.0.0.0/8 "this network"
    {0x0a000000, 8, address_kind::private_use},    // 10.0.0.0/8
    {0x64400000, 10, address_kind::shared},        // 100.64.0.0/10
    {0x7f000000, 8, address_kind::loopback},       // 127.0.0.0/8
    {0xa9fe0000, 16, address_kind::link_local},    // 169.254.0.0/16
    {0xac100000, 12, address_kind::private_use},   // 172.16.0.0/12
    {0xc0000000, 24, address_kind::ietf_protocol}, // 192.0.0.0/24
    {0xc0000200, 24, address_kind::documentation}, // 192.0.2.0/24 TEST-NET-1
    {0xc0a80000, 16, address_kind::private_use},   // 192.168.0.0/16
    {0xc6120000, 15, address_kind::benchmarking},  // 198.18.0.0/15
    {0xc6336400, 24, address_kind::documentation}, // 198.51.100.0/24 TEST-NET-2
    {0xcb007100, 24, address_kind::documentation}, // 203.0.113.0/24 TEST-NET-3
    {0xe0000000, 4, address_kind::multicast},      // 224.0.0.0/4
    {0xffffffff, 32, address_kind::broadcast},     // 255.255.255.255
    {0xf0000000, 4, address_kind::reserved},       // 240.0.0.0/4
}};

address_kind classify_v4(std::uint32_t address)
{
    for (const auto& range : v4_ranges) {
        auto mask = range.prefix == 0 ? 0u : ~std::uint32_t{0} << (32 - range.prefix);
        if ((address & mask) == range.network) {
            return range.kind;
        }
    }
    return address_kind::global;
}

address_kind classify_v6(const v6_bytes& bytes)
{
    constexpr v6_bytes loopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (bytes == v6_bytes{}) {
        return address_kind::unspecified;
    }
    if (bytes == loopback) {
        return address_kind::loopback;
    }
    if (auto v4 = embedded_v4(bytes)) {
        return classify_v4(*v4);
    }
    if (bytes[0] == 0xff) {
        return address_kind::multicast; // ff00::/8
    }
    if (bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80) {
        return address_kind::link_local; // fe80::/10
    }
    if (bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0xc0) {
        return address_kind::site_local; // fec0::/10
    }
    if ((bytes[0] & 0xfe) == 0xfc) {
        return address_kind::unique_local; // fc00::/7
    }
    if (starts_with(bytes, {0x20, 0x01, 0x0d, 0xb8})) {
        return address_kind::documentation; // 2001:db8::/32
    }
    return address_kind::global;
}

std::string format_v4(std::uint32_t v4)
{
    return fmt::format("{}.{}.{}.{}", v4 >> 24, (v4 >> 16) & 0xff, (v4 >> 8) & 0xff, v4 & 0xff);
}

} // namespace

address_kind classify_address(std::string_view address)
{
    auto bytes = parse_address(address);
    return bytes ? classify_v6(*bytes) : address_kind::invalid;
}

std::string_view describe(address_kind kind)
{
    switch (kind) {
    case address_kind::global:
        return "a public address";
    case address_kind::invalid:
        return "not an IP address";
    case address_kind::unspecified:
        return "an unspecified ('this network') address";
    case address_kind::loopback:
        return "a loopback address";
    case address_kind::private_use:
        return "a private (RFC 1918) address";
    case address_kind::shared:
        return "a shared (carrier-grade NAT, 100.64.0.0/10) address";
    case address_kind::link_local:
        return "a link-local address (where cloud metadata services live)";
    case address_kind::ietf_protocol:
        return "an IETF protocol assignment (192.0.0.0/24) address";
    case address_kind::documentation:
        return "a documentation address";
    case address_kind::benchmarking:
        return "a benchmarking (198.18.0.0/15) address";
    case address_kind::multicast:
        return "a multicast address";
    case address_kind::reserved:
        return "a reserved (240.0.0.0/4) address";
    case address_kind::broadcast:
        return "the broadcast address";
    case address_kind::unique_local:
        return "a unique local (fc00::/7) address";
    case address_kind::site_local:
        return "a site-local (fec0::/10) address";
    }
    return "an unknown kind of address";
}

address_check check_address(std::string_view address, const network_list& allow_list)
{
    auto bytes = parse_address(address);
    if (!bytes) {
        return {false, fmt::format("{} is not an IP address", protocol::text::quote(address))};
    }
    auto kind = classify_v6(*bytes);
    if (kind == address_kind::global) {
        return {true, {}};
    }
    // network_list treats an empty list as "every address"; here it means "no exceptions".
    auto v4 = embedded_v4(*bytes);
    auto v4_text = v4 ? format_v4(*v4) : std::string{};
    bool is_v4 = address.find(':') == std::string_view::npos;
    if (!allow_list.empty() &&
        (allow_list.contains(address) || (v4 && allow_list.contains(v4_text)))) {
        return {true, {}};
    }
    auto inside = v4 && !is_v4 ? fmt::format(" (IPv4 {} inside IPv6)", v4_text) : std::string{};
    return {false, fmt::format("{} is {}{}; add it to {} to allow it", address, describe(kind),
                               inside, allow_networks_setting)};
}

} // namespace adms::server::webhooks

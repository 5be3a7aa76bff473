#include "server/webhooks/address_policy.hpp"

#include <catch2/catch.hpp>

#include <utility>
#include <vector>

using adms::server::network_list;
using namespace adms::server::webhooks;

namespace {

network_list parse_list(std::string_view text)
{
    auto parsed = network_list::parse(text);
    REQUIRE(parsed.value);
    return *parsed.value;
}

} // namespace

TEST_CASE("address policy: every special-purpose IPv4 range is refused by default",
          "[webhooks][ssrf]")
{
    const std::vector<std::pair<const char*, address_kind>> table{
        {"0.0.0.0", address_kind::unspecified},
        {"0.1.2.3", address_kind::unspecified},
        {"10.0.0.1", address_kind::private_use},
        {"10.255.255.255", address_kind::private_use},
        {"172.16.0.1", address_kind::private_use},
        {"172.31.255.255", address_kind::private_use},
        {"192.168.1.10", address_kind::private_use},
        {"100.64.0.1", address_kind::shared},
        {"100.127.255.255", address_kind::shared},
        {"127.0.0.1", address_kind::loopback},
        {"127.255.255.254", address_kind::loopback},
        {"169.254.169.254", address_kind::link_local},
        {"192.0.0.8", address_kind::ietf_protocol},
        {"192.0.2.1", address_kind::documentation},
        {"198.51.100.7", address_kind::documentation},
        {"203.0.113.9", address_kind::documentation},
        {"198.18.0.1", address_kind::benchmarking},
        {"198.19.255.255", address_kind::benchmarking},
        {"224.0.0.1", address_kind::multicast},
        {"239.255.255.250", address_kind::multicast},
        {"240.0.0.1", address_kind::reserved},
        {"254.1.2.3", address_kind::reserved},
        {"255.255.255.255", address_kind::broadcast},
    };
    network_list none;
    for (const auto& [address, kind] : table) {
        INFO(address);
        CHECK(classify_address(address) == kind);
        auto check = check_address(address, none);
        CHECK_FALSE(check.allowed);
        CHECK(check.error == std::string{address} + " is " + std::string{describe(kind)} +
                                 "; add it to webhook_allow_networks to allow it");
    }
}

TEST_CASE("address policy: public IPv4 addresses next to the refused ranges are allowed",
          "[webhooks][ssrf]")
{
    network_list none;
    for (auto address : {"8.8.8.8",     "1.1.1.1",         "1.0.0.0",     "9.255.255.255",
                         "11.0.0.1",    "172.15.255.255",  "172.32.0.0",  "192.167.255.255",
                         "192.169.0.1", "100.63.255.255",  "100.128.0.0", "126.255.255.255",
                         "128.0.0.0",   "169.253.255.255", "169.255.0.0", "192.0.1.1",
                         "192.0.3.0",   "198.17.255.255",  "198.20.0.0",  "198.51.99.255",
                         "203.0.114.0", "223.255.255.255"}) {
        INFO(address);
        CHECK(classify_address(address) == address_kind::global);
        auto check = check_address(address, none);
        CHECK(check.allowed);
        CHECK(check.error.empty());
    }
}

TEST_CASE("address policy: IPv6 special ranges, and IPv4 inside IPv6, are refused by default",
          "[webhooks][ssrf]")
{
    const std::vector<std::pair<const char*, address_kind>> table{
        {"::", address_kind::unspecified},
        {"::1", address_kind::loopback},
        {"fe80::1", address_kind::link_local},
        {"febf:ffff::1", address_kind::link_local},
        {"fec0::1", address_kind::site_local},
        {"fc00::1", address_kind::unique_local},
        {"fd12:3456:789a::1", address_kind::unique_local},
        {"ff02::1", address_kind::multicast},
        {"ff05::1:3", address_kind::multicast},
        {"2001:db8::1", address_kind::documentation},
        {"2001:db8:ffff::1", address_kind::documentation},
        // IPv4-mapped: a dual-stack socket connects these to the IPv4 host.
        {"::ffff:127.0.0.1", address_kind::loopback},
        {"::ffff:7f00:1", address_kind::loopback},
        {"::FFFF:169.254.169.254", address_kind::link_local},
        {"::ffff:10.1.2.3", address_kind::private_use},
        {"::ffff:0.0.0.0", address_kind::unspecified},
        // IPv4-compatible (deprecated) and NAT64.
        {"::127.0.0.1", address_kind::loopback},
        {"::10.0.0.1", address_kind::private_use},
        {"64:ff9b::127.0.0.1", address_kind::loopback},
        {"64:ff9b::a9fe:a9fe", address_kind::link_local},
        {"64:ff9b::192.168.0.1", address_kind::private_use},
    };
    network_list none;
    for (const auto& [address, kind] : table) {
        INFO(address);
        CHECK(classify_address(address) == kind);
        CHECK_FALSE(check_address(address, none).allowed);
    }
}

TEST_CASE("address policy: public IPv6 addresses and public IPv4 inside IPv6 are allowed",
          "[webhooks][ssrf]")
{
    network_list none;
    for (auto address :
         {"2606:4700:4700::1111", "2001:4860:4860::8888", "2001:db9::1", "::ffff:8.8.8.8",
          "64:ff9b::8.8.8.8", "2a00:1450:4001::1", "2400:cb00::1"}) {
        INFO(address);
        CHECK(classify_address(address) == address_kind::global);
        CHECK(check_address(address, none).allowed);
    }
}

TEST_CASE("address policy: the refusal names the address, why, and the setting to change",
          "[webhooks][ssrf]")
{
    network_list none;
    CHECK(check_address("127.0.0.1", none).error ==
          "127.0.0.1 is a loopback address; add it to webhook_allow_networks to allow it");
    CHECK(check_address("169.254.169.254", none).error ==
          "169.254.169.254 is a link-local address (where cloud metadata services live); add it "
          "to webhook_allow_networks to allow it");
    CHECK(check_address("::ffff:127.0.0.1", none).error ==
          "::ffff:127.0.0.1 is a loopback address (IPv4 127.0.0.1 inside IPv6); add it to "
          "webhook_allow_networks to allow it");
    CHECK(check_address("64:ff9b::a00:1", none).error ==
          "64:ff9b::a00:1 is a private (RFC 1918) address (IPv4 10.0.0.1 inside IPv6); add it to "
          "webhook_allow_networks to allow it");
    CHECK(check_address("::1", none).error ==
          "::1 is a loopback address; add it to webhook_allow_networks to allow it");
}

TEST_CASE("address policy: text that is not an IP address is refused, never allowed",
          "[webhooks][ssrf]")
{
    for (auto text : {"", "localhost", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.256",
                      "fe80::1%eth0", "::ffff:1.2.3.256", "[::1]", " 8.8.8.8", "8.8.8.8 "}) {
        INFO(text);
        CHECK(classify_address(text) == address_kind::invalid);
        auto check = check_address(text, parse_list("0.0.0.0/0,::/0"));
        CHECK_FALSE(check.allowed);
        CHECK(check.error.ends_with("is not an IP address"));
    }
}

TEST_CASE("address policy: webhook_allow_networks admits refused addresses in its networks only",
          "[webhooks][ssrf]")
{
    auto allow = parse_list("127.0.0.0/8, 192.168.1.0/24, fd00::/8, 169.254.169.254");
    for (auto address : {"127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1", "::127.0.0.1",
                         "64:ff9b::7f00:1", "192.168.1.5", "::ffff:192.168.1.200", "fd00::1",
                         "fdff:ffff::1", "169.254.169.254", "8.8.8.8"}) {
        INFO(address);
        CHECK(check_address(address, allow).allowed);
    }
    for (auto address : {"192.168.2.5", "10.0.0.1", "fc00::1", "::1", "::", "169.254.169.253",
                         "fe80::1", "::ffff:10.0.0.1"}) {
        INFO(address);
        CHECK_FALSE(check_address(address, allow).allowed);
    }
}

TEST_CASE("address policy: an empty allow-list admits nothing, unlike an empty network_list",
          "[webhooks][ssrf]")
{
    auto empty = parse_list("");
    REQUIRE(empty.contains("127.0.0.1")); // network_list: empty means "no restriction"
    CHECK_FALSE(check_address("127.0.0.1", empty).allowed);
    CHECK_FALSE(check_address("10.0.0.1", empty).allowed);
    CHECK(check_address("8.8.8.8", empty).allowed);
}

TEST_CASE("address policy: :: and ::1 are IPv6's own, not IPv4-compatible 0.0.0.0 and 0.0.0.1",
          "[webhooks][ssrf]")
{
    auto allow = parse_list("0.0.0.0/8");
    CHECK(check_address("0.0.0.1", allow).allowed);
    CHECK(check_address("::0.0.0.2", allow).allowed);
    CHECK_FALSE(check_address("::1", allow).allowed);
    CHECK_FALSE(check_address("::", allow).allowed);
}

TEST_CASE("address policy: a bad webhook_allow_networks entry is named, short and printable",
          "[webhooks][ssrf]")
{
    CHECK(network_list::parse("127.0.0.0/8, localhost").error ==
          "'localhost' is not an IP address or network");
    // Found by fuzz_webhook_reply: the entry used to be copied into the error as it was.
    CHECK(network_list::parse("12\xb1 20").error == "'12? 20' is not an IP address or network");
    auto long_entry = network_list::parse(std::string(1'000'000, '7'));
    CHECK(long_entry.error == "'" + std::string(64, '7') + "...' is not an IP address or network");
}

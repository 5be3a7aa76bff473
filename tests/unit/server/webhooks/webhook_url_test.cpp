#include "server/webhooks/webhook_url.hpp"

#include <catch2/catch.hpp>

#include <string>

using adms::server::network_list;
using namespace adms::server::webhooks;

namespace {

network_list parse_list(std::string_view text)
{
    auto parsed = network_list::parse(text);
    REQUIRE(parsed.value);
    return *parsed.value;
}

webhook_target accepted(std::string_view url, const network_list& allow = {})
{
    INFO(url);
    auto checked = check_webhook_url(url, allow);
    INFO(checked.error);
    REQUIRE(checked.value);
    CHECK(checked.error.empty());
    return *checked.value;
}

std::string refused(std::string_view url, const network_list& allow = {})
{
    INFO(url);
    auto checked = check_webhook_url(url, allow);
    CHECK_FALSE(checked.value);
    CHECK_FALSE(checked.error.empty());
    return checked.error;
}

} // namespace

TEST_CASE("webhook URL: an https URL with a name, a path and a query", "[webhooks][url]")
{
    auto target = accepted("https://hr.example.com/hooks/admsd?tenant=7&x=%20y");
    CHECK(target.scheme == "https");
    CHECK(target.host == "hr.example.com");
    CHECK(target.port == 443);
    CHECK(target.target == "/hooks/admsd?tenant=7&x=%20y");
    CHECK(target.is_tls);
    CHECK_FALSE(target.host_is_address);
}

TEST_CASE("webhook URL: scheme and host are case-insensitive, and ports and paths have defaults",
          "[webhooks][url]")
{
    auto target = accepted("HTTP://HR.Example.COM:8080");
    CHECK(target.scheme == "http");
    CHECK(target.host == "hr.example.com");
    CHECK(target.port == 8080);
    CHECK(target.target == "/");
    CHECK_FALSE(target.is_tls);
    CHECK(accepted("http://example.com:/x").port == 80);
    CHECK(accepted("https://example.com:08443/").port == 8443);
    CHECK(accepted("http://example.com?q=1").target == "/?q=1");
    CHECK(accepted("http://internal_host.corp./").host == "internal_host.corp.");
    // A name is checked when it is dialled, against the addresses it resolves to.
    CHECK(accepted("http://localhost:8080/hook").host == "localhost");
}

TEST_CASE("webhook URL: literal public addresses, IPv6 without its brackets", "[webhooks][url]")
{
    auto v4 = accepted("http://8.8.8.8/in");
    CHECK(v4.host == "8.8.8.8");
    CHECK(v4.host_is_address);
    auto v6 = accepted("https://[2606:4700:4700::1111]:8443/in");
    CHECK(v6.host == "2606:4700:4700::1111");
    CHECK(v6.port == 8443);
    CHECK(v6.host_is_address);
    CHECK(accepted("http://[2606:4700:4700:0:0:0:0:1111]/").host == "2606:4700:4700::1111");
}

TEST_CASE("webhook URL: literal addresses the SSRF rules refuse are refused at once",
          "[webhooks][url][ssrf]")
{
    CHECK(refused("http://127.0.0.1:8080/hook") ==
          "127.0.0.1 is a loopback address; add it to webhook_allow_networks to allow it");
    CHECK(refused("http://[::1]/") ==
          "::1 is a loopback address; add it to webhook_allow_networks to allow it");
    CHECK(refused("http://[::ffff:127.0.0.1]/").starts_with("::ffff:127.0.0.1 is a loopback"));
    CHECK(refused("http://169.254.169.254/latest/meta-data/")
              .starts_with("169.254.169.254 is a link-local address"));
    CHECK(refused("http://0.0.0.0/").starts_with("0.0.0.0 is an unspecified"));
    CHECK(refused("https://192.168.1.20/").starts_with("192.168.1.20 is a private"));
    CHECK(refused("http://[fe80::1]/").starts_with("fe80::1 is a link-local"));
    CHECK(refused("http://[64:ff9b::7f00:1]/").starts_with("64:ff9b::7f00:1 is a loopback"));
}

TEST_CASE("webhook URL: webhook_allow_networks admits literal addresses", "[webhooks][url][ssrf]")
{
    auto allow = parse_list("127.0.0.0/8,::1,192.168.1.0/24");
    CHECK(accepted("http://127.0.0.1:8080/hook", allow).host == "127.0.0.1");
    CHECK(accepted("http://[::1]:8080/", allow).host == "::1");
    CHECK(accepted("http://[::ffff:127.0.0.1]/", allow).host == "::ffff:127.0.0.1");
    CHECK(accepted("https://192.168.1.20/", allow).port == 443);
    CHECK(refused("http://192.168.2.20/", allow).starts_with("192.168.2.20 is a private"));
}

TEST_CASE("webhook URL: numeric hosts in forms other than a.b.c.d are refused, allow-list or not",
          "[webhooks][url][ssrf]")
{
    auto allow = parse_list("0.0.0.0/0");
    for (auto url : {"http://2130706433/", "http://0x7f.1/", "http://0X7F000001/", "http://127.1/",
                     "http://0177.0.0.1/", "http://127.0.0.01/", "http://1.2.3.4.5/",
                     "http://127.0.1/", "http://0x/", "http://example.0x1f/", "http://a.123./"}) {
        INFO(url);
        auto error = refused(url, allow);
        CHECK(error.find("is a number in a form other than a.b.c.d") != std::string::npos);
    }
    CHECK(refused("http://2130706433/") ==
          "the host '2130706433' is a number in a form other than a.b.c.d, which resolvers read "
          "as an IPv4 address; write the address as four decimal numbers");
    // Digits inside a name, or a hex-looking last label that is not a number, are names.
    CHECK(accepted("http://1password.com/").host == "1password.com");
    CHECK(accepted("http://a.0xg/").host == "a.0xg");
    CHECK(accepted("http://123.example/").host == "123.example");
}

TEST_CASE("webhook URL: a name that begins with an IPv4 address is refused, not misread as one",
          "[webhooks][url][ssrf]")
{
    // Boost.URL 1.81 parses these as the IPv4 host and a path without its leading '/'
    // (boostorg/url#755): dialling that address would not be what the URL names.
    auto allow = parse_list("0.0.0.0/0");
    CHECK(refused("http://127.0.0.1.nip.io:8080/hook", allow) ==
          "the host '127.0.0.1.nip.io' begins with an IPv4 address, which admsd's URL parser "
          "(Boost.URL 1.81) misreads; use a name that does not begin with four numbers");
    CHECK(refused("http://8.8.8.8.example/", allow)
              .starts_with("the host '8.8.8.8.example' "
                           "begins with an IPv4 address"));
    CHECK(refused("http://1.2.3.4-a.com/", allow).starts_with("the host '1.2.3.4-a.com' begins"));
    CHECK(refused("http://1.2.3.4.5/", allow) ==
          "the host '1.2.3.4.5' is a number in a form other than a.b.c.d, which resolvers read as "
          "an IPv4 address; write the address as four decimal numbers");
    CHECK(refused("http://[2606:4700::1111]x/") ==
          "'http://[2606:4700::1111]x/' is not a valid absolute URL (text after the host that is "
          "neither a port nor a path)");
    // Names with a number or two in front are names.
    CHECK(accepted("http://1.2.3.example/").host == "1.2.3.example");
    CHECK(accepted("http://a.1.2.3.4.example/").host == "a.1.2.3.4.example");
}

TEST_CASE("webhook URL: what is refused and the reason given", "[webhooks][url]")
{
    CHECK(refused("ftp://example.com/") == "the scheme 'ftp' is not allowed: use http or https");
    CHECK(refused("file:///etc/passwd") == "the scheme 'file' is not allowed: use http or https");
    CHECK(refused("gopher://example.com/").starts_with("the scheme 'gopher'"));
    CHECK(refused("http:/no-authority") == "the URL has no host");
    CHECK(refused("http:///path") == "the URL has no host");
    CHECK(refused("http://user:secret@example.com/").starts_with("the URL has user information"));
    CHECK(refused("http://@example.com/").starts_with("the URL has user information"));
    CHECK(refused("http://example.com/#top") ==
          "the URL has a fragment (#...), which is never sent: remove it");
    CHECK(refused("http://example.com:0/") == "the port '0' is not a number from 1 to 65535");
    CHECK(refused("http://example.com:65536/") ==
          "the port '65536' is not a number from 1 to 65535");
    CHECK(refused("http://example.com:99999999999999999999/").starts_with("the port"));
    CHECK(refused("http://exa%00mple.com/") == "the host 'exa?mple.com' is not a valid DNS name");
    CHECK(refused("http://exa%20mple.com/").find("not a valid DNS name") != std::string::npos);
    CHECK(refused("http://a..b/").find("not a valid DNS name") != std::string::npos);
    CHECK(refused("http://" + std::string(64, 'a') + ".com/").find("not a valid DNS name") !=
          std::string::npos);
    CHECK(refused("http://[v1.fe]/").starts_with("the URL's host is an IPvFuture literal"));
    CHECK(refused("example.com/hook").find("is not a valid absolute URL") != std::string::npos);
    CHECK(refused("http://exa mple.com/").find("is not a valid absolute URL") != std::string::npos);
    CHECK(refused("").find("is not a valid absolute URL") != std::string::npos);
    CHECK(refused("http://example.com/" + std::string(2100, 'a')) ==
          "the URL is longer than 2048 bytes");
}

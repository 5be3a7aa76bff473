#include "server/webhooks/webhook_url.hpp"

#include "protocol/text.hpp"
#include "server/webhooks/address_policy.hpp"

#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace adms::server::webhooks {
namespace {

namespace urls = boost::urls;
using protocol::text::quote;

bool is_hex_digits(std::string_view text)
{
    return std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    });
}

// The WHATWG URL standard's "ends in a number" test: a host whose last label is decimal digits or
// 0x-hex is parsed as IPv4 by browsers, and inet_aton()/getaddrinfo() read "127.1", "0x7f.1",
// "2130706433" and "0177.0.0.1" as 127.0.0.1. No real top-level domain is numeric.
bool ends_in_a_number(std::string_view host)
{
    if (host.ends_with('.')) {
        host.remove_suffix(1);
    }
    auto dot = host.rfind('.');
    auto last = dot == std::string_view::npos ? host : host.substr(dot + 1);
    if (protocol::text::is_all_digits(last)) {
        return true;
    }
    return (last.starts_with("0x") || last.starts_with("0X")) && is_hex_digits(last.substr(2));
}

// A DNS name: labels of letters, digits, '-' and '_' (seen in real internal names) of 1 to 63
// bytes, 253 at most in all, an optional final '.'. Anything else (a percent-encoded NUL, a space,
// UTF-8) would reach getaddrinfo() and the TLS SNI field: refused.
bool is_dns_name(std::string_view host)
{
    if (host.ends_with('.')) {
        host.remove_suffix(1);
    }
    if (host.empty() || host.size() > 253) {
        return false;
    }
    std::size_t label = 0;
    for (char c : host) {
        if (c == '.') {
            if (label == 0) {
                return false;
            }
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok || ++label > 63) {
            return false;
        }
    }
    return label > 0;
}

std::string numeric_host_error(std::string_view host)
{
    return fmt::format("the host {} is a number in a form other than a.b.c.d, which resolvers "
                       "read as an IPv4 address; write the address as four decimal numbers",
                       quote(host, 80));
}

// After an authority, RFC 3986 allows only an empty path or one starting with '/'. Boost.URL 1.81
// reads "http://127.0.0.1.example/" as the IPv4 host 127.0.0.1 and the path ".example/"
// (boostorg/url#755), so any other path means the host was cut short: why the URL is refused.
std::string cut_host_error(const urls::url_view& url, std::string_view text)
{
    auto path = std::string_view{url.encoded_path()};
    auto host =
        std::string{url.encoded_host()} + std::string{path.substr(0, path.find_first_of("/:"))};
    if (url.host_type() != urls::host_type::ipv4) {
        return fmt::format("{} is not a valid absolute URL (text after the host that is neither a "
                           "port nor a path)",
                           quote(text, 80));
    }
    if (ends_in_a_number(host)) {
        return numeric_host_error(host);
    }
    return fmt::format("the host {} begins with an IPv4 address, which admsd's URL parser "
                       "(Boost.URL 1.81) misreads; use a name that does not begin with four "
                       "numbers",
                       quote(host, 80));
}

// The host of a parsed URL into `target`, or why it cannot be used.
std::string take_host(const urls::url_view& url, const network_list& allow_list,
                      webhook_target& target)
{
    switch (url.host_type()) {
    case urls::host_type::ipv4:
        target.host = url.host_ipv4_address().to_string();
        target.host_is_address = true;
        break;
    case urls::host_type::ipv6:
        target.host = url.host_ipv6_address().to_string();
        target.host_is_address = true;
        break;
    case urls::host_type::name: {
        auto name = url.host_name();
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (name.empty()) {
            return "the URL has no host";
        }
        if (!is_dns_name(name)) {
            return fmt::format("the host {} is not a valid DNS name", quote(name, 80));
        }
        if (ends_in_a_number(name)) {
            return numeric_host_error(name);
        }
        target.host = std::move(name);
        return {};
    }
    default:
        return "the URL's host is an IPvFuture literal, which cannot be dialled";
    }
    auto check = check_address(target.host, allow_list);
    return check.allowed ? std::string{} : std::move(check.error);
}

// The port of a parsed URL into `target`, or why it cannot be used.
std::string take_port(const urls::url_view& url, webhook_target& target)
{
    target.port = target.is_tls ? 443 : 80;
    if (!url.has_port() || url.port().empty()) {
        return {};
    }
    auto port = protocol::text::parse_integer<std::uint32_t>(url.port());
    if (!port || *port == 0 || *port > 65535) {
        return fmt::format("the port {} is not a number from 1 to 65535", quote(url.port()));
    }
    target.port = static_cast<std::uint16_t>(*port);
    return {};
}

} // namespace

url_check check_webhook_url(std::string_view text, const network_list& allow_list)
{
    if (text.size() > max_url_size) {
        return {std::nullopt, fmt::format("the URL is longer than {} bytes", max_url_size)};
    }
    auto parsed = urls::parse_uri(text);
    if (!parsed) {
        return {std::nullopt, fmt::format("{} is not a valid absolute URL ({})", quote(text, 80),
                                          parsed.error().message())};
    }
    const auto& url = *parsed;
    webhook_target target;
    if (url.scheme_id() == urls::scheme::https) {
        target.is_tls = true;
    } else if (url.scheme_id() != urls::scheme::http) {
        return {std::nullopt, fmt::format("the scheme {} is not allowed: use http or https",
                                          quote(url.scheme()))};
    }
    target.scheme = target.is_tls ? "https" : "http";
    if (!url.has_authority()) {
        return {std::nullopt, "the URL has no host"};
    }
    if (url.has_userinfo()) {
        return {std::nullopt, "the URL has user information (user:password@): put credentials in "
                              "a header instead"};
    }
    if (url.has_fragment()) {
        return {std::nullopt, "the URL has a fragment (#...), which is never sent: remove it"};
    }
    if (auto path = url.encoded_path(); !path.empty() && path.front() != '/') {
        return {std::nullopt, cut_host_error(url, text)};
    }
    if (auto error = take_host(url, allow_list, target); !error.empty()) {
        return {std::nullopt, std::move(error)};
    }
    if (auto error = take_port(url, target); !error.empty()) {
        return {std::nullopt, std::move(error)};
    }
    target.target = url.encoded_target();
    if (target.target.empty() || target.target.front() != '/') {
        target.target.insert(0, "/");
    }
    return {std::move(target), {}};
}

} // namespace adms::server::webhooks

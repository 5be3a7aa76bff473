#include "server/config/mqtt_url.hpp"

#include "server/observability/log_format.hpp"

#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace adms::server {
namespace {

std::string lower(std::string_view text)
{
    std::string out{text};
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

} // namespace

mqtt_url_parse parse_mqtt_url(std::string_view url)
{
    constexpr std::string_view expected =
        "expected mqtt://[user[:password]@]host[:port] or mqtts://…";
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) {
        return {std::nullopt, std::string{expected}};
    }
    const auto& u = *parsed;
    auto scheme = lower(u.scheme());
    if (scheme != "mqtt" && scheme != "mqtts") {
        return {std::nullopt,
                fmt::format("unsupported scheme '{}': {}", escape_for_log(scheme), expected)};
    }
    mqtt_endpoint out;
    out.tls = scheme == "mqtts";
    out.port = out.tls ? 8883 : 1883;
    if (u.host_type() == boost::urls::host_type::ipv6) {
        out.host = u.host_ipv6_address().to_string();
    } else {
        out.host = u.host();
    }
    if (out.host.empty()) {
        return {std::nullopt, std::string{"no host: "} + std::string{expected}};
    }
    if (u.has_port()) {
        auto port = u.port_number();
        if (port == 0) {
            return {std::nullopt, "expected a port from 1 to 65535"};
        }
        out.port = port;
    }
    if (!(u.path().empty() || u.path() == "/") || u.has_query() || u.has_fragment()) {
        return {std::nullopt, std::string{"no path, query or fragment: "} + std::string{expected}};
    }
    if (u.has_userinfo()) {
        out.username = u.user();
        out.password = u.password();
    }
    return {std::move(out), {}};
}

} // namespace adms::server

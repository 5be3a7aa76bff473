#include "server/config/mqtt_url.hpp"

#include <catch2/catch.hpp>

using adms::server::mqtt_endpoint;
using adms::server::parse_mqtt_url;

namespace {

mqtt_endpoint endpoint(std::string host, unsigned short port, bool tls, std::string user = {},
                       std::string password = {})
{
    return {std::move(host), port, tls, std::move(user), std::move(password)};
}

} // namespace

TEST_CASE("MQTT URLs give host, port, TLS and percent-decoded credentials", "[mqtt]")
{
    CHECK(parse_mqtt_url("mqtt://127.0.0.1").value == endpoint("127.0.0.1", 1883, false));
    CHECK(parse_mqtt_url("mqtt://broker.local:1884/").value ==
          endpoint("broker.local", 1884, false));
    CHECK(parse_mqtt_url("MQTTS://broker").value == endpoint("broker", 8883, true));
    CHECK(parse_mqtt_url("mqtts://[::1]:8884").value == endpoint("::1", 8884, true));
    CHECK(parse_mqtt_url("mqtt://dev%40site:p%3Ass@host").value ==
          endpoint("host", 1883, false, "dev@site", "p:ss"));
    CHECK(parse_mqtt_url("mqtt://user@host").value == endpoint("host", 1883, false, "user"));
}

TEST_CASE("Bad MQTT URLs are refused with a reason and no password", "[mqtt]")
{
    for (const char* url : {"", "127.0.0.1:1883", "tcp://host", "mqtt://", "mqtt://:1883",
                            "mqtt://host:0", "mqtt://host:65536", "mqtt://host/topic",
                            "mqtt://host?x", "mqtt://host#f", "mqtt://us:secret@host/x"}) {
        INFO(url);
        auto parsed = parse_mqtt_url(url);
        CHECK_FALSE(parsed.value);
        CHECK_FALSE(parsed.error.empty());
        CHECK(parsed.error.find("secret") == std::string::npos);
    }
    CHECK(parse_mqtt_url("tcp://host").error ==
          "unsupported scheme 'tcp': expected mqtt://[user[:password]@]host[:port] or mqtts://…");
}

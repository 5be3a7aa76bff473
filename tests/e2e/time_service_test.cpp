// End-to-end: the tylink time service over real HTTP against the real server and the real zone
// database.
#include "tests/e2e/device_client.hpp"
#include "tests/e2e/test_server.hpp"
#include "tz/zone.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace std::chrono;
using namespace adms;
using adms::test::device_get;
using adms::test::http_reply;
using adms::test::round_trip;
using adms::test::running_server;
using adms::test::temp_dir;
using adms::test::test_token;
namespace json = boost::json;

namespace {

http_reply post(unsigned short port, const std::string& target, const std::string& body)
{
    return round_trip(port, fmt::format("POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                        "Content-Type: application/json\r\nContent-Length: {}\r\n"
                                        "Connection: close\r\n\r\n{}",
                                        target, body.size(), body));
}

// A time request to the device-facing port; the reply's JSON object.
json::object ask(unsigned short port, const std::string& device, const std::string& body,
                 int status = 200)
{
    auto reply = post(port, "/tylink/" + device + "/ext/time/request", body);
    INFO(reply.raw);
    REQUIRE(reply.status == status);
    CHECK(reply.headers["content-type"] == "application/json");
    auto value = json::parse(reply.body);
    REQUIRE(value.is_object());
    return value.as_object();
}

std::int64_t now_ms()
{
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string dst_body(const std::string& zone)
{
    auto data = zone.empty() ? std::string{R"({"bizType":"DST"})"}
                             : fmt::format(R"({{"bizType":"DST","timezoneId":"{}"}})", zone);
    return fmt::format(R"({{"msgId":"d1","time":{},"data":{}}})", now_ms(), data);
}

// What the zone database says for the year ahead, flattened as the service sends it.
std::vector<std::int64_t> expected_intervals(const std::string& zone)
{
    auto found = tz::locate_zone(zone);
    REQUIRE(found);
    auto now = floor<seconds>(system_clock::now());
    std::vector<std::int64_t> out;
    for (const auto& i : found.value->dst_intervals(now, now + days{365})) {
        out.push_back(i.begin.time_since_epoch().count());
        out.push_back(i.end.time_since_epoch().count());
    }
    return out;
}

std::vector<std::int64_t> intervals_of(const json::object& reply)
{
    std::vector<std::int64_t> out;
    for (const auto& v : reply.at("data").at("dstIntervals").as_array()) {
        out.push_back(v.as_int64());
    }
    return out;
}

server::settings zone_settings(const std::string& zone)
{
    server::settings s;
    s.time_zone = zone;
    return s;
}

} // namespace

TEST_CASE("NTP over HTTP returns dst, srt and sst within the request's bounds",
          "[e2e][time_service]")
{
    temp_dir dir;
    running_server server{zone_settings("Asia/Riyadh"), dir.path};
    auto before = now_ms();
    auto t1 = before;
    auto reply = ask(server.port, "6c1234567890abcdefgh",
                     fmt::format(R"({{"msgId":"45lkj3551234001","time":{},)"
                                 R"("data":{{"bizType":"NTP","dst":{}}}}})",
                                 t1, t1));
    auto after = now_ms();
    CHECK(reply.at("msgId") == "45lkj3551234001");
    CHECK(reply.at("code") == 0);
    const auto& data = reply.at("data").as_object();
    CHECK(data.at("bizType") == "NTP");
    CHECK(data.at("dst") == t1);
    auto srt = data.at("srt").as_int64();
    auto sst = data.at("sst").as_int64();
    CHECK(before <= srt);
    CHECK(srt <= sst);
    CHECK(sst <= after);
    CHECK(reply.at("time") == sst);
    CHECK(data.size() == 4);

    // Without dst: sst alone, in seconds-stamped requests too.
    auto plain = ask(
        server.port, "dev-2",
        fmt::format(R"({{"msgId":"x","time":{},"data":{{"bizType":"NTP"}}}})", now_ms() / 1000));
    CHECK(plain.at("code") == 0);
    CHECK(plain.at("data").as_object().size() == 2);
    CHECK(plain.at("data").at("sst").as_int64() >= before);
    CHECK(plain.at("data").at("sst").as_int64() <= now_ms());
}

TEST_CASE("DST over HTTP for a named zone, a configured device zone, an ADMS device and the "
          "server zone",
          "[e2e][time_service]")
{
    temp_dir dir;
    auto s = zone_settings("Asia/Riyadh");
    s.devices["tuya-plug-1"].time_zone = "Australia/Sydney";
    s.devices["RKQ4243400358"].alias = "principal";
    s.devices["RKQ4243400358"].time_zone = "Asia/Kathmandu";
    running_server server{s, dir.path};

    // A zone by name, in any case.
    auto ny = ask(server.port, "dev1", dst_body("america/new_york"));
    CHECK(ny.at("msgId") == "d1");
    CHECK(ny.at("code") == 0);
    CHECK(ny.at("data").at("bizType") == "DST");
    CHECK(ny.at("data").at("stdTimeZone") == "-05:00");
    auto ny_intervals = intervals_of(ny);
    CHECK(ny_intervals == expected_intervals("America/New_York"));
    REQUIRE(ny_intervals.size() >= 2);
    CHECK(ny_intervals.size() % 2 == 0);
    CHECK(ny_intervals.back() > now_ms() / 1000);

    auto shanghai = ask(server.port, "dev1", dst_body("asia/shanghai"));
    CHECK(shanghai.at("data").at("stdTimeZone") == "+08:00");
    CHECK(intervals_of(shanghai).empty());

    // No timezoneId: the device's [devices.<id>] zone (not an ADMS device).
    auto sydney = ask(server.port, "tuya-plug-1", dst_body(""));
    CHECK(sydney.at("data").at("stdTimeZone") == "+10:00");
    CHECK(intervals_of(sydney) == expected_intervals("Australia/Sydney"));

    // An ADMS device by its alias, once it has handshaken: the zone in force for it.
    REQUIRE(device_get(server.port, "/iclock/cdata?SN=RKQ4243400358&options=all&pushver=2.4.1")
                .status == 200);
    auto kathmandu = ask(server.port, "principal", dst_body(""));
    CHECK(kathmandu.at("data").at("stdTimeZone") == "+05:45");

    // Anyone else: the server's zone.
    auto riyadh = ask(server.port, "unknown-device", dst_body(""));
    CHECK(riyadh.at("data").at("stdTimeZone") == "+03:00");
    CHECK(intervals_of(riyadh).empty());
}

TEST_CASE("Bad time requests over HTTP answer code 1001 with the reason", "[e2e][time_service]")
{
    temp_dir dir;
    running_server server{zone_settings("UTC"), dir.path};
    auto refused = [&](const std::string& body, const std::string& device = "dev1") {
        auto reply = ask(server.port, device, body);
        CHECK(reply.at("code") == 1001);
        CHECK_FALSE(reply.contains("data"));
        CHECK(reply.at("time").as_int64() <= now_ms());
        return std::pair{std::string{reply.at("msgId").as_string()},
                         std::string{reply.at("msg").as_string()}};
    };
    CHECK(refused("{\"msgId\":").first.empty());
    CHECK(refused("{\"msgId\":").second.starts_with("malformed JSON at offset"));
    CHECK(refused(R"({"msgId":"m1","time":1626197189,"data":{"bizType":"OTA"}})") ==
          std::pair{std::string{"m1"}, std::string{R"(data.bizType must be "NTP" or "DST")"}});
    CHECK(refused(dst_body("Mars/Base")) ==
          std::pair{std::string{"d1"}, std::string{"unknown time zone 'Mars/Base'"}});
    CHECK(refused(fmt::format(R"({{"msgId":"{}","time":1626197189,"data":{{"bizType":"NTP"}}}})",
                              std::string(33, 'x'))) ==
          std::pair{std::string{}, std::string{"msgId must be 1 to 32 characters"}});
    CHECK(refused(R"({"msgId":"m2","time":162619718,"data":{"bizType":"NTP"}})") ==
          std::pair{std::string{"m2"},
                    std::string{"time must be Unix seconds (10 digits) or milliseconds (13 "
                                "digits)"}});
    CHECK(refused(R"({"msgId":"m3","time":1626197189,"data":{"bizType":"NTP"}})", "bad+id")
              .second.starts_with("invalid deviceId"));

    // Over 4 KiB: 413, still with a 1001 body.
    auto big = ask(server.port, "dev1", std::string(5000, ' '), 413);
    CHECK(big.at("code") == 1001);
    CHECK(big.at("msg") == "request larger than 4096 bytes");

    // Only POST; only the documented path.
    auto get = round_trip(server.port, "GET /tylink/dev1/ext/time/request HTTP/1.1\r\n"
                                       "Host: x\r\nConnection: close\r\n\r\n");
    CHECK(get.status == 405);
    CHECK(get.headers["allow"] == "POST");
    CHECK(post(server.port, "/tylink/dev1/ext/time/other", "{}").status == 404);

    // Counted in /metrics by transport, bizType and code.
    auto metrics =
        round_trip(server.port, fmt::format("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: "
                                            "Bearer {}\r\nConnection: close\r\n\r\n",
                                            test_token));
    CHECK_THAT(metrics.body, Catch::Contains(R"(admsd_time_service_requests_total{biz_type="DST",)"
                                             R"(code="1001",transport="http"} 1)"));
    CHECK_THAT(metrics.body, Catch::Contains(R"(admsd_time_service_requests_total{biz_type=)"
                                             R"("unknown",code="1001",transport="http"} 4)"));
    CHECK_THAT(metrics.body, Catch::Contains(R"(admsd_time_service_requests_total{biz_type="NTP",)"
                                             R"(code="1001",transport="http"} 3)"));
    CHECK_THAT(metrics.body, Catch::Contains(R"(admsd_http_requests_total{endpoint="/tylink/)"
                                             R"({id}/ext/time/request",status="413"} 1)"));
}

TEST_CASE("The time service is on the device port only, behind device_networks",
          "[e2e][time_service]")
{
    temp_dir dir;
    auto s = zone_settings("UTC");
    s.admin_listen = "127.0.0.1:0";
    running_server server{s, dir.path};
    auto body = R"({"msgId":"a","time":1626197189,"data":{"bizType":"NTP"}})";
    CHECK(post(server.port, "/tylink/dev1/ext/time/request", body).status == 200);
    CHECK(post(server.admin_port, "/tylink/dev1/ext/time/request", body).status == 404);

    temp_dir other_dir;
    auto restricted = zone_settings("UTC");
    restricted.device_networks = "10.0.0.0/8";
    running_server fenced{restricted, other_dir.path};
    CHECK(post(fenced.port, "/tylink/dev1/ext/time/request", body).status == 403);
}

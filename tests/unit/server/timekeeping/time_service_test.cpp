// The tylink time service with the real zone database and real metrics; only the clock is fixed.
#include "server/timekeeping/time_service.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono;
using adms::server::http_request;
using adms::server::metrics;
using adms::server::network_list;
using adms::server::time_request_max_bytes;
using adms::server::time_service;
using adms::server::time_transport;
namespace json = boost::json;

namespace {

system_clock::time_point utc(sys_days day, milliseconds time_of_day = {})
{
    return system_clock::time_point{day + time_of_day};
}

std::string dst_request(const std::string& zone)
{
    std::string data =
        zone.empty() ? R"({"bizType":"DST"})" : R"({"bizType":"DST","timezoneId":")" + zone + "\"}";
    return R"({"msgId":"m1","time":1626197189638,"data":)" + data + "}";
}

// The service with a fixed clock and a resolver that records who it was asked about.
struct fixture {
    metrics stats;
    std::vector<std::string> resolved;
    std::string device_zone = "Asia/Riyadh";
    system_clock::time_point clock_now = utc(sys_days{2026y / December / 1}, 5ms + 0s);
    time_service service{[this](std::string_view id) {
                             resolved.emplace_back(id);
                             return device_zone;
                         },
                         stats, network_list{}, [this] { return clock_now; }};

    json::object dst(const std::string& zone, system_clock::time_point now,
                     std::string_view device = "dev1")
    {
        auto answered = service.answer(device, dst_request(zone), now, time_transport::http);
        INFO(answered.body);
        REQUIRE(answered.code == 0);
        auto value = json::parse(answered.body);
        REQUIRE(value.is_object());
        return value.as_object();
    }
};

std::vector<std::int64_t> intervals_of(const json::object& reply)
{
    std::vector<std::int64_t> out;
    for (const auto& v : reply.at("data").at("dstIntervals").as_array()) {
        out.push_back(v.as_int64());
    }
    return out;
}

} // namespace

TEST_CASE("NTP answers srt from the receive time and sst from the clock read last",
          "[time_service]")
{
    fixture f;
    auto received = utc(sys_days{2022y / June / 23}, 4h + 9min + 59s + 100ms);
    f.clock_now = received + 200ms;
    auto answered = f.service.answer(
        "dev1",
        R"({"msgId":"45lkj3551234001","time":1655957399,"data":{"bizType":"NTP","dst":1655957399000}})",
        received, time_transport::mqtt);
    CHECK(answered.code == 0);
    CHECK(answered.body == R"({"msgId":"45lkj3551234001","time":1655957399300,"code":0,)"
                           R"("data":{"bizType":"NTP","dst":1655957399000,"srt":1655957399100,)"
                           R"("sst":1655957399300}})");
    // Without dst: sst only.
    auto plain =
        f.service.answer("dev1", R"({"msgId":"a","time":1655957399,"data":{"bizType":"NTP"}})",
                         received, time_transport::mqtt);
    CHECK(
        plain.body ==
        R"({"msgId":"a","time":1655957399300,"code":0,"data":{"bizType":"NTP","sst":1655957399300}})");
    CHECK(f.resolved.empty()); // NTP needs no zone
}

TEST_CASE("DST for Asia/Shanghai is +08:00 with no intervals, in any case", "[time_service]")
{
    fixture f;
    for (const char* name : {"Asia/Shanghai", "asia/shanghai", "ASIA/SHANGHAI"}) {
        INFO(name);
        auto reply = f.dst(name, utc(sys_days{2026y / March / 1}));
        CHECK(reply.at("msgId") == "m1");
        CHECK(reply.at("code") == 0);
        CHECK(reply.at("time") == 1796083200005); // the clock: 2026-12-01 00:00:00.005
        CHECK(reply.at("data").at("bizType") == "DST");
        CHECK(reply.at("data").at("stdTimeZone") == "+08:00");
        CHECK(intervals_of(reply).empty());
    }
    CHECK(f.resolved.empty()); // a timezoneId wins over the device's zone
}

TEST_CASE("DST for America/New_York from December 2026 is the exact 2027 pair", "[time_service]")
{
    fixture f;
    auto reply = f.dst("America/New_York", utc(sys_days{2026y / December / 1}));
    CHECK(reply.at("data").at("stdTimeZone") == "-05:00");
    // 2027-03-14 07:00 UTC (02:00 EST) and 2027-11-07 06:00 UTC (02:00 EDT).
    CHECK(intervals_of(reply) == std::vector<std::int64_t>{1805007600, 1825567200});
}

TEST_CASE("DST during New York summer lists the interval in progress and the next one",
          "[time_service]")
{
    fixture f;
    auto reply = f.dst("America/New_York", utc(sys_days{2026y / July / 1}));
    CHECK(reply.at("data").at("stdTimeZone") == "-05:00"); // the standard offset, not EDT
    CHECK(intervals_of(reply) ==
          std::vector<std::int64_t>{1772953200, 1793512800, 1805007600, 1825567200});
}

TEST_CASE("DST for Australia/Sydney in November starts with the southern summer in progress",
          "[time_service]")
{
    fixture f;
    auto reply = f.dst("Australia/Sydney", utc(sys_days{2025y / November / 15}));
    CHECK(reply.at("data").at("stdTimeZone") == "+10:00");
    // 2025-10-05 02:00 AEST .. 2026-04-05 03:00 AEDT, then 2026-10-04 .. 2027-04-04.
    CHECK(intervals_of(reply) ==
          std::vector<std::int64_t>{1759593600, 1775318400, 1791043200, 1806768000});
}

TEST_CASE("The year ahead ends before next year's DST start when asked just after one",
          "[time_service]")
{
    fixture f;
    // One second after New York's 2026 start: the 2026 interval only (2027's starts after
    // 2027-03-08 07:00:01).
    auto reply = f.dst("America/New_York", system_clock::time_point{sys_seconds{1772953201s}});
    CHECK(intervals_of(reply) == std::vector<std::int64_t>{1772953200, 1793512800});
    // One second before it ends: still listed, with its real begin.
    reply = f.dst("America/New_York", system_clock::time_point{sys_seconds{1793512799s}});
    CHECK(intervals_of(reply).front() == 1772953200);
    // At its end it no longer overlaps.
    reply = f.dst("America/New_York", system_clock::time_point{sys_seconds{1793512800s}});
    CHECK(intervals_of(reply) == std::vector<std::int64_t>{1805007600, 1825567200});
}

TEST_CASE("Without timezoneId the device's zone from the resolver is used", "[time_service]")
{
    fixture f;
    f.device_zone = "Europe/Berlin";
    auto reply = f.dst("", utc(sys_days{2026y / December / 1}), "RKQ4243400358");
    CHECK(f.resolved == std::vector<std::string>{"RKQ4243400358"});
    CHECK(reply.at("data").at("stdTimeZone") == "+01:00");
    CHECK(intervals_of(reply).size() == 2);
    f.device_zone = "Asia/Kathmandu";
    CHECK(f.dst("", utc(sys_days{2026y / December / 1})).at("data").at("stdTimeZone") == "+05:45");
}

TEST_CASE("Refusals answer code 1001 with msg and are never a crash", "[time_service]")
{
    fixture f;
    auto now = utc(sys_days{2026y / December / 1});
    auto refused = [&](std::string_view device, const std::string& body) {
        auto answered = f.service.answer(device, body, now, time_transport::http);
        INFO(answered.body);
        CHECK(answered.code == 1001);
        auto value = json::parse(answered.body).as_object();
        CHECK(value.at("code") == 1001);
        CHECK(value.at("time") == 1796083200005);
        CHECK_FALSE(value.contains("data"));
        CHECK(value.at("msg").as_string() == answered.error);
        return std::pair{std::string{value.at("msgId").as_string()}, answered.error};
    };
    CHECK(refused("dev1", dst_request("Mars/Base")) ==
          std::pair{std::string{"m1"}, std::string{"unknown time zone 'Mars/Base'"}});
    CHECK(refused("dev1", R"({"msgId":"m2","time":1626197189,"data":{"bizType":"OTA"}})") ==
          std::pair{std::string{"m2"}, std::string{R"(data.bizType must be "NTP" or "DST")"}});
    CHECK(refused("dev1", "{not json").second.starts_with("malformed JSON at offset 1"));
    CHECK(refused("dev1", R"({"msgId":"m3","time":16261971,"data":{"bizType":"NTP"}})").first ==
          "m3");
    CHECK(refused("a+b", dst_request("UTC")) ==
          std::pair{std::string{"m1"},
                    std::string{"invalid deviceId: expected 1 to 64 ASCII letters, digits, '-', "
                                "'_', '.' or ':'"}});
    // The device's own zone could be unknown (an embedder's resolver): refused, not thrown.
    f.device_zone = "Nowhere/City";
    CHECK(refused("dev1", dst_request("")).second == "unknown time zone 'Nowhere/City'");

    auto big = f.service.answer("dev1", std::string(time_request_max_bytes + 1, ' '), now,
                                time_transport::http);
    CHECK(big.code == 1001);
    CHECK(big.too_large);
    CHECK(big.error == "request larger than 4096 bytes");
    // Exactly the limit is read.
    auto padded = dst_request("UTC");
    padded += std::string(time_request_max_bytes - padded.size(), ' ');
    CHECK(f.service.answer("dev1", padded, now, time_transport::http).code == 0);
}

TEST_CASE("Answers are counted by transport, bizType and code", "[time_service]")
{
    fixture f;
    auto now = utc(sys_days{2026y / December / 1});
    f.service.answer("dev1", dst_request("UTC"), now, time_transport::mqtt);
    f.service.answer("dev1", dst_request("Mars/Base"), now, time_transport::mqtt);
    f.service.answer("dev1", "[]", now, time_transport::http);
    f.service.answer("dev1", "[]", now, time_transport::http);
    auto text = f.stats.render(0, 0);
    CHECK(text.find(
              R"(admsd_time_service_requests_total{biz_type="DST",code="0",transport="mqtt"} 1)") !=
          std::string::npos);
    CHECK(
        text.find(
            R"(admsd_time_service_requests_total{biz_type="DST",code="1001",transport="mqtt"} 1)") !=
        std::string::npos);
    CHECK(
        text.find(
            R"(admsd_time_service_requests_total{biz_type="unknown",code="1001",transport="http"} 2)") !=
        std::string::npos);
}

TEST_CASE("The HTTP route checks path, method, network and size", "[time_service]")
{
    metrics stats;
    auto networks = network_list::parse("10.0.0.0/8");
    REQUIRE(networks.value);
    time_service service{[](std::string_view) { return std::string{"UTC"}; }, stats,
                         networks.value};
    http_request request;
    request.method = "POST";
    request.target = "/tylink/dev1/ext/time/request?x=1";
    request.remote_address = "10.1.2.3";
    request.body =
        R"({"msgId":"a","time":1626197189,"data":{"bizType":"NTP","dst":1626197189000}})";
    request.received_at = system_clock::now();
    auto ok = service.handle(request);
    CHECK(ok.status == 200);
    CHECK(ok.content_type == "application/json");
    CHECK(json::parse(ok.body).at("code") == 0);

    auto other = request;
    other.target = "/tylink/dev1/ext/time/request/";
    CHECK(service.handle(other).status == 404);
    other.target = "/tylink/a/b/ext/time/request";
    CHECK(service.handle(other).status == 404);

    auto get = request;
    get.method = "GET";
    auto not_allowed = service.handle(get);
    CHECK(not_allowed.status == 405);
    CHECK(not_allowed.headers ==
          std::vector<std::pair<std::string, std::string>>{{"Allow", "POST"}});

    auto outside = request;
    outside.remote_address = "192.168.1.2";
    CHECK(service.handle(outside).status == 403);

    auto big = request;
    big.body = std::string(5000, 'x');
    auto too_large = service.handle(big);
    CHECK(too_large.status == 413);
    CHECK(json::parse(too_large.body).at("code") == 1001);

    auto bad_id = request;
    bad_id.target = "/tylink/a%2Fb/ext/time/request";
    auto refused = service.handle(bad_id);
    CHECK(refused.status == 200);
    CHECK(json::parse(refused.body).at("code") == 1001);

    // A list that failed to parse admits nobody.
    time_service closed{[](std::string_view) { return std::string{"UTC"}; }, stats, std::nullopt};
    CHECK(closed.handle(request).status == 403);
}

#include "protocol/tylink_time.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace std::chrono;
using namespace adms::protocol;

namespace {

sys_milliseconds ms(long long value)
{
    return sys_milliseconds{milliseconds{value}};
}

// A request body with `data` spliced in as given.
std::string body_with(const std::string& data, const std::string& time = "1626197189638",
                      const std::string& msg_id = "\"45lkj3551234001\"")
{
    return "{\"msgId\":" + msg_id + ",\"time\":" + time + ",\"data\":" + data + "}";
}

} // namespace

TEST_CASE("The documented NTP request parses with its dst", "[tylink]")
{
    auto parsed = parse_tylink_time_request(R"({
        "msgId":"45lkj3551234001",
        "time":1626197189638,
        "data":{ "bizType":"NTP", "dst":1655957399000 }
    })");
    INFO(parsed.error);
    REQUIRE(parsed);
    const auto& r = *parsed.request;
    CHECK(r.msg_id == "45lkj3551234001");
    CHECK(r.time == ms(1626197189638));
    CHECK(r.biz_type == tylink_biz_type::ntp);
    CHECK(r.dst == ms(1655957399000));
    CHECK(r.timezone_id.empty());
    CHECK(parsed.error.empty());
}

TEST_CASE("The documented DST request parses with its lower-case zone", "[tylink]")
{
    auto parsed = parse_tylink_time_request(
        R"({"msgId":"45lkj3551234001","time":1626197189638,"data":{"bizType":"DST","timezoneId":"asia/shanghai"}})");
    REQUIRE(parsed);
    CHECK(parsed.request->biz_type == tylink_biz_type::dst);
    CHECK(parsed.request->timezone_id == "asia/shanghai");
    CHECK_FALSE(parsed.request->dst);
}

TEST_CASE("time takes 10-digit seconds or 13-digit milliseconds and nothing else", "[tylink]")
{
    auto time_of = [](const std::string& time) {
        return parse_tylink_time_request(body_with(R"({"bizType":"NTP"})", time));
    };
    CHECK(time_of("1626197189").request->time == ms(1626197189000));
    CHECK(time_of("1626197189638").request->time == ms(1626197189638));
    CHECK(time_of("1000000000").request->time == ms(1000000000000));
    CHECK(time_of("9999999999").request->time == ms(9999999999000));
    CHECK(time_of("1000000000000").request->time == ms(1000000000000));
    CHECK(time_of("9999999999999").request->time == ms(9999999999999));
    for (const char* bad : {"999999999", "10000000000", "162619718963", "99999999999999", "0",
                            "-1626197189", "1626197189.5", "1626197189638.0", "1.6e12",
                            "\"1626197189\"", "true", "{}", "[]", "18446744073709551615"}) {
        INFO(bad);
        auto parsed = time_of(bad);
        CHECK_FALSE(parsed);
        CHECK(parsed.error == "time must be Unix seconds (10 digits) or milliseconds (13 digits)");
        // The rest of the request was fine: the reply can still carry msgId.
        CHECK(parsed.msg_id == "45lkj3551234001");
        CHECK(parsed.biz_type == tylink_biz_type::ntp);
    }
    auto missing = parse_tylink_time_request(R"({"msgId":"a","data":{"bizType":"NTP"}})");
    CHECK(missing.error == "time is required");
    auto null_time = parse_tylink_time_request(body_with(R"({"bizType":"NTP"})", "null"));
    CHECK(null_time.error == "time is required");
}

TEST_CASE("msgId is 1 to 32 characters, counted as code points", "[tylink]")
{
    auto with_id = [](const std::string& id) {
        return parse_tylink_time_request(body_with(R"({"bizType":"NTP"})", "1626197189", id));
    };
    CHECK(with_id("\"" + std::string(32, 'x') + "\"").request->msg_id == std::string(32, 'x'));
    CHECK(with_id("\"a\"").request->msg_id == "a");
    // 32 two-byte characters are 64 bytes and still 32 characters.
    std::string accents;
    for (int i = 0; i < 32; ++i) {
        accents += "\xc3\xa9";
    }
    CHECK(with_id("\"" + accents + "\"").request->msg_id == accents);

    auto too_long = with_id("\"" + std::string(33, 'x') + "\"");
    CHECK_FALSE(too_long);
    CHECK(too_long.error == "msgId must be 1 to 32 characters");
    CHECK(too_long.msg_id.empty()); // never echoed
    CHECK(with_id("\"\"").error == "msgId must be 1 to 32 characters");
    CHECK(with_id("12345").error == "msgId must be a string");
    CHECK(with_id("null").error == "msgId is required");
    CHECK(parse_tylink_time_request(R"({"time":1626197189,"data":{"bizType":"NTP"}})").error ==
          "msgId is required");
}

TEST_CASE("bizType is NTP or DST in exact case", "[tylink]")
{
    for (const char* bad : {R"({"bizType":"ntp"})", R"({"bizType":"OTA"})", R"({"bizType":""})",
                            R"({"bizType":1})", R"({"bizType":["NTP"]})"}) {
        INFO(bad);
        auto parsed = parse_tylink_time_request(body_with(bad));
        CHECK_FALSE(parsed);
        CHECK(parsed.error == "data.bizType must be \"NTP\" or \"DST\"");
        CHECK_FALSE(parsed.biz_type);
        CHECK(parsed.msg_id == "45lkj3551234001");
    }
    CHECK(parse_tylink_time_request(body_with("{}")).error == "data.bizType is required");
    CHECK(parse_tylink_time_request(body_with(R"({"bizType":null})")).error ==
          "data.bizType is required");
    CHECK(parse_tylink_time_request(body_with("\"NTP\"")).error == "data must be an object");
    CHECK(parse_tylink_time_request(body_with("null")).error == "data is required");
    CHECK(parse_tylink_time_request(R"({"msgId":"a","time":1626197189})").error ==
          "data is required");
}

TEST_CASE("dst is optional and must be 13-digit milliseconds", "[tylink]")
{
    CHECK_FALSE(parse_tylink_time_request(body_with(R"({"bizType":"NTP"})")).request->dst);
    CHECK_FALSE(
        parse_tylink_time_request(body_with(R"({"bizType":"NTP","dst":null})")).request->dst);
    for (const char* bad :
         {"1655957399", "1655957399000.0", "\"1655957399000\"", "-1", "16559573990000"}) {
        INFO(bad);
        auto parsed = parse_tylink_time_request(
            body_with(std::string{R"({"bizType":"NTP","dst":)"} + bad + "}"));
        CHECK(parsed.error == "data.dst must be Unix milliseconds (13 digits)");
        CHECK(parsed.biz_type == tylink_biz_type::ntp);
    }
    // A DST request ignores an NTP field, and the other way round.
    auto dst = parse_tylink_time_request(body_with(R"({"bizType":"DST","dst":"x"})"));
    CHECK(dst);
    auto ntp = parse_tylink_time_request(body_with(R"({"bizType":"NTP","timezoneId":5})"));
    CHECK(ntp);
}

TEST_CASE("timezoneId is an optional string", "[tylink]")
{
    CHECK(
        parse_tylink_time_request(body_with(R"({"bizType":"DST"})")).request->timezone_id.empty());
    CHECK(parse_tylink_time_request(body_with(R"({"bizType":"DST","timezoneId":null})"))
              .request->timezone_id.empty());
    CHECK(parse_tylink_time_request(body_with(R"({"bizType":"DST","timezoneId":"Mars/Base"})"))
              .request->timezone_id == "Mars/Base");
    CHECK(parse_tylink_time_request(body_with(R"({"bizType":"DST","timezoneId":8})")).error ==
          "data.timezoneId must be a string");
}

TEST_CASE("version may be 1.0 only, unknown fields are ignored", "[tylink]")
{
    CHECK(parse_tylink_time_request(
        R"({"version":"1.0","msgId":"a","time":1626197189,"data":{"bizType":"NTP"},"extra":[1]})"));
    CHECK(parse_tylink_time_request(
              R"({"version":"2.0","msgId":"a","time":1626197189,"data":{"bizType":"NTP"}})")
              .error == "version must be \"1.0\"");
    CHECK(parse_tylink_time_request(
              R"({"version":1.0,"msgId":"a","time":1626197189,"data":{"bizType":"NTP"}})")
              .error == "version must be \"1.0\"");
}

TEST_CASE("Bodies that are not one JSON object are refused with the offset", "[tylink]")
{
    CHECK(parse_tylink_time_request("").error.starts_with("malformed JSON at offset 0: "));
    CHECK(parse_tylink_time_request("{\"msgId\":").error.starts_with("malformed JSON at offset"));
    CHECK(parse_tylink_time_request("{} {}").error.starts_with("malformed JSON at offset 3: "));
    CHECK(parse_tylink_time_request("[1,2]").error == "the body must be a JSON object");
    CHECK(parse_tylink_time_request("\"x\"").error == "the body must be a JSON object");
    CHECK(parse_tylink_time_request("{\"msgId\":\"\xff\"}").error.starts_with("malformed JSON"));
    // Nesting deeper than Boost.JSON's limit is an error value, not a crash.
    std::string deep(100'000, '[');
    CHECK(parse_tylink_time_request(deep).error.starts_with("malformed JSON"));
    auto parsed = parse_tylink_time_request("not json");
    CHECK_FALSE(parsed);
    CHECK(parsed.msg_id.empty());
    CHECK_FALSE(parsed.biz_type);
}

TEST_CASE("The first error in document order is the one reported", "[tylink]")
{
    auto parsed = parse_tylink_time_request(R"({"msgId":5,"time":1,"data":{"bizType":"X"}})");
    CHECK(parsed.error == "msgId must be a string");
    parsed = parse_tylink_time_request(R"({"msgId":"a","time":1,"data":{"bizType":"X"}})");
    CHECK(parsed.error == "time must be Unix seconds (10 digits) or milliseconds (13 digits)");
}

TEST_CASE("The NTP response carries dst, srt and sst, or sst alone", "[tylink]")
{
    CHECK(
        format_tylink_ntp_response("45lkj3551234001", ms(1655957399000), ms(1655957399100),
                                   ms(1655957399300)) ==
        R"({"msgId":"45lkj3551234001","time":1655957399300,"code":0,)"
        R"("data":{"bizType":"NTP","dst":1655957399000,"srt":1655957399100,"sst":1655957399300}})");
    CHECK(
        format_tylink_ntp_response("m", std::nullopt, ms(1655957399100), ms(1655957399300)) ==
        R"({"msgId":"m","time":1655957399300,"code":0,"data":{"bizType":"NTP","sst":1655957399300}})");
}

TEST_CASE("The device's accurate time follows from the NTP response", "[tylink]")
{
    // Device clock 5 s slow; 40 ms each way; the server holds the request 3 ms.
    long long server_t2 = 1655957399100;
    long long server_t3 = server_t2 + 3;
    long long device_t1 = server_t2 - 40 - 5000;
    long long device_t4 = server_t3 + 40 - 5000;
    long long accurate = (device_t4 - device_t1 + server_t3 + server_t2) / 2;
    CHECK(accurate == server_t3 + 40); // the server's time when the device received the reply
}

TEST_CASE("The DST response lists interval pairs in seconds and the standard offset", "[tylink]")
{
    std::vector<tylink_dst_interval> intervals{
        {sys_seconds{seconds{1680422400}}, sys_seconds{seconds{1698562800}}},
        {sys_seconds{seconds{1711872000}}, sys_seconds{seconds{1730012400}}}};
    CHECK(
        format_tylink_dst_response("45lkj3551234001", ms(1626197189638), hours{-5}, intervals) ==
        R"({"msgId":"45lkj3551234001","time":1626197189638,"code":0,"data":{"bizType":"DST",)"
        R"("stdTimeZone":"-05:00","dstIntervals":[1680422400,1698562800,1711872000,1730012400]}})");
    CHECK(format_tylink_dst_response("a", ms(1626197189638), hours{8}, {}) ==
          R"({"msgId":"a","time":1626197189638,"code":0,)"
          R"("data":{"bizType":"DST","stdTimeZone":"+08:00","dstIntervals":[]}})");
    CHECK(format_tylink_dst_response("a", ms(0), hours{5} + minutes{45}, {})
              .find(R"("stdTimeZone":"+05:45")") != std::string::npos);
    CHECK(format_tylink_dst_response("a", ms(0), -(hours{3} + minutes{30}), {})
              .find(R"("stdTimeZone":"-03:30")") != std::string::npos);
}

TEST_CASE("Error responses carry code 1001 and msg, and escape what they echo", "[tylink]")
{
    CHECK(format_tylink_error_response("45lkj3551234001", ms(1626197189638),
                                       "unknown time zone 'Mars/Base'") ==
          R"({"msgId":"45lkj3551234001","time":1626197189638,"code":1001,)"
          R"("msg":"unknown time zone 'Mars/Base'"})");
    CHECK(format_tylink_error_response("", ms(1), "x") ==
          R"({"msgId":"","time":1,"code":1001,"msg":"x"})");
    CHECK(format_tylink_error_response("a\"b\n", ms(1), "q\"") ==
          R"({"msgId":"a\"b\n","time":1,"code":1001,"msg":"q\""})");
}

TEST_CASE("Device ids are 1 to 64 safe characters, never topic wildcards", "[tylink]")
{
    CHECK(valid_tylink_device_id("6c1234567890abcdefgh"));
    CHECK(valid_tylink_device_id("RKQ4243400358"));
    CHECK(valid_tylink_device_id("a-b_c.d:e"));
    CHECK(valid_tylink_device_id(std::string(64, 'a')));
    CHECK_FALSE(valid_tylink_device_id(std::string(65, 'a')));
    CHECK_FALSE(valid_tylink_device_id(""));
    for (const char* bad : {"a+b", "a#", "a/b", "a b", "a%2Fb", "\xc3\xa9", "a\n", "a$"}) {
        INFO(bad);
        CHECK_FALSE(valid_tylink_device_id(bad));
    }
}

TEST_CASE("Request topics and paths give their device id segment", "[tylink]")
{
    CHECK(tylink_request_topic_device("tylink/dev1/ext/time/request") == "dev1");
    CHECK(tylink_request_topic_device("tylink/a b/ext/time/request") == "a b");
    CHECK_FALSE(tylink_request_topic_device("tylink//ext/time/request"));
    CHECK_FALSE(tylink_request_topic_device("tylink/a/b/ext/time/request"));
    CHECK_FALSE(tylink_request_topic_device("tylink/dev1/ext/time/response"));
    CHECK_FALSE(tylink_request_topic_device("/tylink/dev1/ext/time/request"));
    CHECK_FALSE(tylink_request_topic_device("tylink/ext/time/request"));
    CHECK(tylink_request_path_device("/tylink/dev1/ext/time/request") == "dev1");
    CHECK_FALSE(tylink_request_path_device("/tylink/dev1/ext/time/request/"));
    CHECK_FALSE(tylink_request_path_device("/tylink/dev1/ext/time"));
    CHECK_FALSE(tylink_request_path_device("/tylink//ext/time/request"));
    CHECK(tylink_response_topic("dev1") == "tylink/dev1/ext/time/response");
    CHECK(tylink_request_filter == "tylink/+/ext/time/request");
}

// libFuzzer target: protocol::parse_tylink_time_request and the response formatters (the
// tylink time service's JSON, over HTTP and MQTT).

#include "protocol/tylink_time.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <boost/json/parse.hpp>

#include <chrono>

using namespace adms::protocol;
namespace json = boost::json;

namespace {

// A response is one JSON object carrying the msgId it was given.
void check_response(const std::string& body, std::string_view msg_id, int code)
{
    boost::system::error_code ec;
    auto value = json::parse(body, ec);
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(value.is_object());
    const auto& o = value.as_object();
    FUZZ_CHECK(o.contains("msgId") && o.at("msgId").is_string());
    FUZZ_CHECK(o.at("msgId").as_string() == msg_id);
    FUZZ_CHECK(o.contains("code") && o.at("code").as_int64() == code);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto body = adms::fuzz::as_text(data, size);
    auto parsed = parse_tylink_time_request(body);
    sys_milliseconds now{std::chrono::milliseconds{1'790'000'000'123}};
    if (!parsed) {
        FUZZ_CHECK(!parsed.error.empty());
        FUZZ_CHECK(parsed.msg_id.size() <= 4 * tylink_max_msg_id); // code points, UTF-8 bytes
        check_response(format_tylink_error_response(parsed.msg_id, now, parsed.error),
                       parsed.msg_id, tylink_code_error);
        return 0;
    }
    const auto& request = *parsed.request;
    FUZZ_CHECK(parsed.error.empty());
    FUZZ_CHECK(!request.msg_id.empty());
    FUZZ_CHECK(request.msg_id == parsed.msg_id);
    FUZZ_CHECK(parsed.biz_type == request.biz_type);
    if (request.biz_type == tylink_biz_type::ntp) {
        check_response(format_tylink_ntp_response(request.msg_id, request.dst, now,
                                                  now + std::chrono::milliseconds{1}),
                       request.msg_id, tylink_code_ok);
    } else {
        std::vector<tylink_dst_interval> intervals{
            {std::chrono::sys_seconds{std::chrono::seconds{1'790'000'000}},
             std::chrono::sys_seconds{std::chrono::seconds{1'800'000'000}}}};
        check_response(
            format_tylink_dst_response(request.msg_id, now, std::chrono::hours{8}, intervals),
            request.msg_id, tylink_code_ok);
    }
    return 0;
}

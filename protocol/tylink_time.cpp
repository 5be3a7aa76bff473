#include "protocol/tylink_time.hpp"

#include "protocol/zk_time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <cstdint>
#include <limits>

namespace adms::protocol {
namespace {

namespace json = boost::json;

constexpr std::int64_t ten_digits_min = 1'000'000'000;           // 2001-09-09 in seconds
constexpr std::int64_t ten_digits_end = 10'000'000'000;          // 2286-11-20 in seconds
constexpr std::int64_t thirteen_digits_min = 1'000'000'000'000;  // 2001-09-09 in milliseconds
constexpr std::int64_t thirteen_digits_end = 10'000'000'000'000; // 2286-11-20 in milliseconds

// A JSON integer that fits int64; nullopt for anything else (doubles such as 1.0 included).
std::optional<std::int64_t> integer_of(const json::value& value)
{
    if (value.is_int64()) {
        return value.get_int64();
    }
    if (value.is_uint64() && value.get_uint64() <= static_cast<std::uint64_t>(
                                                       std::numeric_limits<std::int64_t>::max())) {
        return static_cast<std::int64_t>(value.get_uint64());
    }
    return std::nullopt;
}

// A field, or nullptr when absent or null.
const json::value* field(const json::object& object, std::string_view name)
{
    const auto* found = object.if_contains(name);
    return found == nullptr || found->is_null() ? nullptr : found;
}

// Characters as UTF-8 code points (Boost.JSON has already checked the encoding).
std::size_t code_points(std::string_view text)
{
    std::size_t count = 0;
    for (char c : text) {
        count += (static_cast<unsigned char>(c) & 0xc0) != 0x80 ? 1 : 0;
    }
    return count;
}

std::string_view biz_name(tylink_biz_type type)
{
    return type == tylink_biz_type::ntp ? "NTP" : "DST";
}

// The envelope every response shares, in the documented key order.
json::object envelope(std::string_view msg_id, sys_milliseconds time, int code)
{
    json::object out;
    out["msgId"] = msg_id;
    out["time"] = time.time_since_epoch().count();
    out["code"] = code;
    return out;
}

bool device_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':';
}

// "<prefix><id>/ext/time/request" -> id.
std::optional<std::string_view> device_segment(std::string_view text, std::string_view prefix)
{
    constexpr std::string_view suffix = "/ext/time/request";
    if (!text.starts_with(prefix) || !text.ends_with(suffix) ||
        text.size() <= prefix.size() + suffix.size()) {
        return std::nullopt;
    }
    auto id = text.substr(prefix.size(), text.size() - prefix.size() - suffix.size());
    if (id.find('/') != std::string_view::npos) {
        return std::nullopt;
    }
    return id;
}

// The "data" object: bizType, then dst (NTP) or timezoneId (DST); the first error goes to fail.
template <class Fail>
void read_data(const json::object& d, tylink_time_parse& out, tylink_time_request& request,
               Fail& fail)
{
    const auto* biz = field(d, "bizType");
    if (biz == nullptr) {
        fail("data.bizType is required");
    } else if (biz->is_string() && biz->get_string() == "NTP") {
        out.biz_type = tylink_biz_type::ntp;
    } else if (biz->is_string() && biz->get_string() == "DST") {
        out.biz_type = tylink_biz_type::dst;
    } else {
        fail("data.bizType must be \"NTP\" or \"DST\"");
    }
    if (out.biz_type == tylink_biz_type::ntp) {
        if (const auto* dst = field(d, "dst")) {
            auto value = integer_of(*dst);
            if (value && *value >= thirteen_digits_min && *value < thirteen_digits_end) {
                request.dst = sys_milliseconds{std::chrono::milliseconds{*value}};
            } else {
                fail("data.dst must be Unix milliseconds (13 digits)");
            }
        }
    }
    if (out.biz_type == tylink_biz_type::dst) {
        if (const auto* zone = field(d, "timezoneId")) {
            if (zone->is_string()) {
                request.timezone_id = std::string{zone->get_string()};
            } else {
                fail("data.timezoneId must be a string");
            }
        }
    }
}

} // namespace

tylink_time_parse parse_tylink_time_request(std::string_view body)
{
    tylink_time_parse out;
    json::parser parser;
    boost::system::error_code ec;
    auto consumed = parser.write(body.data(), body.size(), ec);
    if (ec) {
        out.error = fmt::format("malformed JSON at offset {}: {}", consumed, ec.message());
        return out;
    }
    json::value root = parser.release();
    if (!root.is_object()) {
        out.error = "the body must be a JSON object";
        return out;
    }
    const auto& object = root.get_object();
    std::string error;
    auto fail = [&error](std::string message) {
        if (error.empty()) {
            error = std::move(message);
        }
    };

    tylink_time_request request;
    if (const auto* msg_id = field(object, "msgId"); msg_id == nullptr) {
        fail("msgId is required");
    } else if (!msg_id->is_string()) {
        fail("msgId must be a string");
    } else if (auto length = code_points(msg_id->get_string());
               length == 0 || length > tylink_max_msg_id) {
        fail(fmt::format("msgId must be 1 to {} characters", tylink_max_msg_id));
    } else {
        request.msg_id = std::string{msg_id->get_string()};
        out.msg_id = request.msg_id;
    }

    if (const auto* time = field(object, "time"); time == nullptr) {
        fail("time is required");
    } else if (auto value = integer_of(*time);
               value && *value >= ten_digits_min && *value < ten_digits_end) {
        request.time = sys_milliseconds{std::chrono::seconds{*value}};
    } else if (value && *value >= thirteen_digits_min && *value < thirteen_digits_end) {
        request.time = sys_milliseconds{std::chrono::milliseconds{*value}};
    } else {
        fail("time must be Unix seconds (10 digits) or milliseconds (13 digits)");
    }

    if (const auto* version = field(object, "version");
        version != nullptr && !(version->is_string() && version->get_string() == "1.0")) {
        fail("version must be \"1.0\"");
    }

    if (const auto* data = field(object, "data"); data == nullptr) {
        fail("data is required");
    } else if (!data->is_object()) {
        fail("data must be an object");
    } else {
        read_data(data->get_object(), out, request, fail);
    }

    if (!error.empty()) {
        out.error = std::move(error);
        return out;
    }
    request.biz_type = *out.biz_type;
    out.request = std::move(request);
    return out;
}

std::string format_tylink_ntp_response(std::string_view msg_id, std::optional<sys_milliseconds> dst,
                                       sys_milliseconds srt, sys_milliseconds sst)
{
    auto out = envelope(msg_id, sst, tylink_code_ok);
    json::object data;
    data["bizType"] = biz_name(tylink_biz_type::ntp);
    if (dst) {
        data["dst"] = dst->time_since_epoch().count();
        data["srt"] = srt.time_since_epoch().count();
    }
    data["sst"] = sst.time_since_epoch().count();
    out["data"] = std::move(data);
    return json::serialize(out);
}

std::string format_tylink_dst_response(std::string_view msg_id, sys_milliseconds now,
                                       std::chrono::seconds standard_offset,
                                       const std::vector<tylink_dst_interval>& intervals)
{
    auto out = envelope(msg_id, now, tylink_code_ok);
    json::object data;
    data["bizType"] = biz_name(tylink_biz_type::dst);
    data["stdTimeZone"] = format_offset_iso(standard_offset);
    json::array pairs;
    pairs.reserve(intervals.size() * 2);
    for (const auto& [begin, end] : intervals) {
        pairs.emplace_back(begin.time_since_epoch().count());
        pairs.emplace_back(end.time_since_epoch().count());
    }
    data["dstIntervals"] = std::move(pairs);
    out["data"] = std::move(data);
    return json::serialize(out);
}

std::string format_tylink_error_response(std::string_view msg_id, sys_milliseconds now,
                                         std::string_view message)
{
    auto out = envelope(msg_id, now, tylink_code_error);
    out["msg"] = message;
    return json::serialize(out);
}

bool valid_tylink_device_id(std::string_view id)
{
    if (id.empty() || id.size() > tylink_max_device_id) {
        return false;
    }
    for (char c : id) {
        if (!device_id_char(c)) {
            return false;
        }
    }
    return true;
}

std::optional<std::string_view> tylink_request_topic_device(std::string_view topic)
{
    return device_segment(topic, "tylink/");
}

std::optional<std::string_view> tylink_request_path_device(std::string_view path)
{
    return device_segment(path, "/tylink/");
}

std::string tylink_response_topic(std::string_view device_id)
{
    return fmt::format("tylink/{}/ext/time/response", device_id);
}

} // namespace adms::protocol

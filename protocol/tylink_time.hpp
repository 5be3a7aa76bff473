#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Tuya's tylink time service (ext/time): the NTP-style precise time request and the DST
// schedule request, as JSON messages over HTTP or MQTT. Pure: the caller supplies every time
// and every zone fact; nothing here reads the clock or looks a zone up.
namespace adms::protocol {

// Unix time in milliseconds, the unit of the messages' `time`, `dst`, `srt` and `sst`.
using sys_milliseconds = std::chrono::sys_time<std::chrono::milliseconds>;

// What a time request asks for (`data.bizType`).
enum class tylink_biz_type {
    ntp, // "NTP": the server's receive and send times
    dst, // "DST": a zone's standard offset and DST intervals
};

// The response codes: 0 success, 1001 "service exception" (every refusal).
inline constexpr int tylink_code_ok = 0;
inline constexpr int tylink_code_error = 1001;

// The longest msgId accepted, in characters (UTF-8 code points).
inline constexpr std::size_t tylink_max_msg_id = 32;

// The longest device id accepted in a path or topic.
inline constexpr std::size_t tylink_max_device_id = 64;

// A valid time request.
struct tylink_time_request {
    std::string msg_id;
    sys_milliseconds time{}; // the message's timestamp (10-digit seconds read as milliseconds)
    tylink_biz_type biz_type = tylink_biz_type::ntp;
    std::optional<sys_milliseconds> dst; // NTP: t1, the device's send time, echoed unchanged
    std::string timezone_id;             // DST: the zone asked for; empty = the device's zone
};

// The outcome of parsing a request body: the request, or why not. The msgId and bizType are kept
// when they could be read, so the error reply can still carry the msgId.
struct tylink_time_parse {
    std::optional<tylink_time_request> request;
    std::string msg_id;                      // empty when missing or invalid
    std::optional<tylink_biz_type> biz_type; // nullopt when missing or invalid
    std::string error;                       // empty when `request` is set
    explicit operator bool() const { return request.has_value(); }
};

// Parses a request body: a JSON object with `msgId` (1 to 32 characters), `time` (Unix seconds
// with 10 digits or milliseconds with 13), optional `version` ("1.0") and `data` with `bizType`
// ("NTP" or "DST", exact case), optional `dst` (13-digit milliseconds) and optional
// `timezoneId` (a string). null reads as absent; unknown fields are ignored. Never throws.
tylink_time_parse parse_tylink_time_request(std::string_view body);

// The NTP response. `time` is sst. With `dst` (t1): dst, srt (t2) and sst (t3); without: sst only.
std::string format_tylink_ntp_response(std::string_view msg_id, std::optional<sys_milliseconds> dst,
                                       sys_milliseconds srt, sys_milliseconds sst);

// One DST interval: [begin, end) in Unix seconds.
using tylink_dst_interval = std::pair<std::chrono::sys_seconds, std::chrono::sys_seconds>;

// The DST response: `stdTimeZone` as "+08:00" and `dstIntervals` as [begin, end, begin, end, …]
// in Unix seconds (an empty array for a zone without DST).
std::string format_tylink_dst_response(std::string_view msg_id, sys_milliseconds now,
                                       std::chrono::seconds standard_offset,
                                       const std::vector<tylink_dst_interval>& intervals);

// An error response: code 1001 and the reason in `msg`; no `data`.
std::string format_tylink_error_response(std::string_view msg_id, sys_milliseconds now,
                                         std::string_view message);

// Whether `id` may name a device in a path or topic: 1 to 64 ASCII letters, digits, '-', '_',
// '.' or ':'. Never '/', '+', '#' or spaces, so a response topic built from it has one level.
bool valid_tylink_device_id(std::string_view id);

// The device id segment of an MQTT request topic "tylink/<id>/ext/time/request" (not yet
// validated: any non-empty segment); nullopt for any other topic.
std::optional<std::string_view> tylink_request_topic_device(std::string_view topic);

// The device id segment of an HTTP path "/tylink/<id>/ext/time/request" (not validated, not
// percent-decoded); nullopt for any other path.
std::optional<std::string_view> tylink_request_path_device(std::string_view path);

// The MQTT topic a device's answers go to: "tylink/<id>/ext/time/response". `device_id` must
// be valid (valid_tylink_device_id).
std::string tylink_response_topic(std::string_view device_id);

// The subscription filter for every device's requests: "tylink/+/ext/time/request".
inline constexpr std::string_view tylink_request_filter = "tylink/+/ext/time/request";

} // namespace adms::protocol

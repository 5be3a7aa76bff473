#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace adms::server {

// Makes request-supplied text safe for a log line or terminal: control characters, DEL, '\' and
// bytes that are not valid UTF-8 become `\xNN` (backslash as `\\`); valid UTF-8 (names) is kept.
std::string escape_for_log(std::string_view text);

// The request target with the values of secret parameters (pushcommkey, the device's
// communication key, matched case-insensitively) replaced by "***", for logs.
std::string redact_target(std::string_view target);

// One request in Django runserver's format, in the server's local time:
// `[21/Nov/2026 14:05:12] "GET /iclock/getrequest?SN=RKQ4243400358 HTTP/1.1" 200 2`.
// The target is escaped; `body_bytes` is the response body's size.
std::string django_request_line(std::chrono::local_seconds server_local_time,
                                std::string_view method, std::string_view target,
                                unsigned http_version, unsigned status, std::size_t body_bytes);

// What went to a device to set or tell its clock, for the readable log block.
struct time_sync_event {
    std::string serial_number;
    std::chrono::sys_seconds server_utc;
    std::string zone_name;                   // the device's zone
    std::chrono::local_seconds server_local; // server_utc in that zone
    std::chrono::local_seconds device_local; // the time sent to the device
    std::string sending;                     // e.g. "SET OPTIONS DateTime=583080894"
    std::string reason;                      // e.g. "first contact"; empty for replies
};

// The multi-line block admins know from the Django reference server (no trailing newline):
//   🕐 Time sync request from device RKQ4243400358
//      Server UTC time: 2026-01-29 19:47:20
//      Server local time (Asia/Riyadh): 2026-01-29 22:47:20
//      Sending to device: 2026-01-29 22:47:20
//      📤 Sending: SET OPTIONS DateTime=… (reason: first contact)
std::string time_sync_block(const time_sync_event& event);

} // namespace adms::server

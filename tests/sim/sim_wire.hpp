#pragma once

#include "protocol/command.hpp"
#include "protocol/parse_result.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// The device side of the wire formats that protocol/ (written for the server) does not have:
// reading HTTP reply heads, handshake replies and command lines, and writing command results
// and the boot INFO. Pure: no I/O, no clock reads, never throws.
namespace adms::sim {

// The status line and the headers admsd-sim acts on, from one HTTP/1.x reply head.
struct reply_head {
    int status = 0;
    std::optional<std::size_t> content_length;
    std::optional<std::int64_t> retry_after_s; // Retry-After in seconds (the date form is ignored)
    bool close = false;                        // Connection: close, or HTTP/1.0 without keep-alive
    bool chunked = false;                      // Transfer-Encoding: chunked (admsd never sends it)
};

// Parses a reply head: `head` is everything before the blank line that ends it (the CRLF CRLF
// itself may be included or not). Header names are case-insensitive; a bare LF also ends a
// line. nullopt when the status line is not `HTTP/1.x NNN ...` or a Content-Length is not a
// number (two different ones included).
std::optional<reply_head> parse_reply_head(std::string_view head);

// Where the head of a reply ends: the offset just past its CRLF CRLF (or LF LF); nullopt while
// it is incomplete.
std::optional<std::size_t> find_head_end(std::string_view data);

// What a device takes from the handshake reply (`GET OPTION FROM: <SN>` then key=value lines).
struct handshake_options {
    std::string serial_number;
    std::optional<int> delay;       // Delay=
    std::optional<int> error_delay; // ErrorDelay=
    std::optional<int> time_zone;   // TimeZone= (hours, or minutes beyond +-60)
    std::string attlog_stamp;       // ATTLOGStamp= (or the PUSH 1.0 Stamp=), empty when absent
    std::vector<protocol::key_value> options; // every key=value line, in order
};

// Parses a handshake reply body; nullopt when its first line is not `GET OPTION FROM: <SN>`.
// Lines without '=' are skipped; numbers that do not parse leave their field empty.
std::optional<handshake_options> parse_handshake_reply(std::string_view body);

// The UTC offset a `TimeZone=` value stands for: -12..12 are hours, anything else minutes.
std::chrono::seconds time_zone_offset(int time_zone);

// Parses a getrequest reply: `OK` (or an empty body) is no command; otherwise each non-blank
// line must be `C:<id>:<text>` with a valid id (protocol::is_valid_command_id). Other lines are
// rejected, the rest kept in order.
protocol::parse_result<protocol::device_command> parse_command_reply(std::string_view body);

// The DateTime value of a clock command: `SET OPTIONS DateTime=<n>` or `SET OPTION DateTime=<n>`
// (also among other `k=v` pairs of SET OPTIONS, separated by ','). nullopt for any other
// command, or when the value is not a non-negative integer.
std::optional<std::int64_t> datetime_command_value(std::string_view command);

// The `CMD=` name a device reports for a command (reference §3): "DATA" for DATA ..., "CLEAR_LOG"
// for CLEAR LOG, "SET OPTIONS"/"SET OPTION", "RELOAD OPTIONS", "Shell" for SHELL ..., otherwise
// the first word (CHECK, LOG, INFO, REBOOT, AC_UNLOCK, ...).
std::string command_result_name(std::string_view command);

// One devicecmd result line without its line ending: `ID=<id>&Return=<code>&CMD=<name>`.
std::string render_command_result(std::string_view id, int return_code, std::string_view name);

// Percent-encodes a query value: letters, digits and `-._~` stay, everything else becomes %XX.
std::string url_encode(std::string_view value);

// The ATTLOG upload reply a device takes as success for `lines` punches: status 200 and the
// body exactly `OK:<lines>` or `OK` (nothing else: not `OK: <n>`, no trailing newline).
bool is_attlog_acknowledgement(int status, std::string_view body, std::size_t lines);

} // namespace adms::sim

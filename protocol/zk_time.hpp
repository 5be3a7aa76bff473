#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace adms::protocol {

// Encodes a wall-clock time in ZKTeco's DateTime form (reference §2):
//   ((year-2000)*12*31 + (month-1)*31 + (day-1)) * 86400 + hour*3600 + minute*60 + second.
// Every month counts 31 days, so the encoding is not contiguous: never do arithmetic on it.
// Returns nullopt before 2000-01-01 (the encoding has no negative values).
std::optional<std::int64_t> encode_zk_datetime(std::chrono::local_seconds time);

// Decodes a ZK DateTime. Returns nullopt for negative values and for the impossible dates the
// 31-day months allow (day 30 of February, day 31 of April, ...).
std::optional<std::chrono::local_seconds> decode_zk_datetime(std::int64_t value);

// The handshake's `TimeZone=` integer for a UTC offset: whole hours within -12..12 are sent as
// hours (Asia/Riyadh 3); anything else as minutes (+5:30 -> 330, +5:45 -> 345, -3:30 -> -210,
// +13:00 -> 780, since devices read -12..12 as hours and values beyond +-60 as minutes).
// Seconds in historical offsets are truncated toward zero to whole minutes.
int time_zone_option(std::chrono::seconds utc_offset);

// A UTC offset as `+HHMM` / `-HHMM` (the SEC `ServerTZ=` value): +3:00 -> "+0300".
std::string format_offset_hhmm(std::chrono::seconds utc_offset);

// A UTC offset as `+HH:MM` / `-HH:MM` (ISO 8601, the P320 `TimeZone=` value): -5:00 -> "-05:00".
std::string format_offset_iso(std::chrono::seconds utc_offset);

// The SEC `rtdata?type=time` reply: `DateTime=<ZK-encoded UTC>,ServerTZ=<+HHMM>`.
// Returns an empty string for instants before 2000 (not encodable).
std::string render_rtdata_time(std::chrono::sys_seconds now, std::chrono::seconds utc_offset);

// The P320 `cdata?type=time` reply: `Time=YYYY-MM-DDThh:mm:ss+hh:mm` (local time and offset).
std::string render_p320_time(std::chrono::sys_seconds now, std::chrono::seconds utc_offset);

// An RFC 1123 HTTP date in GMT, e.g. "Fri, 03 Jul 2015 06:53:01 GMT" (the `Date:` header devices
// set their clocks from).
std::string format_http_date(std::chrono::sys_seconds time);

} // namespace adms::protocol

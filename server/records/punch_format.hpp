#pragma once

#include "server/storage/punch_store.hpp"
#include "tz/zone.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace adms::server {

// An instant as ISO 8601 in `zone` with its offset at that instant, e.g.
// "2026-11-21T10:15:03+03:00" (with ".123" before the offset when `milliseconds`).
std::string format_iso(instant t, const tz::zone& zone, bool milliseconds = false);

// An instant as ISO 8601 UTC, e.g. "2026-11-21T07:15:03Z".
std::string format_iso_utc(std::chrono::sys_seconds t);

// One end of a punch time range from a query parameter. Either the device's wall-clock time
// (compared with the punch's local time as sent) or an instant (compared with its UTC time).
struct time_bound {
    std::optional<std::string> local;            // "YYYY-MM-DD HH:MM:SS"
    std::optional<std::chrono::sys_seconds> utc; // from a value with Z or an offset
};

// What parse_time_bound made of a parameter: a bound, or why not.
struct time_bound_result {
    std::optional<time_bound> bound;
    std::string error;
};

// Parses `from`/`to`: "2026-11-21" (a whole day of the devices' wall clocks: from its start, or
// for an `upper` bound up to the next day's start), "2026-11-21T08:00:00" (wall-clock), or with
// "Z" / "+03:00" / "-0500" (an instant). Ranges are half-open: from <= t < to.
time_bound_result parse_time_bound(std::string_view text, bool upper);

// A device as punch rows show it: its API id (alias, else SN) and zone.
struct punch_device {
    std::string id;
    tz::zone zone;
};

// The punch `input` as stored under `id` for device `serial_number` (not quarantined): what
// punch_json shows of it, without reading it back.
stored_punch stored_punch_of(std::string_view serial_number, const punch_input& input,
                             std::int64_t id, instant received_at);
// The device a punch row shows (server/devices/punch_devices.hpp makes one from the registry).
using device_lookup = std::function<punch_device(const stored_punch&)>;

// One punch as a JSON row: device, sn, pin, local_time (as the device sent it), time (that
// local time with the offset it was placed with on arrival, ISO 8601), utc, status, verify,
// work_code, received_at (in the device's zone now), id.
boost::json::object punch_json(const stored_punch& punch, const punch_device& device);

// The CSV header row (CRLF-terminated), the same columns as punch_json.
std::string csv_header();

// One punch as a CSV row (CRLF-terminated, RFC 4180 quoting).
std::string csv_row(const stored_punch& punch, const punch_device& device);

// A CSV field: quoted when it holds a comma, quote, CR or LF; and, when it starts with '=', '+',
// '-', '@', TAB or CR (a spreadsheet would run it as a formula), prefixed with "'" so it stays
// text. Device-supplied fields (PIN, work code) go through it.
std::string csv_field(std::string_view text);

} // namespace adms::server

#pragma once

#include "tz/zone.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

// When the server queues `SET OPTIONS DateTime=<n>` for a device, and the command's text
// (reference §2). Pure: "now" is always a parameter; no I/O, no clock reads, no exceptions.
namespace adms::server {

// Why a time-sync command was queued (logged with the command).
enum class sync_reason {
    first_contact,  // the device was seen for the first time
    boot,           // a handshake, or a getrequest carrying INFO
    dst_change,     // the zone's UTC offset changed since the last sync
    daily_schedule, // the daily local time of day passed since the last sync
    interval,       // the optional interval elapsed since the last sync
    on_demand,      // the admin API asked for it
};

// The human text of a reason: "first contact", "boot", "DST change", "daily schedule",
// "interval", "on demand".
std::string_view describe(sync_reason reason);

// What the server keeps per device for time sync.
struct device_sync_state {
    // When the last time-sync command was queued or sent; empty when never.
    std::optional<std::chrono::sys_seconds> last_sync;
    friend bool operator==(const device_sync_state&, const device_sync_state&) = default;
};

// When periodic syncs happen.
struct sync_schedule {
    // The local time of day of the daily sync in the device's zone (default 03:00); taken
    // modulo 24 h, so 24:30 means 00:30 and -30 min means 23:30.
    std::chrono::minutes daily_at{180};
    // Also sync this long after the last sync (e.g. 6 h); empty, zero or negative: off.
    std::optional<std::chrono::minutes> interval;
    friend bool operator==(const sync_schedule&, const sync_schedule&) = default;
};

// The daily schedule's occurrence for a local date: `daily_at` on `day` in `zone`. Inside a DST
// gap it is the instant the gap ends (New York 2025-03-09 02:30 -> 07:00 UTC, 03:00 EDT), so the
// skipped day still gets one sync; inside an overlap it is the first occurrence (New York
// 2025-11-02 01:30 -> 05:30 UTC), so the repeated hour syncs once.
std::chrono::sys_seconds daily_occurrence(const tz::zone& zone, std::chrono::minutes daily_at,
                                          std::chrono::local_days day);

// The latest daily occurrence at or before `now`.
std::chrono::sys_seconds previous_daily_occurrence(const tz::zone& zone,
                                                   std::chrono::minutes daily_at,
                                                   std::chrono::sys_seconds now);

// The earliest daily occurrence strictly after `now` (e.g. to log when the next sync is due).
std::chrono::sys_seconds next_daily_occurrence(const tz::zone& zone, std::chrono::minutes daily_at,
                                               std::chrono::sys_seconds now);

// Whether the zone's UTC offset changed in (from, to]: a transition at exactly `to` counts (its
// instant is the first with the new offset), one at exactly `from` does not (a sync then already
// saw the new offset). Changes of the DST flag alone (London 1968-10-27) do not count.
bool utc_offset_changed(const tz::zone& zone, std::chrono::sys_seconds from,
                        std::chrono::sys_seconds to);

// The periodic reason a sync is due at `now`, by priority: DST change, daily schedule, interval;
// nullopt when none is due. First contact and boot are events the server sees directly, except
// that a state with no last_sync gives first_contact (the device was never synced). A last_sync
// later than `now` means the server's clock was stepped back and the devices were probably set
// from the wrong time: the daily schedule is then reported due, once (the server records `now`).
std::optional<sync_reason> periodic_sync_due(const device_sync_state& state,
                                             const sync_schedule& schedule, const tz::zone& zone,
                                             std::chrono::sys_seconds now);

// The command setting a device's clock: `<verb> DateTime=<ZK-encoded device_local>`, e.g.
// "SET OPTIONS DateTime=583080894" (verb "SET OPTIONS", or "SET OPTION" for firmware that wants
// the singular). Empty before 2000-01-01 (the ZK encoding has no negative values).
std::string time_sync_command(std::string_view verb, std::chrono::local_seconds device_local);

// `time` rounded to the nearest second, halves up (12:00:00.500 -> 12:00:01; before 1970 too:
// -0.5 s -> 0 s). The DateTime sent must be the time the reply is written, rounded: truncating
// leaves the device up to a second slow.
std::chrono::sys_seconds round_to_second(std::chrono::system_clock::time_point time);

} // namespace adms::server

#pragma once

#include "tz/zone.hpp"

#include <chrono>
#include <optional>
#include <vector>

// When the payroll exports run: pure arithmetic on local days and instants ("now" is always a
// parameter), so every DST edge can be tested without a clock.
namespace adms::server {

// How many of the most recent due days a start catches up on after admsd was down: a month of
// payroll. Older missed days are logged and left to an on-demand run.
inline constexpr int export_catch_up_days = 31;

// When the file of local day `day` is due: at `at` on the next day, in `zone`. On a day when
// the clock skips `at` (a DST gap) it is due when the gap ends; when the clock shows `at` twice
// (an overlap), the first time. Either way: the first instant the wall clock reads `at` or later.
std::chrono::sys_seconds export_due_at(std::chrono::local_days day, std::chrono::seconds at,
                                       const tz::zone& zone);

// The latest day whose file is due at `now`.
std::chrono::local_days latest_due_day(std::chrono::sys_seconds now, std::chrono::seconds at,
                                       const tz::zone& zone);

// The days whose files the schedule must write at `now`, oldest first: every day after
// `last_completed` up to the latest due day, at most `window` of the most recent; only the latest
// due day when nothing was completed yet (a new export does not write the past).
std::vector<std::chrono::local_days>
export_due_days(std::optional<std::chrono::local_days> last_completed, std::chrono::sys_seconds now,
                std::chrono::seconds at, const tz::zone& zone, int window = export_catch_up_days);

// The next file the schedule writes: the day it covers and when it is due (at or before `now`
// when it already is).
struct export_next {
    std::chrono::local_days day{};
    std::chrono::sys_seconds due_at{};
    friend bool operator==(const export_next&, const export_next&) = default;
};
export_next next_export(std::optional<std::chrono::local_days> last_completed,
                        std::chrono::sys_seconds now, std::chrono::seconds at, const tz::zone& zone,
                        int window = export_catch_up_days);

} // namespace adms::server

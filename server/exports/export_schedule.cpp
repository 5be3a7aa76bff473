#include "server/exports/export_schedule.hpp"

#include <algorithm>

namespace adms::server {

using std::chrono::days;
using std::chrono::local_days;
using std::chrono::sys_seconds;

sys_seconds export_due_at(local_days day, std::chrono::seconds at, const tz::zone& zone)
{
    // `transition`: a time in a gap is due where the gap starts, the first instant the wall
    // clock has passed it; `earliest`: a repeated time is due its first time round.
    auto due = zone.to_utc(day + days{1} + at, tz::resolve_policy{tz::gap_policy::transition,
                                                                  tz::overlap_policy::earliest});
    return *due; // neither policy rejects
}

local_days latest_due_day(sys_seconds now, std::chrono::seconds at, const tz::zone& zone)
{
    auto today = std::chrono::floor<days>(zone.to_local(now));
    auto yesterday = today - days{1};
    return export_due_at(yesterday, at, zone) <= now ? yesterday : yesterday - days{1};
}

std::vector<local_days> export_due_days(std::optional<local_days> last_completed, sys_seconds now,
                                        std::chrono::seconds at, const tz::zone& zone, int window)
{
    auto latest = latest_due_day(now, at, zone);
    if (!last_completed) {
        return {latest};
    }
    auto first = std::max(*last_completed + days{1}, latest - days{std::max(window, 1) - 1});
    std::vector<local_days> due;
    for (auto day = first; day <= latest; day += days{1}) {
        due.push_back(day);
    }
    return due;
}

export_next next_export(std::optional<local_days> last_completed, sys_seconds now,
                        std::chrono::seconds at, const tz::zone& zone, int window)
{
    auto due = export_due_days(last_completed, now, at, zone, window);
    if (!due.empty()) {
        return {due.front(), export_due_at(due.front(), at, zone)};
    }
    // Nothing due: last_completed is the latest due day (or later, after the clock went back).
    auto day = *last_completed + days{1};
    return {day, export_due_at(day, at, zone)};
}

} // namespace adms::server

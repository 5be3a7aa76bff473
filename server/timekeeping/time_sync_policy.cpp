#include "server/timekeeping/time_sync_policy.hpp"

#include "protocol/zk_time.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace adms::server {
namespace {

using std::chrono::days;
using std::chrono::local_days;
using std::chrono::minutes;
using std::chrono::sys_seconds;

// Gaps resolve to where they end, overlaps to the first pass: each local date gets exactly one
// occurrence, and never nullopt.
constexpr tz::resolve_policy schedule_policy{tz::gap_policy::transition,
                                             tz::overlap_policy::earliest};

// How many local dates around `now` are tried. Offsets lie within about +-15 h, so the
// occurrence of the date three days before now's local date is always before `now` (and three
// days after, after it); a week leaves room for a skipped date (Pacific/Apia 2011-12-30).
constexpr int search_days = 7;

// `daily_at` taken modulo 24 h, into [00:00, 24:00).
minutes time_of_day(minutes daily_at)
{
    constexpr minutes day{24 * 60};
    auto m = daily_at % day;
    return m < minutes{0} ? m + day : m;
}

// The local date of `now` in `zone`.
local_days local_date(const tz::zone& zone, sys_seconds now)
{
    return std::chrono::floor<days>(zone.to_local(now));
}

} // namespace

std::string_view describe(sync_reason reason)
{
    switch (reason) {
    case sync_reason::first_contact:
        return "first contact";
    case sync_reason::boot:
        return "boot";
    case sync_reason::dst_change:
        return "DST change";
    case sync_reason::daily_schedule:
        return "daily schedule";
    case sync_reason::interval:
        return "interval";
    case sync_reason::on_demand:
        return "on demand";
    }
    return "unknown";
}

sys_seconds daily_occurrence(const tz::zone& zone, minutes daily_at, local_days day)
{
    auto wall = std::chrono::local_seconds{day} + time_of_day(daily_at);
    // The policy rejects nothing; the fallback only keeps this free of .value().
    return zone.to_utc(wall, schedule_policy).value_or(zone.classify(wall).first);
}

sys_seconds previous_daily_occurrence(const tz::zone& zone, minutes daily_at, sys_seconds now)
{
    // Why several dates and not just "today, else yesterday": around a transition the
    // occurrences of neighbouring local dates can fall on either side of `now`.
    auto today = local_date(zone, now);
    std::optional<sys_seconds> best;
    for (int k = 1; k >= -search_days; --k) {
        auto at = daily_occurrence(zone, daily_at, today + days{k});
        if (at <= now && (!best || at > *best)) {
            best = at;
        }
    }
    // Only at the ends of the supported range (the zone clamps) can nothing be before `now`.
    return best.value_or(now);
}

sys_seconds next_daily_occurrence(const tz::zone& zone, minutes daily_at, sys_seconds now)
{
    auto today = local_date(zone, now);
    std::optional<sys_seconds> best;
    sys_seconds latest = sys_seconds::min();
    for (int k = -1; k <= search_days; ++k) {
        auto at = daily_occurrence(zone, daily_at, today + days{k});
        latest = std::max(latest, at);
        if (at > now && (!best || at < *best)) {
            best = at;
        }
    }
    // Only at the ends of the supported range (the zone clamps) can nothing be after `now`.
    return best.value_or(latest);
}

bool utc_offset_changed(const tz::zone& zone, sys_seconds from, sys_seconds to)
{
    if (from >= to) {
        return false;
    }
    for (auto t = zone.next_transition(from); t && t->at <= to; t = zone.next_transition(t->at)) {
        if (t->offset_before != t->offset_after) {
            return true;
        }
    }
    return false;
}

std::optional<sync_reason> periodic_sync_due(const device_sync_state& state,
                                             const sync_schedule& schedule, const tz::zone& zone,
                                             sys_seconds now)
{
    if (!state.last_sync) {
        return sync_reason::first_contact;
    }
    auto last = *state.last_sync;
    if (last > now) {
        // The server's clock was stepped back: the last sync sent a wrong time.
        return sync_reason::daily_schedule;
    }
    if (utc_offset_changed(zone, last, now)) {
        return sync_reason::dst_change;
    }
    if (previous_daily_occurrence(zone, schedule.daily_at, now) > last) {
        return sync_reason::daily_schedule;
    }
    if (schedule.interval && *schedule.interval > minutes{0} && now - last >= *schedule.interval) {
        return sync_reason::interval;
    }
    return std::nullopt;
}

std::string time_sync_command(std::string_view verb, std::chrono::local_seconds device_local)
{
    auto encoded = protocol::encode_zk_datetime(device_local);
    if (!encoded) {
        return {};
    }
    return fmt::format("{} DateTime={}", verb, *encoded);
}

sys_seconds round_to_second(std::chrono::system_clock::time_point time)
{
    using std::chrono::seconds;
    // Split into whole seconds and a remainder in [0, 1 s) without converting whole seconds
    // back to the clock's unit, which could overflow at the ends of its range.
    auto since_epoch = time.time_since_epoch();
    auto whole = std::chrono::duration_cast<seconds>(since_epoch); // toward zero
    auto rest = since_epoch - std::chrono::duration_cast<decltype(since_epoch)>(whole);
    if (rest < decltype(rest)::zero()) {
        rest += seconds{1};
        whole -= seconds{1};
    }
    if (rest >= std::chrono::milliseconds{500}) {
        whole += seconds{1};
    }
    return sys_seconds{whole};
}

} // namespace adms::server

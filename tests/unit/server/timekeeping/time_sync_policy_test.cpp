#include "server/timekeeping/time_sync_policy.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

using namespace std::chrono;
using namespace adms::server;
using adms::tz::zone;

namespace {

// A zone from the system database; fails the test when it is missing.
zone real_zone(std::string_view name)
{
    auto found = adms::tz::locate_zone(name);
    INFO(found.error);
    REQUIRE(found);
    return *found.value;
}

// What a server polling every minute in [from, to) would queue: each due sync, recorded as sent.
std::vector<std::pair<sys_seconds, sync_reason>> simulate(const zone& z,
                                                          const sync_schedule& schedule,
                                                          sys_seconds last_sync, sys_seconds from,
                                                          sys_seconds to)
{
    std::vector<std::pair<sys_seconds, sync_reason>> syncs;
    device_sync_state state{last_sync};
    for (auto now = from; now < to; now += minutes{1}) {
        if (auto reason = periodic_sync_due(state, schedule, z, now)) {
            syncs.emplace_back(now, *reason);
            state.last_sync = now;
        }
    }
    return syncs;
}

using sync_list = std::vector<std::pair<sys_seconds, sync_reason>>;

} // namespace

TEST_CASE("Each sync reason has its human text", "[time_sync]")
{
    CHECK(describe(sync_reason::first_contact) == "first contact");
    CHECK(describe(sync_reason::boot) == "boot");
    CHECK(describe(sync_reason::dst_change) == "DST change");
    CHECK(describe(sync_reason::daily_schedule) == "daily schedule");
    CHECK(describe(sync_reason::interval) == "interval");
    CHECK(describe(sync_reason::on_demand) == "on demand");
}

TEST_CASE("The default schedule is daily at 03:00 with no interval", "[time_sync]")
{
    sync_schedule schedule;
    CHECK(schedule.daily_at == 3h);
    CHECK_FALSE(schedule.interval);
}

TEST_CASE("A device never synced is due for first contact", "[time_sync]")
{
    auto riyadh = real_zone("Asia/Riyadh");
    auto now = sys_days{2025y / June / 1} + 12h;
    CHECK(periodic_sync_due(device_sync_state{}, sync_schedule{}, riyadh, now) ==
          sync_reason::first_contact);
}

TEST_CASE("The daily sync in Riyadh is due from 03:00 local, 00:00 UTC", "[time_sync]")
{
    auto riyadh = real_zone("Asia/Riyadh");
    sync_schedule schedule; // 03:00
    // Last synced at midnight local on June 1 (21:00 UTC the day before).
    device_sync_state state{sys_days{2025y / June / 1} - 3h};

    CHECK_FALSE(periodic_sync_due(state, schedule, riyadh, sys_days{2025y / June / 1} - 1s));
    CHECK(periodic_sync_due(state, schedule, riyadh, sys_days{2025y / June / 1}) ==
          sync_reason::daily_schedule);
    CHECK(periodic_sync_due(state, schedule, riyadh, sys_days{2025y / June / 1} + 1s) ==
          sync_reason::daily_schedule);
    CHECK(periodic_sync_due(state, schedule, riyadh, sys_days{2025y / June / 1} + 20h) ==
          sync_reason::daily_schedule);
}

TEST_CASE("The daily sync is not due twice on the same day", "[time_sync]")
{
    auto riyadh = real_zone("Asia/Riyadh");
    sync_schedule schedule;
    // Synced at the occurrence itself: the same occurrence is not due again.
    device_sync_state state{sys_days{2025y / June / 1}};
    CHECK_FALSE(periodic_sync_due(state, schedule, riyadh, sys_days{2025y / June / 1}));
    CHECK_FALSE(periodic_sync_due(state, schedule, riyadh, sys_days{2025y / June / 1} + 12h));
    CHECK_FALSE(periodic_sync_due(state, schedule, riyadh, sys_days{2025y / June / 2} - 1s));
    CHECK(periodic_sync_due(state, schedule, riyadh, sys_days{2025y / June / 2}) ==
          sync_reason::daily_schedule);

    // A whole week of polling every minute: one sync a day, each at 00:00 UTC.
    auto from = sys_days{2025y / June / 1} + 1min;
    auto syncs = simulate(riyadh, schedule, sys_days{2025y / June / 1}, from,
                          sys_days{2025y / June / 8} + 12h);
    sync_list expected;
    for (int d = 2; d <= 8; ++d) {
        expected.emplace_back(sys_days{2025y / June / day(d)}, sync_reason::daily_schedule);
    }
    CHECK(syncs == expected);
}

TEST_CASE("Daily occurrences in Riyadh are found before and after now", "[time_sync]")
{
    auto riyadh = real_zone("Asia/Riyadh");
    auto noon = sys_days{2025y / June / 1} + 12h;
    CHECK(previous_daily_occurrence(riyadh, 3h, noon) == sys_days{2025y / June / 1});
    CHECK(next_daily_occurrence(riyadh, 3h, noon) == sys_days{2025y / June / 2});
    // At the occurrence: it is the previous one (at or before), not the next (strictly after).
    CHECK(previous_daily_occurrence(riyadh, 3h, sys_days{2025y / June / 1}) ==
          sys_days{2025y / June / 1});
    CHECK(next_daily_occurrence(riyadh, 3h, sys_days{2025y / June / 1}) ==
          sys_days{2025y / June / 2});
    // Just before it (02:59:59 local): the day before's.
    CHECK(previous_daily_occurrence(riyadh, 3h, sys_days{2025y / June / 1} - 1s) ==
          sys_days{2025y / May / 31});
    CHECK(daily_occurrence(riyadh, 3h, local_days{2025y / June / 1}) == sys_days{2025y / June / 1});
}

TEST_CASE("A daily time outside 00:00-24:00 wraps around the day", "[time_sync]")
{
    auto riyadh = real_zone("Asia/Riyadh");
    auto noon = sys_days{2025y / June / 1} + 12h;
    // 24:30 is 00:30 local = 21:30 UTC the day before.
    CHECK(previous_daily_occurrence(riyadh, 24h + 30min, noon) ==
          sys_days{2025y / May / 31} + 21h + 30min);
    // -00:30 is 23:30 local = 20:30 UTC the same day.
    CHECK(previous_daily_occurrence(riyadh, -30min, noon) ==
          sys_days{2025y / May / 31} + 20h + 30min);
    CHECK(next_daily_occurrence(riyadh, -30min, noon) == sys_days{2025y / June / 1} + 20h + 30min);
    // The occurrence of a date stays on that date.
    CHECK(daily_occurrence(riyadh, -30min, local_days{2025y / June / 1}) ==
          sys_days{2025y / June / 1} + 20h + 30min);
    CHECK(daily_occurrence(riyadh, 24h + 30min, local_days{2025y / June / 1}) ==
          sys_days{2025y / May / 31} + 21h + 30min);
}

TEST_CASE("Daily occurrences are found where the clock went back a whole day", "[time_sync]")
{
    // Juneau on 1867-10-19 00:31:13 UTC went from LMT +15:02:19 to LMT -8:57:41: local
    // 1867-10-18 15:33:32 to 10-19 15:33:32 happened twice. The 03:00 of the repeated 10-19
    // counts on its first pass (10-18 11:57:41 UTC), so the next date's occurrence can be the
    // latest one before now.
    auto juneau = real_zone("America/Juneau");
    auto change = sys_days{1867y / October / 19} + 31min + 13s;
    REQUIRE(juneau.utc_offset(change - 1s) == 15h + 2min + 19s);
    REQUIRE(juneau.utc_offset(change) == -(8h + 57min + 41s));
    auto now = sys_days{1867y / October / 19} + 57min + 41s; // 10-18 16:00 local, second pass
    auto first_pass_of_19th = sys_days{1867y / October / 18} + 11h + 57min + 41s;
    CHECK(previous_daily_occurrence(juneau, 3h, now) == first_pass_of_19th);
    CHECK(previous_daily_occurrence(juneau, 3h, change - 1s) == first_pass_of_19th);
    CHECK(next_daily_occurrence(juneau, 3h, now) ==
          sys_days{1867y / October / 20} + 11h + 57min + 41s);
}

TEST_CASE("A daily time in New York's spring-forward gap fires when the gap ends", "[time_sync]")
{
    auto new_york = real_zone("America/New_York");
    auto gap_end = sys_days{2025y / March / 9} + 7h; // 02:00 EST becomes 03:00 EDT
    auto at = 2h + 30min;
    // 2025-03-08 02:30 EST = 07:30 UTC; 2025-03-10 02:30 EDT = 06:30 UTC.
    auto day_before = sys_days{2025y / March / 8} + 7h + 30min;
    auto day_after = sys_days{2025y / March / 10} + 6h + 30min;

    CHECK(daily_occurrence(new_york, at, local_days{2025y / March / 9}) == gap_end);
    CHECK(previous_daily_occurrence(new_york, at, gap_end - 1s) == day_before);
    CHECK(previous_daily_occurrence(new_york, at, gap_end) == gap_end);
    CHECK(previous_daily_occurrence(new_york, at, gap_end + 1h) == gap_end);
    CHECK(next_daily_occurrence(new_york, at, gap_end - 1s) == gap_end);
    CHECK(next_daily_occurrence(new_york, at, gap_end) == day_after);
}

TEST_CASE("A 02:30 schedule syncs once on New York's spring-forward day", "[time_sync]")
{
    auto new_york = real_zone("America/New_York");
    sync_schedule schedule{2h + 30min, std::nullopt};
    auto gap_end = sys_days{2025y / March / 9} + 7h;
    // Synced at the day before's 02:30 EST; poll from then to the day after's 02:30 EDT
    // (06:30 UTC), exclusive. The gap's end is also the DST change, which takes priority.
    auto syncs = simulate(new_york, schedule, sys_days{2025y / March / 8} + 7h + 30min,
                          sys_days{2025y / March / 8} + 7h + 31min,
                          sys_days{2025y / March / 10} + 6h + 30min);
    CHECK(syncs == sync_list{{gap_end, sync_reason::dst_change}});
}

TEST_CASE("A 01:30 schedule syncs once on New York's fall-back day", "[time_sync]")
{
    auto new_york = real_zone("America/New_York");
    sync_schedule schedule{1h + 30min, std::nullopt};
    auto first_pass = sys_days{2025y / November / 2} + 5h + 30min;  // 01:30 EDT
    auto transition = sys_days{2025y / November / 2} + 6h;          // 02:00 EDT -> 01:00 EST
    auto second_pass = sys_days{2025y / November / 2} + 6h + 30min; // 01:30 EST

    CHECK(daily_occurrence(new_york, 1h + 30min, local_days{2025y / November / 2}) == first_pass);
    CHECK(previous_daily_occurrence(new_york, 1h + 30min, second_pass + 15min) == first_pass);
    CHECK(next_daily_occurrence(new_york, 1h + 30min, first_pass) ==
          sys_days{2025y / November / 3} + 6h + 30min); // 01:30 EST the next day

    // Synced at the day before's 01:30 EDT (05:30 UTC); poll until the next day's 01:30 EST.
    auto syncs = simulate(new_york, schedule, sys_days{2025y / November / 1} + 5h + 30min,
                          sys_days{2025y / November / 1} + 5h + 31min,
                          sys_days{2025y / November / 3} + 6h + 30min);
    // The schedule fires on the first 01:30 only; the DST change half an hour later is its own
    // sync; the repeated 01:30 (second_pass) brings nothing.
    CHECK(syncs == sync_list{{first_pass, sync_reason::daily_schedule},
                             {transition, sync_reason::dst_change}});
}

TEST_CASE("A DST change in New York since the last sync makes a sync due", "[time_sync]")
{
    auto new_york = real_zone("America/New_York");
    auto change = sys_days{2025y / March / 9} + 7h;
    sync_schedule schedule{2h + 30min, std::nullopt};
    device_sync_state before{change - 1s};

    CHECK(periodic_sync_due(before, schedule, new_york, change) == sync_reason::dst_change);
    CHECK(periodic_sync_due(before, schedule, new_york, change + 3h) == sync_reason::dst_change);
    // Still before the change: nothing due (the last 02:30 was the day before's).
    CHECK_FALSE(periodic_sync_due(device_sync_state{change - 2s}, schedule, new_york, change - 1s));
    // Synced at the change or after it: the new offset was already in force.
    CHECK_FALSE(periodic_sync_due(device_sync_state{change}, schedule, new_york, change + 3h));

    CHECK(utc_offset_changed(new_york, change - 1s, change));
    CHECK_FALSE(utc_offset_changed(new_york, change, change + 24h));
    CHECK_FALSE(utc_offset_changed(new_york, change - 24h, change - 1s));
    // Fall back too.
    auto fall_back = sys_days{2025y / November / 2} + 6h;
    CHECK(utc_offset_changed(new_york, fall_back - 1h, fall_back + 1h));
    // An empty or reversed range has no change.
    CHECK_FALSE(utc_offset_changed(new_york, change + 1s, change - 1s));
}

TEST_CASE("Riyadh has no DST change to sync for", "[time_sync]")
{
    auto riyadh = real_zone("Asia/Riyadh");
    auto instant = sys_days{2025y / March / 9} + 7h;
    // 03:00 schedule = 00:00 UTC; both instants are past it, and the last sync too.
    device_sync_state state{instant - 1s};
    CHECK_FALSE(periodic_sync_due(state, sync_schedule{}, riyadh, instant));
    CHECK_FALSE(utc_offset_changed(riyadh, sys_days{2000y / January / 1}, sys_days{2030y / 1 / 1}));
}

TEST_CASE("A change of the DST flag alone is not a DST change to sync for", "[time_sync]")
{
    // London left DST on 1968-10-27 but stayed at +1:00 (British Standard Time).
    auto london = real_zone("Europe/London");
    auto from = sys_days{1968y / October / 20};
    auto to = sys_days{1968y / November / 3};
    auto flag_change = london.next_transition(from);
    REQUIRE(flag_change);
    REQUIRE(flag_change->at < to);
    REQUIRE(flag_change->dst_before != flag_change->dst_after);
    REQUIRE(flag_change->offset_before == flag_change->offset_after);
    CHECK_FALSE(utc_offset_changed(london, from, to));
}

TEST_CASE("A 6 h interval is due 6 h after the last sync", "[time_sync]")
{
    auto riyadh = real_zone("Asia/Riyadh");
    sync_schedule schedule{3h, 6h};
    auto last = sys_days{2025y / June / 1} + 1h; // 04:00 local, after the day's 03:00
    device_sync_state state{last};

    CHECK_FALSE(periodic_sync_due(state, schedule, riyadh, last + 6h - 1s));
    CHECK(periodic_sync_due(state, schedule, riyadh, last + 6h) == sync_reason::interval);
    CHECK(periodic_sync_due(state, schedule, riyadh, last + 6h + 1s) == sync_reason::interval);

    // Without the interval nothing is due until the next 03:00.
    CHECK_FALSE(periodic_sync_due(state, sync_schedule{3h, std::nullopt}, riyadh, last + 6h));
    // A zero or negative interval is off, not "always".
    CHECK_FALSE(periodic_sync_due(state, sync_schedule{3h, 0min}, riyadh, last + 1h));
    CHECK_FALSE(periodic_sync_due(state, sync_schedule{3h, -6h}, riyadh, last + 1h));

    // Polling every minute for a day: 10:00, 16:00 and 22:00 UTC by interval, 00:00 by schedule,
    // then 06:00 by interval again (counted from the scheduled sync).
    auto syncs = simulate(riyadh, schedule, last, last + 1min, sys_days{2025y / June / 2} + 7h);
    CHECK(syncs == sync_list{{last + 6h, sync_reason::interval},
                             {last + 12h, sync_reason::interval},
                             {last + 18h, sync_reason::interval},
                             {sys_days{2025y / June / 2}, sync_reason::daily_schedule},
                             {sys_days{2025y / June / 2} + 6h, sync_reason::interval}});
}

TEST_CASE("When several syncs are due the DST change wins, then the schedule", "[time_sync]")
{
    auto new_york = real_zone("America/New_York");
    sync_schedule schedule{2h + 30min, 6h};
    // Synced 2025-03-08 08:00 UTC, after that day's 02:30 EST; at 2025-03-09 12:00 UTC the DST
    // change (07:00), the schedule (07:00, in the gap) and the interval (28 h) are all due.
    device_sync_state state{sys_days{2025y / March / 8} + 8h};
    auto now = sys_days{2025y / March / 9} + 12h;
    CHECK(periodic_sync_due(state, schedule, new_york, now) == sync_reason::dst_change);

    // No DST change in Riyadh: the schedule beats the interval.
    auto riyadh = real_zone("Asia/Riyadh");
    device_sync_state riyadh_state{sys_days{2025y / June / 1} + 1h};
    CHECK(periodic_sync_due(riyadh_state, sync_schedule{3h, 6h}, riyadh,
                            sys_days{2025y / June / 2} + 1h) == sync_reason::daily_schedule);
    // And without the schedule being due, the interval shows.
    CHECK(periodic_sync_due(riyadh_state, sync_schedule{3h, 6h}, riyadh,
                            sys_days{2025y / June / 1} + 23h) == sync_reason::interval);
}

TEST_CASE("A last sync later than now (the clock was stepped back) resyncs once", "[time_sync]")
{
    auto riyadh = real_zone("Asia/Riyadh");
    auto now = sys_days{2025y / June / 1} + 12h;
    device_sync_state state{now + 1h};
    CHECK(periodic_sync_due(state, sync_schedule{}, riyadh, now) == sync_reason::daily_schedule);
    state.last_sync = now;
    CHECK_FALSE(periodic_sync_due(state, sync_schedule{}, riyadh, now + 1min));
}

TEST_CASE("The time-sync command carries the ZK-encoded local time", "[time_sync]")
{
    auto t = local_days{2018y / February / 22} + 14h + 54min + 54s;
    CHECK(time_sync_command("SET OPTIONS", t) == "SET OPTIONS DateTime=583080894");
    CHECK(time_sync_command("SET OPTION", t) == "SET OPTION DateTime=583080894");
    CHECK(time_sync_command("SET OPTIONS", local_days{2018y / February / 22} + 6h + 36min + 30s) ==
          "SET OPTIONS DateTime=583050990");
    CHECK(time_sync_command("SET OPTIONS", local_days{2000y / January / 1}) ==
          "SET OPTIONS DateTime=0");
}

TEST_CASE("A time before 2000 gives no time-sync command", "[time_sync]")
{
    CHECK(time_sync_command("SET OPTIONS", local_days{2000y / January / 1} - 1s).empty());
    CHECK(time_sync_command("SET OPTIONS", local_days{1970y / January / 1}).empty());
}

TEST_CASE("Times round to the nearest second, halves up", "[time_sync]")
{
    auto noon = sys_days{2025y / June / 1} + 12h;
    CHECK(round_to_second(noon) == noon);
    CHECK(round_to_second(noon + 499ms) == noon);
    CHECK(round_to_second(noon + 499999999ns) == noon);
    CHECK(round_to_second(noon + 500ms) == noon + 1s);
    CHECK(round_to_second(noon + 999999999ns) == noon + 1s);
    // Rounding up carries into the next day.
    CHECK(round_to_second(sys_days{2025y / June / 1} - 500ms) == sys_days{2025y / June / 1});
    CHECK(round_to_second(sys_days{2025y / June / 1} - 501ms) == sys_days{2025y / June / 1} - 1s);
}

TEST_CASE("Rounding around and before 1970 goes to the nearest second, not toward zero",
          "[time_sync]")
{
    sys_seconds epoch{};
    CHECK(round_to_second(system_clock::time_point{400ms}) == epoch);
    CHECK(round_to_second(system_clock::time_point{-400ms}) == epoch);
    CHECK(round_to_second(system_clock::time_point{-500ms}) == epoch);
    CHECK(round_to_second(system_clock::time_point{-501ms}) == epoch - 1s);
    CHECK(round_to_second(system_clock::time_point{-1400ms}) == epoch - 1s);
    CHECK(round_to_second(system_clock::time_point{-1500ms}) == epoch - 1s);
    CHECK(round_to_second(system_clock::time_point{-1600ms}) == epoch - 2s);
}

TEST_CASE("Rounding works at the ends of the clock's range", "[time_sync]")
{
    using rep = system_clock::duration::rep;
    using period = system_clock::duration::period;
    // Whole seconds and remainder of the largest and smallest time points, computed apart.
    static_assert(period::num == 1);
    constexpr rep per_second = period::den;
    constexpr rep max = std::numeric_limits<rep>::max();
    constexpr rep min = std::numeric_limits<rep>::min();
    auto max_up = (max % per_second) * 2 >= per_second ? 1 : 0;
    // min = -(q * per_second + r): nearest is -q - (r > per_second / 2 ? 1 : 0).
    auto min_q = -(min / per_second);
    auto min_r = -(min % per_second);
    auto min_down = min_r * 2 > per_second ? 1 : 0;
    CHECK(round_to_second(system_clock::time_point::max()) ==
          sys_seconds{seconds{max / per_second + max_up}});
    CHECK(round_to_second(system_clock::time_point::min()) ==
          sys_seconds{seconds{-min_q - min_down}});
}

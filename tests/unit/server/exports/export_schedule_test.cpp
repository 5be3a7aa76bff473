// The schedule of the payroll exports against the real zone database: when a day's file is due,
// which days a start catches up on, and the DST days on which `at` is skipped or repeated.
#include "server/exports/export_schedule.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono;
using adms::server::export_catch_up_days;
using adms::server::export_due_at;
using adms::server::export_due_days;
using adms::server::latest_due_day;
using adms::server::next_export;

namespace {

adms::tz::zone zone(std::string_view name)
{
    return *adms::tz::locate_zone(name).value;
}

// A UTC instant from its parts.
sys_seconds utc(year_month_day day, hours h, minutes m = 0min, seconds s = 0s)
{
    return sys_days{day} + h + m + s;
}

std::vector<local_days> days_from(local_days first, int count)
{
    std::vector<local_days> out;
    for (int i = 0; i < count; ++i) {
        out.push_back(first + days{i});
    }
    return out;
}

} // namespace

TEST_CASE("A day's file is due at `at` on the next day in the server's zone", "[exports]")
{
    auto berlin = zone("Europe/Berlin");
    // Winter, UTC+1: 2026-11-30 is due at 2026-12-01 01:30 CET = 00:30 UTC.
    CHECK(export_due_at(local_days{2026y / November / 30}, 1h + 30min, berlin) ==
          utc(2026y / December / 1, 0h, 30min));
    // Summer, UTC+2.
    CHECK(export_due_at(local_days{2026y / July / 14}, 1h + 30min, berlin) ==
          utc(2026y / July / 14, 23h, 30min));
    // Midnight, and a time with seconds.
    CHECK(export_due_at(local_days{2026y / July / 14}, 0s, zone("UTC")) ==
          utc(2026y / July / 15, 0h));
    CHECK(export_due_at(local_days{2026y / July / 14}, 23h + 59min + 59s, zone("Asia/Kolkata")) ==
          utc(2026y / July / 15, 18h, 29min, 59s));
}

TEST_CASE("On a DST day `at` is due the first time the wall clock reaches it", "[exports][dst]")
{
    auto berlin = zone("Europe/Berlin");
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST (a 23-hour day); 02:30 never shows. The file of
    // the 28th is due when the gap ends, 03:00 CEST = 01:00 UTC.
    CHECK(export_due_at(local_days{2026y / March / 28}, 2h + 30min, berlin) ==
          utc(2026y / March / 29, 1h));
    // A time after the gap is an ordinary CEST time.
    CHECK(export_due_at(local_days{2026y / March / 28}, 3h + 30min, berlin) ==
          utc(2026y / March / 29, 1h, 30min));
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET (a 25-hour day); 02:30 shows twice. Due the
    // first time: 02:30 CEST = 00:30 UTC.
    CHECK(export_due_at(local_days{2026y / October / 24}, 2h + 30min, berlin) ==
          utc(2026y / October / 25, 0h, 30min));
    // New York's gap (2026-03-08 02:00 -> 03:00) the same way.
    CHECK(export_due_at(local_days{2026y / March / 7}, 2h + 15min, zone("America/New_York")) ==
          utc(2026y / March / 8, 7h));
}

TEST_CASE("The latest due day turns over exactly at `at`", "[exports]")
{
    auto berlin = zone("Europe/Berlin");
    auto at = 1h + 30min;
    // 2026-12-01 01:29:59 CET: the 30th is not due yet.
    CHECK(latest_due_day(utc(2026y / December / 1, 0h, 29min, 59s), at, berlin) ==
          local_days{2026y / November / 29});
    CHECK(latest_due_day(utc(2026y / December / 1, 0h, 30min), at, berlin) ==
          local_days{2026y / November / 30});
    // Late in the local day, and just after local midnight (UTC is still the day before).
    CHECK(latest_due_day(utc(2026y / December / 1, 22h, 59min), at, berlin) ==
          local_days{2026y / November / 30});
    CHECK(latest_due_day(utc(2026y / December / 1, 23h, 1min), at, berlin) ==
          local_days{2026y / November / 30});
    // Across the 23- and 25-hour days the turnover stays at the first 02:30 on the wall clock.
    auto at_gap = 2h + 30min;
    CHECK(latest_due_day(utc(2026y / March / 29, 0h, 59min, 59s), at_gap, berlin) ==
          local_days{2026y / March / 27});
    CHECK(latest_due_day(utc(2026y / March / 29, 1h), at_gap, berlin) ==
          local_days{2026y / March / 28});
    CHECK(latest_due_day(utc(2026y / October / 25, 0h, 29min, 59s), at_gap, berlin) ==
          local_days{2026y / October / 23});
    CHECK(latest_due_day(utc(2026y / October / 25, 0h, 30min), at_gap, berlin) ==
          local_days{2026y / October / 24});
    // The second 02:30 (CET) of the 25th changes nothing.
    CHECK(latest_due_day(utc(2026y / October / 25, 1h, 30min), at_gap, berlin) ==
          local_days{2026y / October / 24});
}

TEST_CASE("Due days: the missed days oldest first, none twice, a new export only the latest",
          "[exports]")
{
    auto berlin = zone("Europe/Berlin");
    auto at = 1h + 30min;
    auto now = utc(2026y / December / 1, 6h); // 07:00 CET: the 30th is due
    local_days nov30{2026y / November / 30};

    // A new export writes the latest due day only: it does not fill the past.
    CHECK(export_due_days(std::nullopt, now, at, berlin) == std::vector<local_days>{nov30});
    // Up to date: nothing.
    CHECK(export_due_days(nov30, now, at, berlin).empty());
    // Completed ahead of the latest due day (the clock went back): nothing.
    CHECK(export_due_days(nov30 + days{1}, now, at, berlin).empty());
    // Down for three days: each missed day, oldest first.
    CHECK(export_due_days(nov30 - days{3}, now, at, berlin) == days_from(nov30 - days{2}, 3));
    // Down longer than the window: the most recent `window` days only.
    CHECK(export_due_days(nov30 - days{100}, now, at, berlin) ==
          days_from(nov30 - days{export_catch_up_days - 1}, export_catch_up_days));
    CHECK(export_due_days(nov30 - days{10}, now, at, berlin, 4) == days_from(nov30 - days{3}, 4));
    CHECK(export_due_days(nov30 - days{10}, now, at, berlin, 1) == std::vector<local_days>{nov30});
    // Exactly at the edge of the window: every missed day.
    CHECK(export_due_days(nov30 - days{export_catch_up_days}, now, at, berlin) ==
          days_from(nov30 - days{export_catch_up_days - 1}, export_catch_up_days));
    // Across the DST days: the 23- and 25-hour days are one file each like any other.
    auto after_spring = utc(2026y / March / 30, 12h);
    CHECK(export_due_days(local_days{2026y / March / 27}, after_spring, at, berlin) ==
          days_from(local_days{2026y / March / 28}, 2));
    auto after_autumn = utc(2026y / October / 26, 12h);
    CHECK(export_due_days(local_days{2026y / October / 23}, after_autumn, at, berlin) ==
          days_from(local_days{2026y / October / 24}, 2));
}

TEST_CASE("The next scheduled file: the first due day (late), else the day after the last",
          "[exports]")
{
    auto berlin = zone("Europe/Berlin");
    auto at = 1h + 30min;
    auto now = utc(2026y / December / 1, 6h);
    local_days nov30{2026y / November / 30};
    // Up to date: the 1st, due on the 2nd at 01:30 CET.
    CHECK(next_export(nov30, now, at, berlin) ==
          adms::server::export_next{nov30 + days{1}, utc(2026y / December / 2, 0h, 30min)});
    // Behind: the oldest missed day, due in the past (it runs now).
    auto late = next_export(nov30 - days{2}, now, at, berlin);
    CHECK(late.day == nov30 - days{1});
    CHECK(late.due_at == utc(2026y / November / 30, 0h, 30min));
    CHECK(late.due_at < now);
    // New: the latest due day, already due.
    CHECK(next_export(std::nullopt, now, at, berlin).day == nov30);
    // Before today's `at`, up to date: the day before yesterday was the last; yesterday is next,
    // due today at `at`.
    auto early = utc(2026y / December / 1, 0h); // 01:00 CET
    CHECK(next_export(nov30 - days{1}, early, at, berlin) ==
          adms::server::export_next{nov30, utc(2026y / December / 1, 0h, 30min)});
}

#include "tz/zone.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

// Expected instants are written out from the rules (sys_days{...} + hours), never computed by the
// code under test. The zone data is the system's /usr/share/zoneinfo.

using namespace std::chrono;
namespace tz = adms::tz;

namespace {

tz::zone must_locate(std::string_view name)
{
    auto found = tz::locate_zone(name);
    INFO("zone " << name << ": " << found.error);
    REQUIRE(found);
    return *found.value;
}

local_seconds local(year_month_day date, hours h, minutes m = minutes{0}, seconds s = seconds{0})
{
    return local_days{date} + h + m + s;
}

constexpr tz::resolve_policy shift_earliest{tz::gap_policy::shift_forward,
                                            tz::overlap_policy::earliest};
constexpr tz::resolve_policy transition_latest{tz::gap_policy::transition,
                                               tz::overlap_policy::latest};
constexpr tz::resolve_policy reject_all{tz::gap_policy::reject, tz::overlap_policy::reject};

} // namespace

// Lookup

TEST_CASE("locate_zone finds canonical IANA names", "[tz][lookup]")
{
    for (std::string_view name : {"Asia/Shanghai", "America/New_York", "Europe/London", "Etc/UTC",
                                  "UTC", "Australia/Lord_Howe", "America/Argentina/Buenos_Aires"}) {
        auto found = tz::locate_zone(name);
        INFO(name);
        REQUIRE(found);
        CHECK(found.error.empty());
        CHECK(found.value->name() == name);
    }
}

TEST_CASE("locate_zone resolves links to zones that behave like their targets", "[tz][lookup]")
{
    const std::pair<std::string_view, std::string_view> links[] = {
        {"US/Eastern", "America/New_York"},
        {"Asia/Calcutta", "Asia/Kolkata"},
        {"Asia/Katmandu", "Asia/Kathmandu"},
        {"Australia/NSW", "Australia/Sydney"},
        {"GB", "Europe/London"},
    };
    for (auto [link, target] : links) {
        INFO(link << " -> " << target);
        auto l = must_locate(link);
        auto t = must_locate(target);
        CHECK(l.name() == link);
        for (auto day = sys_days{2025y / January / 1}; day < sys_days{2026y / January / 1};
             day += days{7}) {
            CHECK(l.utc_offset(day) == t.utc_offset(day));
            CHECK(l.is_dst(day) == t.is_dst(day));
        }
    }
}

TEST_CASE("locate_zone with ignore_case finds names in any case", "[tz][lookup]")
{
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"asia/shanghai", "Asia/Shanghai"},
        {"AMERICA/NEW_YORK", "America/New_York"},
        {"us/eastern", "US/Eastern"},
        {"utc", "UTC"},
        {"america/argentina/buenos_aires", "America/Argentina/Buenos_Aires"},
        {"Asia/Shanghai", "Asia/Shanghai"},
    };
    for (auto [asked, canonical] : cases) {
        INFO(asked);
        auto found = tz::locate_zone(asked, tz::name_match::ignore_case);
        REQUIRE(found);
        CHECK(found.value->name() == canonical);
    }
}

TEST_CASE("locate_zone matches exactly by default", "[tz][lookup]")
{
    auto found = tz::locate_zone("asia/shanghai");
    CHECK_FALSE(found);
    CHECK(found.error == "unknown time zone 'asia/shanghai'");
    CHECK_FALSE(tz::locate_zone("asia/shanghai", tz::name_match::exact));
}

TEST_CASE("an unknown zone is an error value that names it", "[tz][lookup]")
{
    for (auto match : {tz::name_match::exact, tz::name_match::ignore_case}) {
        auto found = tz::locate_zone("Mars/Base", match);
        CHECK_FALSE(found);
        CHECK_FALSE(found.value.has_value());
        CHECK(found.error == "unknown time zone 'Mars/Base'");
    }
}

TEST_CASE("empty and odd names are unknown zones and do not crash", "[tz][lookup]")
{
    const std::string odd[] = {
        "",
        " ",
        "/",
        "Asia/",
        "/Asia/Tokyo",
        "Asia//Tokyo",
        "Asia/Tokyo ",
        "../etc/passwd",
        "Asia/../Asia/Tokyo",
        "posix/Asia/Tokyo",
        "right/UTC",
        "posixrules",
        "localtime",
        "Factory",
        "zone.tab",
        "tzdata.zi",
        "America/New_York/extra",
        std::string("Asia/Tokyo\0x", 12),
        "Asia/T\xc3\xb6kyo",
        "*",
        "%s%n",
    };
    for (const auto& name : odd) {
        for (auto match : {tz::name_match::exact, tz::name_match::ignore_case}) {
            INFO("name of " << name.size() << " bytes");
            auto found = tz::locate_zone(name, match);
            CHECK_FALSE(found);
            CHECK(found.error.rfind("unknown time zone '", 0) == 0);
        }
    }
    CHECK(tz::locate_zone("").error == "unknown time zone ''");
}

TEST_CASE("error messages escape control bytes and cut long names", "[tz][lookup]")
{
    CHECK(tz::locate_zone("Bad\nName\x01").error == "unknown time zone 'Bad\\x0aName\\x01'");
    CHECK(tz::locate_zone(std::string("A\0B", 3)).error == "unknown time zone 'A\\x00B'");
    std::string huge(10000, 'x');
    CHECK(tz::locate_zone(huge).error == "unknown time zone '" + std::string(64, 'x') + "'...");
}

TEST_CASE("zone handles compare equal when they refer to the same zone", "[tz][lookup]")
{
    auto a = must_locate("Europe/Paris");
    auto b = must_locate("Europe/Paris");
    auto c = a;
    CHECK(a == b);
    CHECK(a == c);
    CHECK_FALSE(a == must_locate("Europe/Berlin"));
    CHECK(must_locate("Europe/Paris") ==
          *tz::locate_zone("europe/paris", tz::name_match::ignore_case).value);
}

TEST_CASE("resolve_policy has no default: the caller names both choices", "[tz][local]")
{
    STATIC_REQUIRE_FALSE(std::is_default_constructible_v<tz::resolve_policy>);
    STATIC_REQUIRE(std::is_trivially_copyable_v<tz::zone>);
    STATIC_REQUIRE_FALSE(std::is_default_constructible_v<tz::zone>);
}

TEST_CASE("lookups and conversions work from many threads at once", "[tz][lookup]")
{
    std::vector<int> ok(8, 0);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < ok.size(); ++i) {
        threads.emplace_back([&ok, i] {
            auto found = tz::locate_zone("asia/kolkata", tz::name_match::ignore_case);
            ok[i] = found &&
                    found.value->utc_offset(sys_days{2025y / June / 1}) == hours{5} + minutes{30};
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(std::count(ok.begin(), ok.end(), 1) == 8);
}

// Offsets and the protocol values

TEST_CASE("the reference zones give the expected offsets and TimeZone and ServerTZ values",
          "[tz][offset]")
{
    struct row {
        std::string_view zone;
        sys_days day;
        minutes offset;
        bool dst;
        int option;
        std::string_view server_tz;
    };
    const auto winter_north = sys_days{2025y / January / 15};
    const auto summer_north = sys_days{2025y / July / 15};
    const row rows[] = {
        {"Asia/Riyadh", winter_north, minutes{180}, false, 3, "+0300"},
        {"Asia/Riyadh", summer_north, minutes{180}, false, 3, "+0300"},
        {"Asia/Kolkata", summer_north, minutes{330}, false, 330, "+0530"},
        {"Asia/Kathmandu", summer_north, minutes{345}, false, 345, "+0545"},
        {"America/St_Johns", winter_north, minutes{-210}, false, -210, "-0330"},
        {"America/St_Johns", summer_north, minutes{-150}, true, -150, "-0230"},
        {"Etc/UTC", summer_north, minutes{0}, false, 0, "+0000"},
        {"Pacific/Chatham", summer_north, minutes{765}, false, 765, "+1245"},
        {"Pacific/Chatham", winter_north, minutes{825}, true, 825, "+1345"},
        {"America/New_York", winter_north, minutes{-300}, false, -5, "-0500"},
        {"America/New_York", summer_north, minutes{-240}, true, -4, "-0400"},
        {"Pacific/Kiritimati", summer_north, minutes{840}, false, 840, "+1400"},
        {"Australia/Lord_Howe", summer_north, minutes{630}, false, 630, "+1030"},
        {"Australia/Lord_Howe", winter_north, minutes{660}, true, 11, "+1100"},
        {"Asia/Tokyo", summer_north, minutes{540}, false, 9, "+0900"},
        {"Europe/London", winter_north, minutes{0}, false, 0, "+0000"},
        {"Europe/London", summer_north, minutes{60}, true, 1, "+0100"},
        {"America/Sao_Paulo", winter_north, minutes{-180}, false, -3, "-0300"},
    };
    for (const auto& r : rows) {
        INFO(r.zone << " at " << r.day.time_since_epoch().count() << " days");
        auto z = must_locate(r.zone);
        sys_seconds noon = r.day + hours{12};
        CHECK(z.utc_offset(noon) == r.offset);
        CHECK(z.is_dst(noon) == r.dst);
        CHECK(z.time_zone_option(noon) == r.option);
        CHECK(z.server_tz(noon) == r.server_tz);
        CHECK(z.to_local(noon) == local_days{year_month_day{r.day}} + hours{12} + r.offset);
    }
}

TEST_CASE("offsets keep their seconds in historical local mean time", "[tz][offset]")
{
    // Riyadh kept LMT +3:06:52 until 1947-03-14.
    auto riyadh = must_locate("Asia/Riyadh");
    sys_seconds before = sys_days{1947y / March / 13} + hours{20} + minutes{53} + seconds{7};
    CHECK(riyadh.utc_offset(before) == hours{3} + minutes{6} + seconds{52});
    CHECK(riyadh.utc_offset(before + seconds{1}) == hours{3});
    CHECK(riyadh.time_zone_option(before) == 186);
    CHECK(riyadh.server_tz(before) == "+0306");
}

TEST_CASE("the protocol values follow DST at the transition instant", "[tz][offset]")
{
    auto ny = must_locate("America/New_York");
    sys_seconds change = sys_days{2025y / March / 9} + hours{7};
    CHECK(ny.server_tz(change - seconds{1}) == "-0500");
    CHECK(ny.server_tz(change) == "-0400");
    CHECK(ny.time_zone_option(change - seconds{1}) == -5);
    CHECK(ny.time_zone_option(change) == -4);
}

TEST_CASE("to_local crosses New York's 2025 transitions", "[tz][offset]")
{
    auto ny = must_locate("America/New_York");
    sys_seconds spring = sys_days{2025y / March / 9} + hours{7};
    CHECK(ny.to_local(spring - seconds{1}) ==
          local(2025y / March / 9, hours{1}, minutes{59}, seconds{59}));
    CHECK(ny.to_local(spring) == local(2025y / March / 9, hours{3}));
    sys_seconds autumn = sys_days{2025y / November / 2} + hours{6};
    CHECK(ny.to_local(autumn - seconds{1}) ==
          local(2025y / November / 2, hours{1}, minutes{59}, seconds{59}));
    CHECK(ny.to_local(autumn) == local(2025y / November / 2, hours{1}));
}

// Local -> UTC

TEST_CASE("New York's 2025 spring gap is nonexistent and resolved by explicit policy",
          "[tz][local][dst]")
{
    auto ny = must_locate("America/New_York");
    const auto day = 2025y / March / 9;
    const sys_seconds gap_start = sys_days{day} + hours{7};

    auto info = ny.classify(local(day, hours{2}, minutes{30}));
    CHECK(info.kind == tz::local_kind::nonexistent);
    CHECK(info.first == gap_start);
    CHECK(info.second == gap_start);
    CHECK(info.offset_before == hours{-5});
    CHECK(info.offset_after == hours{-4});
    CHECK(info.gap == hours{1});

    auto shifted = ny.to_utc(local(day, hours{2}, minutes{30}), shift_earliest);
    REQUIRE(shifted);
    CHECK(*shifted == sys_days{day} + hours{7} + minutes{30}); // 03:30 EDT
    CHECK(ny.to_local(*shifted) == local(day, hours{3}, minutes{30}));
    auto at_transition = ny.to_utc(local(day, hours{2}, minutes{30}), transition_latest);
    REQUIRE(at_transition);
    CHECK(*at_transition == gap_start);
    CHECK_FALSE(ny.to_utc(local(day, hours{2}, minutes{30}), reject_all));
    CHECK_FALSE(ny.to_utc(local(day, hours{2}, minutes{30}),
                          {tz::gap_policy::reject, tz::overlap_policy::earliest}));
}

TEST_CASE("New York's 2025 gap runs from 02:00:00 up to 03:00:00 local", "[tz][local][dst]")
{
    auto ny = must_locate("America/New_York");
    const auto day = 2025y / March / 9;

    auto before = ny.classify(local(day, hours{1}, minutes{59}, seconds{59}));
    CHECK(before.kind == tz::local_kind::unique);
    CHECK(before.first == sys_days{day} + hours{6} + minutes{59} + seconds{59});
    CHECK(before.offset_before == hours{-5});

    auto start = ny.classify(local(day, hours{2}));
    CHECK(start.kind == tz::local_kind::nonexistent);
    auto shifted_start = ny.to_utc(local(day, hours{2}), shift_earliest);
    REQUIRE(shifted_start);
    CHECK(*shifted_start == sys_days{day} + hours{7});

    auto last = ny.classify(local(day, hours{2}, minutes{59}, seconds{59}));
    CHECK(last.kind == tz::local_kind::nonexistent);
    auto shifted_last = ny.to_utc(local(day, hours{2}, minutes{59}, seconds{59}), shift_earliest);
    REQUIRE(shifted_last);
    CHECK(*shifted_last == sys_days{day} + hours{7} + minutes{59} + seconds{59});
    auto transition_last =
        ny.to_utc(local(day, hours{2}, minutes{59}, seconds{59}), transition_latest);
    REQUIRE(transition_last);
    CHECK(*transition_last == sys_days{day} + hours{7});

    auto after = ny.classify(local(day, hours{3}));
    CHECK(after.kind == tz::local_kind::unique);
    CHECK(after.first == sys_days{day} + hours{7});
    CHECK(after.offset_before == hours{-4});
    auto after_rejecting = ny.to_utc(local(day, hours{3}), reject_all);
    REQUIRE(after_rejecting);
    CHECK(*after_rejecting == sys_days{day} + hours{7});
}

TEST_CASE("New York's 2025 autumn overlap is ambiguous and resolved by explicit policy",
          "[tz][local][dst]")
{
    auto ny = must_locate("America/New_York");
    const auto day = 2025y / November / 2;

    auto info = ny.classify(local(day, hours{1}, minutes{30}));
    CHECK(info.kind == tz::local_kind::ambiguous);
    CHECK(info.first == sys_days{day} + hours{5} + minutes{30});
    CHECK(info.second == sys_days{day} + hours{6} + minutes{30});
    CHECK(info.offset_before == hours{-4});
    CHECK(info.offset_after == hours{-5});
    CHECK(info.gap == seconds{0});

    auto earliest = ny.to_utc(local(day, hours{1}, minutes{30}), shift_earliest);
    REQUIRE(earliest);
    CHECK(*earliest == sys_days{day} + hours{5} + minutes{30});
    auto latest = ny.to_utc(local(day, hours{1}, minutes{30}), transition_latest);
    REQUIRE(latest);
    CHECK(*latest == sys_days{day} + hours{6} + minutes{30});
    CHECK_FALSE(ny.to_utc(local(day, hours{1}, minutes{30}), reject_all));
    CHECK_FALSE(ny.to_utc(local(day, hours{1}, minutes{30}),
                          {tz::gap_policy::shift_forward, tz::overlap_policy::reject}));
}

TEST_CASE("New York's 2025 overlap runs from 01:00:00 up to 02:00:00 local", "[tz][local][dst]")
{
    auto ny = must_locate("America/New_York");
    const auto day = 2025y / November / 2;

    auto before = ny.classify(local(day, hours{0}, minutes{59}, seconds{59}));
    CHECK(before.kind == tz::local_kind::unique);
    CHECK(before.first == sys_days{day} + hours{4} + minutes{59} + seconds{59});

    auto start = ny.classify(local(day, hours{1}));
    CHECK(start.kind == tz::local_kind::ambiguous);
    CHECK(start.first == sys_days{day} + hours{5});
    CHECK(start.second == sys_days{day} + hours{6});

    auto last = ny.classify(local(day, hours{1}, minutes{59}, seconds{59}));
    CHECK(last.kind == tz::local_kind::ambiguous);
    CHECK(last.first == sys_days{day} + hours{5} + minutes{59} + seconds{59});
    CHECK(last.second == sys_days{day} + hours{6} + minutes{59} + seconds{59});

    auto after = ny.classify(local(day, hours{2}));
    CHECK(after.kind == tz::local_kind::unique);
    CHECK(after.first == sys_days{day} + hours{7});
    auto after_rejecting = ny.to_utc(local(day, hours{2}), reject_all);
    REQUIRE(after_rejecting);
    CHECK(*after_rejecting == sys_days{day} + hours{7});
}

TEST_CASE("unique local times ignore the gap and overlap policies", "[tz][local]")
{
    auto ny = must_locate("America/New_York");
    const auto when = local(2025y / July / 4, hours{12});
    const sys_seconds expected = sys_days{2025y / July / 4} + hours{16};
    for (auto gap :
         {tz::gap_policy::reject, tz::gap_policy::shift_forward, tz::gap_policy::transition}) {
        for (auto overlap : {tz::overlap_policy::reject, tz::overlap_policy::earliest,
                             tz::overlap_policy::latest}) {
            auto utc = ny.to_utc(when, {gap, overlap});
            REQUIRE(utc);
            CHECK(*utc == expected);
        }
    }
    auto info = ny.classify(when);
    CHECK(info == tz::local_info{tz::local_kind::unique, expected, expected, hours{-4}, hours{-4},
                                 seconds{0}});
}

TEST_CASE("every local minute of 2025 in New York is classified correctly", "[tz][local][dst]")
{
    auto ny = must_locate("America/New_York");
    const auto spring = local_days{2025y / March / 9} + hours{2};
    const auto autumn = local_days{2025y / November / 2} + hours{1};
    int nonexistent = 0;
    int ambiguous = 0;
    int wrong = 0;
    for (auto t = local_seconds{local_days{2025y / January / 1}};
         t < local_days{2026y / January / 1}; t += minutes{1}) {
        auto kind = ny.classify(t).kind;
        bool in_gap = t >= spring && t < spring + hours{1};
        bool in_overlap = t >= autumn && t < autumn + hours{1};
        auto expected = in_gap       ? tz::local_kind::nonexistent
                        : in_overlap ? tz::local_kind::ambiguous
                                     : tz::local_kind::unique;
        wrong += kind != expected;
        nonexistent += kind == tz::local_kind::nonexistent;
        ambiguous += kind == tz::local_kind::ambiguous;
    }
    CHECK(wrong == 0);
    CHECK(nonexistent == 60);
    CHECK(ambiguous == 60);
}

TEST_CASE("half-hour gaps: Lord Howe's spring skips 02:00-02:30", "[tz][local][dst]")
{
    // DST starts on the first Sunday of October at 02:00 standard (+10:30).
    auto lord_howe = must_locate("Australia/Lord_Howe");
    const auto day = 2025y / October / 5;
    auto info = lord_howe.classify(local(day, hours{2}, minutes{15}));
    CHECK(info.kind == tz::local_kind::nonexistent);
    CHECK(info.gap == minutes{30});
    CHECK(info.first == sys_days{2025y / October / 4} + hours{15} + minutes{30});
    CHECK(lord_howe.classify(local(day, hours{2}, minutes{30})).kind == tz::local_kind::unique);
    auto shifted = lord_howe.to_utc(local(day, hours{2}, minutes{15}), shift_earliest);
    REQUIRE(shifted);
    CHECK(*shifted == sys_days{2025y / October / 4} + hours{15} + minutes{45});
}

TEST_CASE("UTC to local to UTC round-trips hourly over 2025", "[tz][local]")
{
    for (std::string_view name :
         {"America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Chatham",
          "America/St_Johns", "Europe/London", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Riyadh",
          "Etc/UTC", "Pacific/Kiritimati", "America/Sao_Paulo", "Africa/Casablanca"}) {
        INFO(name);
        auto z = must_locate(name);
        int mismatches = 0;
        int ambiguous = 0;
        for (sys_seconds t = sys_days{2025y / January / 1}; t < sys_days{2026y / January / 1};
             t += hours{1}) {
            auto l = z.to_local(t);
            mismatches += l - local_seconds{t.time_since_epoch()} != z.utc_offset(t);
            auto info = z.classify(l);
            if (info.kind == tz::local_kind::unique) {
                mismatches += info.first != t;
                mismatches += z.to_utc(l, reject_all) != t;
            } else if (info.kind == tz::local_kind::ambiguous) {
                ++ambiguous;
                bool earlier = info.first == t;
                mismatches += !earlier && info.second != t;
                mismatches += z.to_utc(l, earlier ? shift_earliest : transition_latest) != t;
            } else {
                ++mismatches; // a local time produced from an instant always exists
            }
        }
        CHECK(mismatches == 0);
        // One repeated hour on the hourly grid gives two ambiguous readings; Lord Howe's
        // repeated half hour is not on the grid, and fixed zones repeat nothing.
        if (name == "America/New_York" || name == "Europe/London" || name == "Australia/Sydney" ||
            name == "Pacific/Chatham" || name == "America/St_Johns") {
            CHECK(ambiguous == 2);
        } else if (name == "Asia/Kolkata" || name == "Etc/UTC" || name == "Asia/Riyadh") {
            CHECK(ambiguous == 0);
        }
    }
}

TEST_CASE("extreme instants and local times give edge answers instead of overflowing",
          "[tz][local]")
{
    auto ny = must_locate("America/New_York");
    CHECK(ny.utc_offset(sys_seconds::max()) == hours{-5});
    CHECK(ny.utc_offset(sys_seconds::min()) == -(hours{4} + minutes{56} + seconds{2}));
    CHECK(ny.to_local(sys_seconds::max()) > local_days{30000y / January / 1});
    CHECK(ny.to_local(sys_seconds::min()) < local_days{-30000y / January / 1});
    CHECK(ny.classify(local_seconds::max()).kind == tz::local_kind::unique);
    CHECK(ny.classify(local_seconds::min()).kind == tz::local_kind::unique);
    CHECK(ny.to_utc(local_seconds::max(), reject_all).has_value());
    CHECK_FALSE(ny.next_transition(sys_seconds::max()));
    auto first = ny.next_transition(sys_seconds::min());
    REQUIRE(first);
    CHECK(first->at == sys_days{1883y / November / 18} + hours{17});
    CHECK(ny.standard_offset(sys_seconds::max()) == hours{-5});
}

// Transitions

TEST_CASE("next_transition finds New York's 2025 changes strictly after the instant",
          "[tz][transition]")
{
    auto ny = must_locate("America/New_York");
    const sys_seconds spring = sys_days{2025y / March / 9} + hours{7};
    const sys_seconds autumn = sys_days{2025y / November / 2} + hours{6};

    auto t = ny.next_transition(sys_days{2025y / January / 1});
    REQUIRE(t);
    CHECK(*t == tz::transition{spring, hours{-5}, hours{-4}, false, true});

    auto just_before = ny.next_transition(spring - seconds{1});
    REQUIRE(just_before);
    CHECK(just_before->at == spring);

    auto at_spring = ny.next_transition(spring);
    REQUIRE(at_spring);
    CHECK(*at_spring == tz::transition{autumn, hours{-4}, hours{-5}, true, false});

    auto after_autumn = ny.next_transition(autumn);
    REQUIRE(after_autumn);
    CHECK(after_autumn->at == sys_days{2026y / March / 8} + hours{7});
}

TEST_CASE("next_transition skips changes that only rename the period", "[tz][transition]")
{
    // War Time became Peace Time on 1945-08-14 23:00 UTC (EWT -> EPT, still -4 and DST);
    // the clocks went back on 1945-09-30 02:00 EPT.
    auto ny = must_locate("America/New_York");
    auto t = ny.next_transition(sys_days{1945y / January / 1});
    REQUIRE(t);
    CHECK(*t == tz::transition{sys_days{1945y / September / 30} + hours{6}, hours{-4}, hours{-5},
                               true, false});
}

TEST_CASE("next_transition reports a change of the DST flag alone", "[tz][transition]")
{
    // London stayed on +1:00 from 1968-02-18: DST until 1968-10-27, then British Standard Time.
    auto london = must_locate("Europe/London");
    auto t = london.next_transition(sys_days{1968y / June / 1});
    REQUIRE(t);
    CHECK(*t == tz::transition{sys_days{1968y / October / 26} + hours{23}, hours{1}, hours{1}, true,
                               false});
}

TEST_CASE("next_transition finds Sydney's southern-hemisphere changes", "[tz][transition]")
{
    auto sydney = must_locate("Australia/Sydney");
    auto end = sydney.next_transition(sys_days{2025y / January / 1});
    REQUIRE(end);
    // First Sunday of April, 03:00 AEDT (+11).
    CHECK(*end == tz::transition{sys_days{2025y / April / 5} + hours{16}, hours{11}, hours{10},
                                 true, false});
    auto start = sydney.next_transition(end->at);
    REQUIRE(start);
    // First Sunday of October, 02:00 AEST (+10).
    CHECK(*start == tz::transition{sys_days{2025y / October / 4} + hours{16}, hours{10}, hours{11},
                                   false, true});
}

TEST_CASE("zones without changes have no next transition", "[tz][transition]")
{
    auto riyadh = must_locate("Asia/Riyadh");
    CHECK_FALSE(riyadh.next_transition(sys_days{2025y / January / 1}));
    auto lmt_end = riyadh.next_transition(sys_days{1900y / January / 1});
    REQUIRE(lmt_end);
    CHECK(lmt_end->at == sys_days{1947y / March / 13} + hours{20} + minutes{53} + seconds{8});
    CHECK(lmt_end->offset_after == hours{3});
    CHECK_FALSE(riyadh.next_transition(lmt_end->at));

    CHECK_FALSE(must_locate("Etc/UTC").next_transition(sys_days{2025y / January / 1}));
    CHECK_FALSE(must_locate("Etc/UTC").next_transition(sys_days{1800y / January / 1}));
    CHECK_FALSE(must_locate("Asia/Tokyo").next_transition(sys_days{2025y / January / 1}));
}

TEST_CASE("the OS data lists New York's transitions up to 2037", "[tz][transition]")
{
    // Documented limit (zone.hpp): the TZif footer rule is not applied beyond the file's list.
    auto ny = must_locate("America/New_York");
    auto last = ny.next_transition(sys_days{2037y / June / 1});
    REQUIRE(last);
    CHECK(last->at == sys_days{2037y / November / 1} + hours{6});
    CHECK_FALSE(ny.next_transition(last->at));
}

// DST intervals

TEST_CASE("dst_intervals for New York 2025", "[tz][dst]")
{
    auto ny = must_locate("America/New_York");
    auto intervals = ny.dst_intervals(2025y);
    REQUIRE(intervals.size() == 1);
    CHECK(intervals[0] == tz::dst_interval{sys_days{2025y / March / 9} + hours{7},
                                           sys_days{2025y / November / 2} + hours{6}, hours{-4},
                                           hours{-5}});
}

TEST_CASE("dst_intervals for Sydney 2025 cross both new years", "[tz][dst]")
{
    auto sydney = must_locate("Australia/Sydney");
    auto intervals = sydney.dst_intervals(2025y);
    REQUIRE(intervals.size() == 2);
    CHECK(intervals[0] == tz::dst_interval{sys_days{2024y / October / 5} + hours{16},
                                           sys_days{2025y / April / 5} + hours{16}, hours{11},
                                           hours{10}});
    CHECK(intervals[1] == tz::dst_interval{sys_days{2025y / October / 4} + hours{16},
                                           sys_days{2026y / April / 4} + hours{16}, hours{11},
                                           hours{10}});
}

TEST_CASE("dst_intervals for Europe/London 2025", "[tz][dst]")
{
    auto london = must_locate("Europe/London");
    auto intervals = london.dst_intervals(2025y);
    REQUIRE(intervals.size() == 1);
    CHECK(intervals[0] == tz::dst_interval{sys_days{2025y / March / 30} + hours{1},
                                           sys_days{2025y / October / 26} + hours{1}, hours{1},
                                           hours{0}});
}

TEST_CASE("dst_intervals for Lord Howe carry the half-hour saving", "[tz][dst]")
{
    auto lord_howe = must_locate("Australia/Lord_Howe");
    auto intervals = lord_howe.dst_intervals(2025y);
    REQUIRE(intervals.size() == 2);
    CHECK(intervals[1] == tz::dst_interval{sys_days{2025y / October / 4} + hours{15} + minutes{30},
                                           sys_days{2026y / April / 4} + hours{15}, hours{11},
                                           hours{10} + minutes{30}});
}

TEST_CASE("zones without DST have no DST intervals", "[tz][dst]")
{
    for (std::string_view name : {"Asia/Tokyo", "Asia/Riyadh", "Etc/UTC", "Asia/Kolkata",
                                  "America/Sao_Paulo", "Pacific/Kiritimati"}) {
        INFO(name);
        CHECK(must_locate(name).dst_intervals(2025y).empty());
    }
    // Tokyo did observe DST from 1948 to 1951.
    auto tokyo = must_locate("Asia/Tokyo");
    auto intervals = tokyo.dst_intervals(1949y);
    REQUIRE(intervals.size() == 1);
    CHECK(intervals[0] == tz::dst_interval{sys_days{1949y / April / 2} + hours{15},
                                           sys_days{1949y / September / 10} + hours{15}, hours{10},
                                           hours{9}});
    CHECK(
        tokyo.dst_intervals(sys_days{1900y / January / 1}, sys_days{2100y / January / 1}).size() ==
        4);
}

TEST_CASE("dst_intervals over a range are half-open and keep real bounds", "[tz][dst]")
{
    auto ny = must_locate("America/New_York");
    const sys_seconds start_2024 = sys_days{2024y / March / 10} + hours{7};
    const sys_seconds end_2024 = sys_days{2024y / November / 3} + hours{6};
    const sys_seconds start_2025 = sys_days{2025y / March / 9} + hours{7};
    const sys_seconds end_2025 = sys_days{2025y / November / 2} + hours{6};

    auto both = ny.dst_intervals(sys_days{2024y / July / 1}, sys_days{2026y / January / 1});
    REQUIRE(both.size() == 2);
    CHECK(both[0].begin == start_2024);
    CHECK(both[0].end == end_2024);
    CHECK(both[1].begin == start_2025);
    CHECK(both[1].end == end_2025);

    auto inside = ny.dst_intervals(sys_days{2025y / June / 1}, sys_days{2025y / June / 2});
    REQUIRE(inside.size() == 1);
    CHECK(inside[0].begin == start_2025);
    CHECK(inside[0].end == end_2025);

    CHECK(ny.dst_intervals(sys_days{2025y / December / 1}, sys_days{2026y / January / 1}).empty());
    CHECK(ny.dst_intervals(end_2024, start_2025).empty());
    auto touching_start = ny.dst_intervals(end_2024, start_2025 + seconds{1});
    REQUIRE(touching_start.size() == 1);
    CHECK(touching_start[0].begin == start_2025);
    auto touching_end = ny.dst_intervals(end_2025 - seconds{1}, end_2025);
    REQUIRE(touching_end.size() == 1);
    CHECK(touching_end[0].end == end_2025);
    CHECK(ny.dst_intervals(end_2025, end_2025 + hours{1}).empty());

    CHECK(ny.dst_intervals(end_2025, start_2025).empty());
    CHECK(ny.dst_intervals(start_2025, start_2025).empty());
}

TEST_CASE("dst_intervals over all of the data are ordered and disjoint", "[tz][dst]")
{
    for (std::string_view name : {"America/New_York", "Europe/London", "Australia/Sydney",
                                  "Europe/Dublin", "Africa/Casablanca"}) {
        INFO(name);
        auto z = must_locate(name);
        auto all = z.dst_intervals(sys_seconds::min(), sys_seconds::max());
        REQUIRE(all.size() > 10);
        for (std::size_t i = 0; i < all.size(); ++i) {
            CHECK(all[i].begin < all[i].end);
            CHECK(z.is_dst(all[i].begin));
            CHECK(z.is_dst(all[i].end - seconds{1}));
            CHECK_FALSE(z.is_dst(all[i].begin - seconds{1}));
            if (all[i].end < sys_days{32767y / January / 1}) {
                CHECK_FALSE(z.is_dst(all[i].end));
            } else {
                CHECK(i + 1 == all.size()); // DST to the end of the data (Dublin's winter)
            }
            if (i > 0) {
                CHECK(all[i - 1].end < all[i].begin);
            }
        }
    }
}

TEST_CASE("contiguous DST periods merge into one interval", "[tz][dst]")
{
    // British double summer time: DST without a break from 1940-02-25 to 1945-10-07.
    auto london = must_locate("Europe/London");
    auto war = london.dst_intervals(1943y);
    REQUIRE(war.size() == 1);
    CHECK(war[0] == tz::dst_interval{sys_days{1940y / February / 25} + hours{2},
                                     sys_days{1945y / October / 7} + hours{2}, hours{1}, hours{0}});
    CHECK(london.utc_offset(sys_days{1943y / June / 1}) == hours{2});

    // New York's War Time and Peace Time (renamed, not ended, on 1945-08-14).
    auto ny = must_locate("America/New_York");
    auto war_time = ny.dst_intervals(1945y);
    REQUIRE(war_time.size() == 1);
    CHECK(war_time[0].begin == sys_days{1942y / February / 9} + hours{7});
    CHECK(war_time[0].end == sys_days{1945y / September / 30} + hours{6});
}

TEST_CASE("standard_offset is the base offset during DST", "[tz][dst]")
{
    const sys_seconds january = sys_days{2025y / January / 15};
    const sys_seconds july = sys_days{2025y / July / 15};
    CHECK(must_locate("America/New_York").standard_offset(july) == hours{-5});
    CHECK(must_locate("America/New_York").standard_offset(january) == hours{-5});
    CHECK(must_locate("Europe/London").standard_offset(july) == hours{0});
    CHECK(must_locate("Australia/Sydney").standard_offset(january) == hours{10});
    CHECK(must_locate("Australia/Lord_Howe").standard_offset(january) == hours{10} + minutes{30});
    CHECK(must_locate("Pacific/Chatham").standard_offset(january) == hours{12} + minutes{45});
    CHECK(must_locate("America/St_Johns").standard_offset(july) == -(hours{3} + minutes{30}));
    CHECK(must_locate("Asia/Kolkata").standard_offset(july) == hours{5} + minutes{30});

    auto london = must_locate("Europe/London");
    // Double summer time (+2): the base is still GMT.
    CHECK(london.standard_offset(sys_days{1943y / June / 1}) == hours{0});
    // 1968's DST was an hour on GMT, though +1:00 standard time followed it directly.
    CHECK(london.standard_offset(sys_days{1968y / July / 1}) == hours{0});
    CHECK(london.standard_offset(sys_days{1969y / July / 1}) == hours{1});
    CHECK_FALSE(london.is_dst(sys_days{1969y / July / 1}));
}

TEST_CASE("negative DST is reported as the data has it: Dublin's winter", "[tz][dst]")
{
    // Irish Standard Time (+1) is the standard; winter GMT is flagged as DST (zone.hpp).
    auto dublin = must_locate("Europe/Dublin");
    const sys_seconds january = sys_days{2025y / January / 15};
    CHECK(dublin.utc_offset(january) == hours{0});
    CHECK(dublin.is_dst(january));
    CHECK(dublin.standard_offset(january) == hours{1});
    CHECK_FALSE(dublin.is_dst(sys_days{2025y / July / 15}));
}

TEST_CASE("dst_intervals of an invalid or out-of-data year is empty", "[tz][dst]")
{
    auto ny = must_locate("America/New_York");
    CHECK(ny.dst_intervals(year{-32768}).empty());
    CHECK(ny.dst_intervals(year::max()).empty());
    CHECK_FALSE(ny.dst_intervals(2037y).empty());
}

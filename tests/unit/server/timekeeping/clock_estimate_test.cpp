#include "server/timekeeping/clock_estimate.hpp"

#include <catch2/catch.hpp>

#include <limits>
#include <vector>

using namespace std::chrono;
using namespace adms::server;

namespace {

// A Saturday morning, with no fraction of a second (the tests add their own).
const instant t0 = sys_days{2026y / January / 10} + 8h;

// A punch made at server time `real` on a device `offset` ahead, uploaded `delay` later: the
// device stamps its own reading truncated to the second.
punch_sample punch_at(instant real, milliseconds offset, milliseconds delay)
{
    return {floor<seconds>(real + offset), real + delay};
}

// The true offset lies within the estimate's ± band.
bool covers(const clock_estimate& e, milliseconds truth)
{
    return e.offset && abs(*e.offset - truth) <= e.uncertainty;
}

} // namespace

TEST_CASE("A fast device's offset comes from its least-delayed realtime punch", "[clock]")
{
    constexpr auto truth = 95s;
    clock_evidence evidence;
    const std::vector<milliseconds> delays{1200ms, 3000ms, 200ms,  800ms, 2500ms,
                                           450ms,  1700ms, 2900ms, 600ms, 1000ms};
    for (std::size_t i = 0; i < delays.size(); ++i) {
        // Fractions of a second so that truncation matters: 8:00:00.300, 8:10:00.371, ...
        auto real = t0 + minutes{10 * i} + milliseconds{300 + 71 * i};
        evidence.punches.push_back(punch_at(real, truth, delays[i]));
    }
    // Backlog from a network outage, uploaded two hours late, mixed in.
    for (int i = 0; i < 4; ++i) {
        evidence.punches.insert(evidence.punches.begin() + 2 * i,
                                punch_at(t0 - 3h + minutes{i}, truth, 2h));
    }
    auto now = t0 + 2h;
    auto e = estimate_device_clock(evidence, now);
    CHECK(e.source == clock_source::punches);
    REQUIRE(e.offset);
    CHECK(*e.offset >= 94500ms);
    CHECK(*e.offset <= 96s);
    CHECK(covers(e, truth));
    CHECK(e.samples_used == 14);
    // The 200 ms upload at 8:20:00.442 (truncated by 0.442 s): sample 94.358 s, estimate 94.858 s.
    CHECK(*e.offset == 94858ms);
    CHECK(e.measured_at == t0 + 20min + 442ms + 200ms);
    // 1 s plus at most 50 ppm of the 1 h 40 min since: 300 ms.
    CHECK(e.uncertainty == 1300ms);
    CHECK(e.note.find("upload delay can only make the true offset larger") != std::string::npos);
}

TEST_CASE("A slow device has a negative offset, from a single punch", "[clock]")
{
    clock_evidence evidence;
    evidence.punches.push_back(punch_at(t0 + 250ms, -40s, 300ms));
    auto e = estimate_device_clock(evidence, t0 + 550ms);
    CHECK(e.source == clock_source::punches);
    REQUIRE(e.offset);
    // Device reads 7:59:20.250, stamped 7:59:20; received 8:00:00.550: sample -40.55 s.
    CHECK(*e.offset == -40050ms);
    CHECK(covers(e, -40s));
    CHECK(e.samples_used == 1);
    CHECK(e.uncertainty == 1000ms);
}

TEST_CASE("A synced device with no later punches reads zero with growing uncertainty", "[clock]")
{
    clock_evidence evidence;
    evidence.sync_sent_at = t0;
    evidence.sync_confirmed_at = t0 + 3s;

    auto fresh = estimate_device_clock(evidence, t0 + 3s);
    CHECK(fresh.source == clock_source::sync);
    CHECK(fresh.offset == 0ms);
    CHECK(fresh.uncertainty == 1001ms); // 50 ppm of 3 s is 0.15 ms, rounded up to 1 ms
    auto day = estimate_device_clock(evidence, t0 + 24h);
    CHECK(day.source == clock_source::sync);
    CHECK(day.offset == 0ms);
    CHECK(day.uncertainty == 1000ms + 4320ms);
    CHECK(day.measured_at == t0);
    CHECK(day.samples_used == 0);
    CHECK(day.note.find("4.3 s") != std::string::npos);
    auto week = estimate_device_clock(evidence, t0 + 24h * 7);
    CHECK(week.uncertainty == 1000ms + 7 * 4320ms);

    clock_estimate_params tight;
    tight.drift_ppm = 20;
    CHECK(estimate_device_clock(evidence, t0 + 24h, tight).uncertainty == 1000ms + 1728ms);
}

TEST_CASE("A sync followed by punches that agree stays the source", "[clock]")
{
    clock_evidence evidence;
    evidence.sync_sent_at = t0;
    evidence.sync_confirmed_at = t0 + 2s;
    for (int i = 1; i <= 5; ++i) {
        // The clock has gained 2 s since (well within 50 ppm of a day) and uploads take ~1 s.
        evidence.punches.push_back(punch_at(t0 + 20h + hours{i}, 2s, 900ms));
    }
    auto e = estimate_device_clock(evidence, t0 + 26h);
    CHECK(e.source == clock_source::sync);
    CHECK(e.offset == 0ms);
    CHECK(e.samples_used == 5);
    CHECK(e.measured_at == t0);
    CHECK(e.note.find("5 punches received since agree") != std::string::npos);
}

TEST_CASE("Punches after a sync showing the clock moved win over the sync", "[clock]")
{
    clock_evidence evidence;
    evidence.sync_sent_at = t0;
    evidence.sync_confirmed_at = t0 + 2s;
    auto now = t0 + 10h;

    SECTION("ahead by 300 s")
    {
        for (int i = 1; i <= 3; ++i) {
            evidence.punches.push_back(
                punch_at(t0 + hours{i} + 500ms, 300s, milliseconds{i * 400}));
        }
        auto e = estimate_device_clock(evidence, now);
        CHECK(e.source == clock_source::punches);
        REQUIRE(e.offset);
        CHECK(*e.offset >= 299500ms);
        CHECK(*e.offset <= 301s);
        CHECK(covers(e, 300s));
        CHECK(e.measured_at == t0 + 1h + 500ms + 400ms);
        CHECK(e.samples_used == 3);
        CHECK(e.note.find("keypad") != std::string::npos);
        CHECK(e.note.find("+299.6 s") != std::string::npos);
    }
    SECTION("set back by 300 s")
    {
        evidence.punches.push_back(punch_at(t0 + 2h, -300s, 500ms));
        auto e = estimate_device_clock(evidence, now);
        CHECK(e.source == clock_source::punches);
        REQUIRE(e.offset);
        CHECK(covers(e, -300s));
    }
}

TEST_CASE("A punch disagrees with a sync only beyond both uncertainties", "[clock]")
{
    clock_evidence evidence;
    evidence.sync_sent_at = t0;
    evidence.sync_confirmed_at = t0 + 1s;
    // Received 10.5 s after the sync: tolerance 1 s + 1 ms of drift + 1 s.
    auto received = t0 + 10500ms;
    auto estimate_with = [&](sys_seconds device_utc) {
        evidence.punches = {{device_utc, received}};
        return estimate_device_clock(evidence, t0 + 11s);
    };
    auto agree_ahead = estimate_with(floor<seconds>(t0) + 12s); // sample +1.5 s, estimate +2.0 s
    CHECK(agree_ahead.source == clock_source::sync);
    CHECK(agree_ahead.samples_used == 1);
    auto ahead = estimate_with(floor<seconds>(t0) + 13s); // estimate +3.0 s
    CHECK(ahead.source == clock_source::punches);
    CHECK(ahead.offset == 3000ms);
    auto agree_behind = estimate_with(floor<seconds>(t0) + 8s); // estimate -2.0 s
    CHECK(agree_behind.source == clock_source::sync);
    CHECK(agree_behind.samples_used == 1);
    auto behind = estimate_with(floor<seconds>(t0) + 7s); // estimate -3.0 s
    CHECK(behind.source == clock_source::punches);
    CHECK(behind.offset == -3000ms);
}

TEST_CASE("Punches received before the confirmed sync are ignored", "[clock]")
{
    clock_evidence evidence;
    for (int i = 0; i < 5; ++i) {
        evidence.punches.push_back(punch_at(t0 - hours{5 - i}, 95s, 300ms));
    }
    evidence.sync_sent_at = t0;
    evidence.sync_confirmed_at = t0 + 1s;
    auto e = estimate_device_clock(evidence, t0 + 1h);
    CHECK(e.source == clock_source::sync);
    CHECK(e.offset == 0ms);
    CHECK(e.samples_used == 0);
}

TEST_CASE("A punch received between the sync going out and its confirmation is ignored", "[clock]")
{
    // The device may stamp it with the old clock: it applies the time, then confirms.
    clock_evidence evidence;
    evidence.sync_sent_at = t0;
    evidence.sync_confirmed_at = t0 + 2s;
    evidence.punches.push_back(punch_at(t0 + 500ms, 95s, 300ms));
    auto e = estimate_device_clock(evidence, t0 + 1min);
    CHECK(e.source == clock_source::sync);
    CHECK(e.samples_used == 0);
    // One received after the confirmation counts.
    evidence.punches.push_back(punch_at(t0 + 30s, 95s, 300ms));
    auto later = estimate_device_clock(evidence, t0 + 1min);
    CHECK(later.source == clock_source::punches);
    CHECK(later.samples_used == 1);
}

TEST_CASE("A backlog stamped before the sync but uploaded after it is ignored", "[clock]")
{
    // A device back online is synced, then uploads the punches it kept while offline.
    clock_evidence evidence;
    evidence.sync_sent_at = t0;
    evidence.sync_confirmed_at = t0 + 1s;
    for (int i = 0; i < 3; ++i) {
        evidence.punches.push_back(punch_at(t0 - 3h + minutes{i}, 0s, 3h + 30s));
    }
    auto e = estimate_device_clock(evidence, t0 + 5min);
    CHECK(e.source == clock_source::sync);
    CHECK(e.samples_used == 0);

    // A realtime punch after it is still checked.
    evidence.punches.push_back(punch_at(t0 + 2min, 0s, 300ms));
    e = estimate_device_clock(evidence, t0 + 5min);
    CHECK(e.source == clock_source::sync);
    CHECK(e.samples_used == 1);
}

TEST_CASE("Punches older than the window are ignored", "[clock]")
{
    clock_evidence evidence;
    evidence.punches.push_back(punch_at(t0, 95s, 300ms));
    auto received = t0 + 300ms;

    auto inside = estimate_device_clock(evidence, received + 24h * 7);
    CHECK(inside.source == clock_source::punches);
    CHECK(inside.samples_used == 1);

    auto outside = estimate_device_clock(evidence, received + 24h * 7 + 1ms);
    CHECK(outside.source == clock_source::unknown);
    CHECK_FALSE(outside.offset);
    CHECK(outside.samples_used == 0);
    CHECK(outside.note.find("7 days") != std::string::npos);

    clock_estimate_params wide;
    wide.window = 24h * 10;
    CHECK(estimate_device_clock(evidence, received + 24h * 8, wide).source ==
          clock_source::punches);
}

TEST_CASE("Only the latest N punches are used", "[clock]")
{
    clock_evidence evidence;
    // The four oldest were uploaded instantly, the sixteen after them 2 s late.
    for (int i = 0; i < 20; ++i) {
        evidence.punches.push_back(punch_at(t0 + minutes{i}, 10s, i < 4 ? 0ms : 2s));
    }
    auto now = t0 + 30min;

    auto latest = estimate_device_clock(evidence, now);
    CHECK(latest.samples_used == 16);
    CHECK(latest.offset == 8500ms);
    CHECK(latest.measured_at == t0 + 19min + 2s);

    clock_estimate_params all;
    all.max_samples = 20;
    auto e = estimate_device_clock(evidence, now, all);
    CHECK(e.samples_used == 20);
    CHECK(e.offset == 10500ms);
    CHECK(e.measured_at == t0 + 3min);

    clock_estimate_params none;
    none.max_samples = 0;
    CHECK(estimate_device_clock(evidence, now, none).source == clock_source::unknown);
}

TEST_CASE("An old sample beats a newer one only by more than the drift since", "[clock]")
{
    clock_evidence evidence;
    evidence.punches.push_back({floor<seconds>(t0 - 24h * 6) + 100s, t0 - 24h * 6}); // +100 s
    evidence.punches.push_back({floor<seconds>(t0 - 1h) + 90s, t0 - 1h});            // +90 s

    // At 50 ppm six days allow 25.9 s of drift: the old +100 s proves less than the new +90 s.
    auto e = estimate_device_clock(evidence, t0);
    CHECK(e.offset == 90500ms);
    CHECK(e.measured_at == t0 - 1h);
    CHECK(e.uncertainty == 1000ms + 180ms);

    clock_estimate_params perfect;
    perfect.drift_ppm = 0;
    auto p = estimate_device_clock(evidence, t0, perfect);
    CHECK(p.offset == 100500ms);
    CHECK(p.uncertainty == 1000ms);
}

TEST_CASE("With no evidence the clock is unknown", "[clock]")
{
    auto e = estimate_device_clock({}, t0);
    CHECK(e.source == clock_source::unknown);
    CHECK_FALSE(e.offset);
    CHECK_FALSE(e.measured_at);
    CHECK(e.samples_used == 0);
    CHECK(e.uncertainty == 0ms);
    CHECK_FALSE(e.note.empty());
}

TEST_CASE("Evidence dated after now is ignored", "[clock]")
{
    // The server's clock was stepped back: what it recorded earlier is now in its future.
    clock_evidence evidence;
    evidence.sync_sent_at = t0 + 1h;
    evidence.sync_confirmed_at = t0 + 1h + 1s;
    evidence.punches.push_back(punch_at(t0 + 2h, 0s, 100ms));
    CHECK(estimate_device_clock(evidence, t0).source == clock_source::unknown);
}

TEST_CASE("A sync needs a confirmation, and a newer pending sync dates it by the confirmation",
          "[clock]")
{
    clock_evidence evidence;
    evidence.sync_sent_at = t0;
    evidence.punches.push_back(punch_at(t0 + 1h, 7s, 200ms));
    auto unconfirmed = estimate_device_clock(evidence, t0 + 2h);
    CHECK(unconfirmed.source == clock_source::punches);
    CHECK(covers(unconfirmed, 7s));

    evidence.punches.clear();
    evidence.sync_confirmed_at = t0 - 24h; // an older sync; the one sent at t0 is in flight
    auto pending = estimate_device_clock(evidence, t0 + 2h);
    CHECK(pending.source == clock_source::sync);
    CHECK(pending.measured_at == t0 - 24h);
    CHECK(pending.uncertainty == 1000ms + 4320ms + 360ms);

    evidence.sync_sent_at.reset();
    CHECK(estimate_device_clock(evidence, t0).measured_at == t0 - 24h);
}

TEST_CASE("A negative or NaN drift bound counts as none", "[clock]")
{
    clock_evidence evidence;
    evidence.sync_sent_at = t0;
    evidence.sync_confirmed_at = t0 + 1s;
    clock_estimate_params params;
    params.drift_ppm = -5;
    CHECK(estimate_device_clock(evidence, t0 + 24h, params).uncertainty == 1000ms);
    params.drift_ppm = std::numeric_limits<double>::quiet_NaN();
    CHECK(estimate_device_clock(evidence, t0 + 24h, params).uncertainty == 1000ms);
}

TEST_CASE("Clock sources have stable names", "[clock]")
{
    CHECK(to_string(clock_source::sync) == "sync");
    CHECK(to_string(clock_source::punches) == "punches");
    CHECK(to_string(clock_source::unknown) == "unknown");
}

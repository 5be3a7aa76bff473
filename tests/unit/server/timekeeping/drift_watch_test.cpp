#include "server/timekeeping/drift_watch.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace std::chrono;
using namespace adms::server;

namespace {

const instant t0 = sys_days{2026y / November / 2} + 9h;

// A punch made at server time `real` on a device `offset` ahead, uploaded `delay` later.
punch_sample punch_at(instant real, milliseconds offset, milliseconds delay)
{
    return {floor<seconds>(real + offset), real + delay};
}

// Feeds one upload of `punches` received at their received_at, and evaluates at that moment.
drift_update upload(drift_tracker& tracker, std::vector<punch_sample> punches,
                    const drift_params& params = {})
{
    auto now = punches.back().received_at;
    tracker.note_punches(punches, params);
    return tracker.evaluate(now, params);
}

} // namespace

TEST_CASE("A device 95 s fast raises one alert, recorded once, at its first realtime punch",
          "[drift]")
{
    drift_tracker tracker;
    auto first = upload(tracker, {punch_at(t0 + 250ms, 95s, 300ms)});
    CHECK(first.alert == drift_alert::raised);
    CHECK(tracker.alerting());
    REQUIRE(first.record);
    CHECK(first.record->source == clock_source::punches);
    CHECK(abs(first.record->offset - 95s) <= 1s);
    CHECK(first.record->measured_at == t0 + 550ms);

    // Later punches agree: no second alert, and no new point while the offset holds.
    for (int i = 1; i <= 5; ++i) {
        auto next = upload(tracker, {punch_at(t0 + minutes{7 * i} + 100ms, 95s, 400ms)});
        CHECK(next.alert == drift_alert::none);
        CHECK_FALSE(next.record);
    }
    CHECK(tracker.alerting());
}

TEST_CASE("A device 2 s off never alerts", "[drift]")
{
    for (auto offset : {2s, -2s}) {
        drift_tracker tracker;
        for (int i = 0; i < 10; ++i) {
            auto update = upload(tracker, {punch_at(t0 + minutes{5 * i} + 600ms, offset, 250ms)});
            CHECK(update.alert == drift_alert::none);
        }
        CHECK_FALSE(tracker.alerting());
        REQUIRE(tracker.last_point());
        CHECK(abs(tracker.last_point()->offset - offset) <= 1s);
    }
}

TEST_CASE("A backlog uploaded late does not alert as a slow clock", "[drift]")
{
    // A correct clock, offline for two hours: its punches arrive together, hours old.
    drift_tracker tracker;
    std::vector<punch_sample> backlog;
    for (int i = 0; i < 30; ++i) {
        backlog.push_back(punch_at(t0 + minutes{4 * i}, 0s, 2h + 1s - minutes{4 * i}));
    }
    auto update = upload(tracker, backlog);
    REQUIRE(update.estimate.offset);
    CHECK(*update.estimate.offset < -60s); // the estimate alone looks like a slow clock
    CHECK(update.alert == drift_alert::none);
    CHECK_FALSE(update.record); // and it does not enter the history either
    CHECK_FALSE(tracker.alerting());

    // Its next realtime punch shows the clock is right.
    auto live = upload(tracker, {punch_at(t0 + 2h + 5min, 0s, 300ms)});
    CHECK(live.alert == drift_alert::none);
    REQUIRE(live.record);
    CHECK(abs(live.record->offset) <= 1s);
}

TEST_CASE("A slow clock alerts once a second upload a minute later agrees", "[drift]")
{
    drift_tracker tracker;
    auto first = upload(tracker, {punch_at(t0, -95s, 300ms)});
    CHECK(first.alert == drift_alert::none);
    CHECK_FALSE(tracker.alerting());
    // A second upload 30 s later is not yet far enough apart to rule out one delayed burst.
    auto soon = upload(tracker, {punch_at(t0 + 30s, -95s, 500ms)});
    CHECK(soon.alert == drift_alert::none);
    auto later = upload(tracker, {punch_at(t0 + 3min, -95s, 200ms)});
    CHECK(later.alert == drift_alert::raised);
    REQUIRE(later.record);
    CHECK(abs(later.record->offset + 95s) <= 1s);
}

TEST_CASE("A confirmed sync clears the alert and is recorded as a point at offset zero", "[drift]")
{
    drift_tracker tracker;
    REQUIRE(upload(tracker, {punch_at(t0, 95s, 300ms)}).alert == drift_alert::raised);

    auto sent = t0 + 10min;
    tracker.note_sync(sent, sent + 2s);
    auto synced = tracker.evaluate(sent + 2s, {});
    CHECK(synced.alert == drift_alert::cleared);
    CHECK_FALSE(tracker.alerting());
    REQUIRE(synced.record);
    CHECK(synced.record->source == clock_source::sync);
    CHECK(synced.record->offset == 0ms);
    CHECK(synced.record->measured_at == sent);
    CHECK(synced.record->uncertainty == 1001ms); // 1 s, plus 50 ppm of 2 s rounded up

    // Punches after it that agree add nothing; the next day's sync is a new point.
    auto agreeing = upload(tracker, {punch_at(sent + 1h, 0s, 300ms)});
    CHECK_FALSE(agreeing.record);
    tracker.note_sync(sent + 24h, sent + 24h + 1s);
    auto next_day = tracker.evaluate(sent + 24h + 1s, {});
    REQUIRE(next_day.record);
    CHECK(next_day.record->measured_at == sent + 24h);
}

TEST_CASE("The history gets a point when the offset moves and once a day when it holds", "[drift]")
{
    drift_params params;
    drift_tracker tracker;
    REQUIRE(upload(tracker, {punch_at(t0, 10s, 200ms)}, params).record);
    // 1 s more: below record_change (2 s), no point.
    CHECK_FALSE(upload(tracker, {punch_at(t0 + 1h, 11s, 200ms)}, params).record);
    // 3 s more than the last point: a point.
    auto moved = upload(tracker, {punch_at(t0 + 2h, 13s, 200ms)}, params);
    REQUIRE(moved.record);
    CHECK(abs(moved.record->offset - 13s) <= 1s);
    // Holding for a day: one point after record_interval.
    CHECK_FALSE(upload(tracker, {punch_at(t0 + 20h, 13s, 200ms)}, params).record);
    CHECK(upload(tracker, {punch_at(t0 + 26h + 1min, 13s, 200ms)}, params).record);
}

TEST_CASE("The threshold is a parameter and is compared with the estimate's magnitude", "[drift]")
{
    drift_params params;
    params.threshold = 5s;
    drift_tracker tracker;
    CHECK(upload(tracker, {punch_at(t0, 6500ms, 100ms)}, params).alert == drift_alert::raised);
    drift_tracker within;
    CHECK(upload(within, {punch_at(t0, 4s, 100ms)}, params).alert == drift_alert::none);
}

TEST_CASE("Without evidence the tracker has nothing to say", "[drift]")
{
    drift_tracker tracker;
    auto update = tracker.evaluate(t0, {});
    CHECK(update.estimate.source == clock_source::unknown);
    CHECK_FALSE(update.record);
    CHECK(update.alert == drift_alert::none);
}

TEST_CASE("The tracker keeps only the latest punches it needs", "[drift]")
{
    drift_params params;
    params.estimate.max_samples = 4;
    drift_tracker tracker;
    // An old least-delayed punch (much larger sample) is pushed out by newer ones.
    upload(tracker, {punch_at(t0, 30s, 0ms)}, params);
    for (int i = 1; i <= 4; ++i) {
        upload(tracker, {punch_at(t0 + minutes{i}, 0s, 200ms)}, params);
    }
    auto update = tracker.evaluate(t0 + 5min, params);
    REQUIRE(update.estimate.offset);
    CHECK(abs(*update.estimate.offset) <= 1s);
    CHECK(update.estimate.samples_used == 4);
}

#include "tests/unit/server/storage/contract/cases.hpp"

#include <catch2/catch.hpp>

// The payroll exports' state every backend must keep: the schedule's last completed day moves
// only forward and only with scheduled runs; the last run is whatever was written last; a
// hook's writes in the same batch commit with the run or not at all.

using namespace adms::storage_test;
using std::chrono::days;
using std::chrono::local_days;
using namespace std::chrono_literals;
using std::chrono::November;
using std::chrono::October;

namespace {

export_run run_of(std::string name, local_days day, bool scheduled, std::uint64_t rows = 3)
{
    export_run run;
    run.name = std::move(name);
    run.day = day;
    run.file = "/srv/payroll/punches-" + adms::protocol::format_civil_date(day) + ".csv";
    run.rows = rows;
    run.bytes = 100 + rows;
    run.finished_at = at(1000 + static_cast<std::int64_t>(rows));
    run.scheduled = scheduled;
    return run;
}

export_state state_of(test_store& store, std::string_view name)
{
    auto states = store.list_export_states();
    INFO(states.error.message);
    REQUIRE(states);
    for (const auto& s : *states.value) {
        if (s.name == name) {
            return s;
        }
    }
    FAIL("no state for " << name);
    return {};
}

} // namespace

TEST_CASE("Export runs are recorded and scheduled runs move the last completed day forward",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto listed = store->list_export_states();
    REQUIRE(listed);
    CHECK(listed.value->empty());

    local_days nov28{2026y / November / 28};
    // An on-demand run first: a last run, but no completed day (the schedule has not run).
    REQUIRE(store->record_export_run(run_of("payroll", nov28, false)));
    auto s = state_of(*store, "payroll");
    CHECK_FALSE(s.last_completed_day);
    REQUIRE(s.last_run);
    CHECK(*s.last_run == run_of("payroll", nov28, false));

    // Scheduled runs move it forward.
    REQUIRE(store->record_export_run(run_of("payroll", nov28 + days{1}, true, 7)));
    REQUIRE(store->record_export_run(run_of("payroll", nov28 + days{2}, true, 9)));
    s = state_of(*store, "payroll");
    CHECK(s.last_completed_day == nov28 + days{2});
    CHECK(*s.last_run == run_of("payroll", nov28 + days{2}, true, 9));

    // An older day re-run, scheduled or on demand, is the last run but never moves it back.
    REQUIRE(store->record_export_run(run_of("payroll", nov28 - days{30}, true, 1)));
    REQUIRE(store->record_export_run(run_of("payroll", nov28, false, 2)));
    s = state_of(*store, "payroll");
    CHECK(s.last_completed_day == nov28 + days{2});
    CHECK(*s.last_run == run_of("payroll", nov28, false, 2));
    // A later day on demand does not move the schedule either.
    REQUIRE(store->record_export_run(run_of("payroll", nov28 + days{10}, false)));
    CHECK(state_of(*store, "payroll").last_completed_day == nov28 + days{2});

    // Exports are independent, listed by name, and kept across a reopen.
    REQUIRE(store->record_export_run(run_of("audit", local_days{2026y / October / 25}, true)));
    store->close();
    auto again = reopen_store(*backend);
    auto all = again->list_export_states();
    REQUIRE(all);
    REQUIRE(all.value->size() == 2);
    CHECK(all.value->at(0).name == "audit");
    CHECK(all.value->at(0).last_completed_day == local_days{2026y / October / 25});
    CHECK(all.value->at(1).name == "payroll");
    CHECK(all.value->at(1).last_completed_day == nov28 + days{2});
}

TEST_CASE("An export run and what a hook writes beside it commit together", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    local_days day{2026y / November / 30};
    std::vector<clock_offset_point> marker{{"HOOK", at(5), 1, 1, "sync"}};

    // The export service's shape: the hook's write, then the run, in one batch.
    auto both = store->db().write([&](write_tx& tx) -> storage_status {
        if (auto hooked = tx.clocks().store_clock_offsets(marker, at(0)); !hooked) {
            return hooked;
        }
        return tx.exports().record_export_run(run_of("payroll", day, true));
    });
    REQUIRE(both);
    CHECK(state_of(*store, "payroll").last_completed_day == day);
    CHECK(store->list_clock_offsets({.serial_number = "HOOK"}).value->size() == 1);

    SECTION("a failed commit stores neither")
    {
        if (!backend->inject_commit_failure()) {
            WARN("this backend cannot make a commit fail");
            return;
        }
        std::vector<storage_status> calls;
        auto refused = store->write_batch([&](write_tx& tx) {
            calls.push_back(tx.clocks().store_clock_offsets(marker, at(0)));
            calls.push_back(tx.exports().record_export_run(run_of("payroll", day + days{1}, true)));
            // A punch, so the injected failure makes this batch's commit fail.
            auto stored = tx.punches().store_punches(
                "X", std::vector{punch("1", "2026-12-01 08:00:00")}, at(6), false);
            calls.push_back(stored ? storage_status{std::monostate{}} : stored.error);
        });
        REQUIRE_FALSE(refused);
        for (const auto& call : calls) {
            CHECK(call); // each call succeeded inside the transaction; the commit lost them all
        }
        CHECK(state_of(*store, "payroll").last_completed_day == day);
        CHECK(store->list_clock_offsets({.serial_number = "HOOK"}).value->size() == 1);
    }
    SECTION("a run the store refuses is an error value and leaves the state")
    {
        auto bad = run_of("payroll", local_days{std::chrono::year{10000} / 1 / 1}, true);
        auto refused = store->record_export_run(bad);
        REQUIRE_FALSE(refused);
        CHECK_THAT(refused.error.message, Catch::Contains("record_export_run"));
        CHECK(state_of(*store, "payroll").last_completed_day == day);
    }
}

#include "tests/unit/server/storage/contract/cases.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <set>
#include <span>

// The punch store every backend must have: idempotent inserts and their stored/duplicate
// counts, quarantine, and cursor reads that never skip a row committed later.

using namespace adms::storage_test;

TEST_CASE("A batch stored twice is all duplicates the second time", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    std::vector<punch_input> batch{punch("1", "2025-03-01 08:00:00"),
                                   punch("2", "2025-03-01 08:00:05"),
                                   punch("007", "2025-03-01 08:01:00")};
    auto first = store->store_punches("A1", batch, at(1), false);
    REQUIRE(first);
    CHECK(*first.value == store_counts{3, 0});
    auto second = store->store_punches("A1", batch, at(2), false);
    REQUIRE(second);
    CHECK(*second.value == store_counts{0, 3});

    SECTION("a duplicate inside one batch counts as a duplicate")
    {
        std::vector<punch_input> repeated{punch("9", "2025-03-02 08:00:00"),
                                          punch("9", "2025-03-02 08:00:00")};
        auto counts = store->store_punches("A1", repeated, at(3), false);
        REQUIRE(counts);
        CHECK(*counts.value == store_counts{1, 1});
    }
    SECTION("a mixed batch counts only the new punches as stored")
    {
        std::vector<punch_input> mixed{batch[0], punch("3", "2025-03-01 09:00:00")};
        auto counts = store->store_punches("A1", mixed, at(3), false);
        REQUIRE(counts);
        CHECK(*counts.value == store_counts{1, 1});
    }
    SECTION("the same punch from another device is a different punch")
    {
        auto counts = store->store_punches("B2", batch, at(3), false);
        REQUIRE(counts);
        CHECK(*counts.value == store_counts{3, 0});
    }
    SECTION("the stored rows keep the first arrival")
    {
        auto all = store->list_punches({});
        REQUIRE(all);
        REQUIRE(all.value->size() == 3);
        for (const auto& p : *all.value) {
            CHECK(p.received_at == at(1));
        }
    }
}

TEST_CASE("The same PIN and time with another status or verify is a different punch",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    std::vector<punch_input> batch{
        punch("1", "2025-03-01 08:00:00", 0, 1), punch("1", "2025-03-01 08:00:00", 1, 1),
        punch("1", "2025-03-01 08:00:00", 0, 15), punch("01", "2025-03-01 08:00:00", 0, 1),
        punch("1", "2025-03-01 08:00:01", 0, 1)};
    auto counts = store->store_punches("A1", batch, at(1), false);
    REQUIRE(counts);
    CHECK(*counts.value == store_counts{5, 0});
}

TEST_CASE("A punch keeps its local time, UTC instant, fields and raw line as given",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto p = punch("00042", "2025-10-26 02:30:00", 255, 15);
    p.record.work_code = "W7";
    p.record.sequence = std::numeric_limits<std::uint64_t>::max();
    p.utc = std::chrono::sys_seconds{1761442200s};
    p.raw_line = "00042\t2025-10-26 02:30:00\t255\t15\tW7\t0\t0\t0\t0\t0\t18446744073709551615";
    auto no_utc = punch("5", "2025-03-30 02:30:00");
    std::vector<punch_input> batch{p, no_utc};
    REQUIRE(store->store_punches("A1", batch, instant{1'700'000'000'123ms}, true));

    auto all = store->list_punches({});
    REQUIRE(all);
    REQUIRE(all.value->size() == 2);
    const auto& got = all.value->at(0);
    CHECK(got.id > 0);
    CHECK(got.serial_number == "A1");
    CHECK(got.pin == "00042");
    CHECK(got.local_time == "2025-10-26 02:30:00");
    CHECK(got.utc == std::chrono::sys_seconds{1761442200s});
    CHECK(got.status == 255);
    CHECK(got.verify == 15);
    CHECK(got.work_code == "W7");
    CHECK(got.sequence == std::numeric_limits<std::uint64_t>::max());
    CHECK(got.raw_line == p.raw_line);
    CHECK(got.received_at == instant{1'700'000'000'123ms});
    CHECK(got.quarantined);
    const auto& second = all.value->at(1);
    CHECK_FALSE(second.utc);
    CHECK_FALSE(second.sequence);
    CHECK(second.work_code.empty());
    CHECK(second.id > got.id);
}

TEST_CASE("Punches are listed after an id cursor, per device or all, up to a limit",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    std::vector<punch_input> a{punch("1", "2025-03-01 08:00:00"), punch("2", "2025-03-01 08:00:00"),
                               punch("3", "2025-03-01 08:00:00")};
    std::vector<punch_input> b{punch("4", "2025-03-01 08:00:00")};
    REQUIRE(store->store_punches("A1", a, at(1), false));
    REQUIRE(store->store_punches("B2", b, at(2), false));

    auto page = store->list_punches({.limit = 2});
    REQUIRE(page);
    REQUIRE(page.value->size() == 2);
    CHECK(page.value->at(0).pin == "1");
    CHECK(page.value->at(1).pin == "2");
    auto rest = store->list_punches({.after_id = page.value->back().id});
    REQUIRE(rest);
    REQUIRE(rest.value->size() == 2);
    CHECK(rest.value->at(0).pin == "3");
    CHECK(rest.value->at(1).pin == "4");
    auto only_b = store->list_punches({.serial_number = "B2"});
    REQUIRE(only_b);
    REQUIRE(only_b.value->size() == 1);
    CHECK(only_b.value->front().serial_number == "B2");
    auto none = store->list_punches({.after_id = rest.value->back().id});
    REQUIRE(none);
    CHECK(none.value->empty());
}

TEST_CASE("Quarantined punches are kept and released for one device", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    std::vector<punch_input> batch{punch("1", "2025-03-01 08:00:00"),
                                   punch("2", "2025-03-01 08:00:00")};
    REQUIRE(store->store_punches("NEW", batch, at(1), true));
    REQUIRE(store->store_punches("OTHER", batch, at(1), true));
    auto released = store->release_quarantine("NEW");
    REQUIRE(released);
    // The released punches come back as now stored: released, under their new ids, in order.
    REQUIRE(released.value->size() == 2);
    CHECK((*released.value)[0].pin == "1");
    CHECK((*released.value)[1].pin == "2");
    CHECK((*released.value)[0].id < (*released.value)[1].id);
    CHECK_FALSE((*released.value)[0].quarantined);
    auto all = store->list_punches({});
    REQUIRE(all);
    for (const auto& p : *all.value) {
        CHECK(p.quarantined == (p.serial_number == "OTHER"));
    }
    auto again = store->release_quarantine("NEW");
    REQUIRE(again);
    CHECK(again.value->empty());
}

TEST_CASE("Released punches move past a cursor taken before the release, in their order",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    std::vector<punch_input> held{punch("1", "2025-03-01 08:00:00"),
                                  punch("2", "2025-03-01 08:05:00")};
    REQUIRE(store->store_punches("NEW", held, at(1), true));
    std::vector<punch_input> open{punch("3", "2025-03-01 08:10:00")};
    REQUIRE(store->store_punches("OK", open, at(2), false));
    // An HR reader has read everything visible so far.
    auto visible = store->query_punches({});
    REQUIRE(visible);
    REQUIRE(visible.value->size() == 1);
    auto cursor = visible.value->back().id;

    REQUIRE(store->release_quarantine("NEW"));
    punch_filter next;
    next.after_id = cursor;
    auto page = store->query_punches(next);
    REQUIRE(page);
    REQUIRE(page.value->size() == 2);
    CHECK(page.value->at(0).pin == "1");
    CHECK(page.value->at(1).pin == "2");
    // Later punches still get larger ids.
    std::vector<punch_input> later{punch("4", "2025-03-01 08:15:00")};
    REQUIRE(store->store_punches("OK", later, at(3), false));
    next.after_id = page.value->back().id;
    auto last = store->query_punches(next);
    REQUIRE(last);
    REQUIRE(last.value->size() == 1);
    CHECK(last.value->at(0).pin == "4");
}

TEST_CASE("query_punches applies each filter alone and all of them together", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto no_utc = punch("1", "2025-03-01 08:30:00");
    std::vector<punch_input> a{placed_punch("1", "2025-03-01 08:00:00"),
                               placed_punch("2", "2025-03-01 09:00:00"),
                               placed_punch("1", "2025-03-02 08:00:00")};
    std::vector<punch_input> b{no_utc, placed_punch("3", "2025-03-03 10:00:00")};
    std::vector<punch_input> c{placed_punch("1", "2025-03-01 07:00:00")};
    std::vector<punch_input> q{placed_punch("1", "2025-03-01 08:00:00")};
    REQUIRE(store->store_punches("A1", a, at(100), false));
    REQUIRE(store->store_punches("B2", b, at(200), false));
    REQUIRE(store->store_punches("C3", c, at(300), false));
    REQUIRE(store->store_punches("Q9", q, at(400), true));

    using keys = std::vector<std::string>;
    const keys every{"A1 1 2025-03-01 08:00:00", "A1 2 2025-03-01 09:00:00",
                     "A1 1 2025-03-02 08:00:00", "B2 1 2025-03-01 08:30:00",
                     "B2 3 2025-03-03 10:00:00", "C3 1 2025-03-01 07:00:00"};
    CHECK(keys_of(query(*store, {})) == every);

    CHECK(keys_of(query(*store, {.serial_numbers = {"C3", "B2"}})) ==
          keys{every[3], every[4], every[5]});
    CHECK(keys_of(query(*store, {.serial_numbers = {"B2"}})) == keys{every[3], every[4]});
    CHECK(keys_of(query(*store, {.serial_numbers = {"B2", "B2", "NOPE"}})) ==
          keys{every[3], every[4]});
    CHECK(query(*store, {.serial_numbers = {"NOPE"}}).empty());
    CHECK(keys_of(query(*store, {.pin = "1"})) == keys{every[0], every[2], every[3], every[5]});
    CHECK(keys_of(query(*store, {.utc_from = utc_of("2025-03-01 08:00:00")})) ==
          keys{every[0], every[1], every[2], every[4]});
    CHECK(keys_of(query(*store, {.utc_to = utc_of("2025-03-01 09:00:00")})) ==
          keys{every[0], every[5]});
    CHECK(keys_of(query(*store, {.local_from = "2025-03-01 08:30:00"})) ==
          keys{every[1], every[2], every[3], every[4]});
    CHECK(keys_of(query(*store, {.local_to = "2025-03-01 08:30:00"})) == keys{every[0], every[5]});
    CHECK(keys_of(query(*store, {.received_from = at(200)})) == keys{every[3], every[4], every[5]});

    auto all = query(*store, {.include_quarantined = true});
    REQUIRE(all.size() == 7);
    CHECK(all.back().serial_number == "Q9");
    CHECK(all.back().quarantined);
    CHECK(query(*store, {.serial_numbers = {"Q9"}}).empty());

    const auto ids = ids_of(all);
    CHECK(ids_of(query(*store, {.after_id = ids[2]})) ==
          std::vector<std::int64_t>{ids[3], ids[4], ids[5]});
    CHECK(ids_of(query(*store, {.up_to_id = ids[2]})) ==
          std::vector<std::int64_t>{ids[0], ids[1], ids[2]});
    CHECK(ids_of(query(*store, {.after_id = ids[1], .up_to_id = ids[3]})) ==
          std::vector<std::int64_t>{ids[2], ids[3]});
    CHECK(ids_of(query(*store, {.newest_first = true})) ==
          std::vector<std::int64_t>{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]});
    CHECK(
        ids_of(query(*store,
                     {.after_id = ids[1], .up_to_id = ids[4], .newest_first = true, .limit = 2})) ==
        std::vector<std::int64_t>{ids[4], ids[3]});
    CHECK(keys_of(query(*store, {.limit = 2})) == keys{every[0], every[1]});
    CHECK(query(*store, {.limit = 0}).empty());

    // Every condition at once: only A1's and B2's PIN 1 on the first of March, in UTC or local.
    CHECK(keys_of(query(*store, {.serial_numbers = {"A1", "B2", "Q9"},
                                 .pin = "1",
                                 .local_from = "2025-03-01 00:00:00",
                                 .local_to = "2025-03-02 00:00:00",
                                 .include_quarantined = true})) ==
          keys{every[0], every[3], "Q9 1 2025-03-01 08:00:00"});
    CHECK(keys_of(query(*store, {.serial_numbers = {"A1", "B2", "C3"},
                                 .pin = "1",
                                 .utc_from = utc_of("2025-03-01 07:00:00"),
                                 .utc_to = utc_of("2025-03-02 08:00:00"),
                                 .local_from = "2025-03-01 07:30:00",
                                 .received_from = at(100),
                                 .after_id = 0,
                                 .up_to_id = ids[5]})) == keys{every[0]});

    // Values are bound, never spliced into the SQL.
    CHECK(query(*store, {.pin = "1' OR '1' = '1"}).empty());
    CHECK(query(*store, {.serial_numbers = {"A1') OR ('1' = '1"}}).empty());
}

TEST_CASE("Pages of query_punches return thousands of punches exactly once in id order",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    constexpr int per_device = 850; // 2550 punches in all, some quarantined
    std::vector<punch_input> batch;
    for (int i = 0; i < per_device; ++i) {
        batch.push_back(
            punch(std::to_string(i % 37),
                  fmt::format("2025-03-{:02} {:02}:{:02}:00", 1 + i / 60, (i / 60) % 24, i % 60)));
    }
    // The devices' ids interleave: five batches each, in turn.
    for (int start = 0; start < per_device; start += 170) {
        for (std::string_view sn : {"A1", "B2", "C3"}) {
            std::span<const punch_input> part{batch.data() + start, 170};
            REQUIRE(store->store_punches(sn, part, at(start), sn == "C3"));
        }
    }
    auto last = store->last_punch_id();
    REQUIRE(last);

    auto page_through = [&](punch_filter filter) {
        std::vector<stored_punch> all;
        for (int pages = 0; pages < 1000; ++pages) {
            auto page = query(*store, filter);
            if (page.empty()) {
                break;
            }
            CHECK(page.size() <= filter.limit);
            all.insert(all.end(), page.begin(), page.end());
            if (filter.newest_first) {
                filter.up_to_id = page.back().id - 1;
            } else {
                filter.after_id = page.back().id;
            }
            // Punches stored mid-export are past its upper bound.
            std::vector<punch_input> late{
                punch("late", fmt::format("2025-04-01 00:{:02}:00", pages % 60))};
            REQUIRE(store->store_punches(pages % 2 ? "A1" : "B2", late, at(9999), false));
        }
        return all;
    };

    SECTION("every device, oldest first, up to the export's last id")
    {
        auto all = page_through({.up_to_id = *last.value, .limit = 100});
        CHECK(all.size() == 2 * per_device);
        CHECK(std::is_sorted(all.begin(), all.end(),
                             [](const auto& x, const auto& y) { return x.id < y.id; }));
        auto ids = ids_of(all);
        CHECK(std::set<std::int64_t>(ids.begin(), ids.end()).size() == ids.size());
        CHECK(std::none_of(all.begin(), all.end(),
                           [](const auto& p) { return p.quarantined || p.pin == "late"; }));
        CHECK(ids.back() < *last.value); // C3's quarantined punches came last
    }
    SECTION("two devices with quarantined ones, oldest first")
    {
        auto all = page_through({.serial_numbers = {"A1", "C3"},
                                 .up_to_id = *last.value,
                                 .include_quarantined = true,
                                 .limit = 333});
        CHECK(all.size() == 2 * per_device);
        CHECK(std::adjacent_find(all.begin(), all.end(), [](const auto& x, const auto& y) {
                  return x.id >= y.id;
              }) == all.end());
        CHECK(std::count_if(all.begin(), all.end(),
                            [](const auto& p) { return p.serial_number == "C3"; }) == per_device);
        CHECK(all.back().id == *last.value);
    }
    SECTION("newest first, the cursor moving down")
    {
        auto all = page_through({.up_to_id = *last.value, .newest_first = true, .limit = 128});
        CHECK(all.size() == 2 * per_device);
        CHECK(std::adjacent_find(all.begin(), all.end(), [](const auto& x, const auto& y) {
                  return x.id <= y.id;
              }) == all.end());
        auto oldest_first = query(*store, {.limit = 1});
        REQUIRE(oldest_first.size() == 1);
        CHECK(all.back() == oldest_first.front());
    }
    SECTION("one PIN across devices")
    {
        auto all = page_through({.pin = "5", .up_to_id = *last.value, .limit = 10});
        // i % 37 == 5 for i in [0, 850): 23 values, in A1 and B2.
        CHECK(all.size() == 2 * 23);
        CHECK(std::all_of(all.begin(), all.end(), [](const auto& p) { return p.pin == "5"; }));
    }
}

TEST_CASE("last_punch_id is 0 for an empty store and then the largest id", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto none = store->last_punch_id();
    REQUIRE(none);
    CHECK(*none.value == 0);
    std::vector<punch_input> batch{punch("1", "2025-03-01 08:00:00"),
                                   punch("2", "2025-03-01 08:00:00")};
    REQUIRE(store->store_punches("Q9", batch, at(1), true));
    auto all = query(*store, {.include_quarantined = true});
    REQUIRE(all.size() == 2);
    auto last = store->last_punch_id();
    REQUIRE(last);
    CHECK(*last.value == all.back().id);
}

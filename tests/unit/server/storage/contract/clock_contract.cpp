#include "tests/unit/server/storage/contract/cases.hpp"

#include <catch2/catch.hpp>

// The drift watch's offset history every backend must keep.

using namespace adms::storage_test;

TEST_CASE("Clock offsets are appended, listed per device in order and pruned by age",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    std::vector<clock_offset_point> points{
        {"A1", at(10), 95000, 1000, "punches"},
        {"B2", at(11), -2000, 1200, "punches"},
        {"A1", at(20), 0, 1000, "sync"},
    };
    REQUIRE(store->store_clock_offsets(points, at(0)));
    auto a1 = store->list_clock_offsets({.serial_number = "A1"});
    REQUIRE(a1);
    REQUIRE(a1.value->size() == 2);
    CHECK((*a1.value)[0].point.offset_ms == 95000);
    CHECK((*a1.value)[0].point.measured_at == at(10));
    CHECK((*a1.value)[0].point.uncertainty_ms == 1000);
    CHECK((*a1.value)[0].point.source == "punches");
    CHECK((*a1.value)[1].point.source == "sync");
    CHECK((*a1.value)[0].id < (*a1.value)[1].id);

    // Paging by id, and the measured-time range.
    auto page = store->list_clock_offsets(
        {.serial_number = "A1", .after_id = (*a1.value)[0].id, .limit = 10});
    REQUIRE(page);
    REQUIRE(page.value->size() == 1);
    CHECK((*page.value)[0].point.source == "sync");
    auto ranged = store->list_clock_offsets({.serial_number = "A1", .from = at(15), .to = at(25)});
    REQUIRE(ranged);
    REQUIRE(ranged.value->size() == 1);
    CHECK((*ranged.value)[0].point.measured_at == at(20));

    // A later write prunes the points of the devices it writes for, measured before keep_after.
    std::vector<clock_offset_point> later{{"A1", at(30), 500, 1000, "punches"}};
    REQUIRE(store->store_clock_offsets(later, at(15)));
    auto kept = store->list_clock_offsets({.serial_number = "A1"});
    REQUIRE(kept);
    REQUIRE(kept.value->size() == 2);
    CHECK((*kept.value)[0].point.measured_at == at(20));
    auto b2 = store->list_clock_offsets({.serial_number = "B2"});
    REQUIRE(b2);
    CHECK(b2.value->size() == 1); // not written for: left alone

    // The schema refuses a source it does not know; the batch is stored whole or not at all.
    std::vector<clock_offset_point> bad{{"A1", at(40), 1, 1, "punches"},
                                        {"A1", at(41), 1, 1, "guess"}};
    auto refused = store->store_clock_offsets(bad, at(0));
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error.message, Catch::Contains("store_clock_offsets"));
    CHECK(store->list_clock_offsets({.serial_number = "A1"}).value->size() == 2);
}

#include "tests/unit/server/storage/contract/cases.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

// The outbox every backend must have: an event and its deliveries commit with the data they
// announce or not at all; deliveries come back in outbox order per endpoint and lane; attempts
// are logged; a replay makes delivered events pending again with the same ids and bytes;
// pruning keeps what is not delivered.

using namespace adms::storage_test;

namespace {

webhook_endpoint_row endpoint(std::string name)
{
    return {std::move(name), R"({"url":"https://hr.example/hook"})", true, "", "api", at(1)};
}

outbox_event event(std::string id, std::string lane, std::int64_t created_s = 10)
{
    outbox_event e;
    e.id = std::move(id);
    e.type = "punch.created";
    e.lane = std::move(lane);
    e.created_at = at(created_s);
    e.body = fmt::format(R"({{"id":"{}","type":"punch.created"}})", e.id);
    return e;
}

storage_status save(test_store& store, const webhook_endpoint_row& row)
{
    return store.db().write([&](write_tx& tx) { return tx.outbox().save_endpoint(row); });
}

storage_result<std::int64_t> append(test_store& store, outbox_event e,
                                    std::vector<std::string> endpoints)
{
    return store.db().write([&](write_tx& tx) -> storage_result<std::int64_t> {
        auto appended = tx.outbox().append_event(e, endpoints);
        if (!appended) {
            return appended.error;
        }
        return e.seq;
    });
}

std::vector<std::string> ids_of(const std::vector<webhook_delivery>& deliveries)
{
    std::vector<std::string> ids;
    for (const auto& d : deliveries) {
        ids.push_back(d.event.id);
    }
    return ids;
}

attempt_record attempt(int status, delivery_state after, std::int64_t at_s, std::int64_t next_s = 0)
{
    attempt_record r;
    r.attempt.at = at(at_s);
    r.attempt.status = status;
    r.attempt.error = status == 0 ? "connection refused" : "";
    r.attempt.duration = std::chrono::milliseconds{12};
    r.attempt.response = status == 0 ? "" : "ok";
    r.state = after;
    r.next_attempt = at(next_s);
    return r;
}

} // namespace

TEST_CASE("Endpoints are saved, replaced by name and deleted with their deliveries",
          "[storage][contract][outbox]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    REQUIRE(save(*store, endpoint("payroll")));
    auto replaced = endpoint("payroll");
    replaced.enabled = false;
    replaced.disabled_reason = "410 Gone";
    REQUIRE(save(*store, replaced));
    REQUIRE(save(*store, endpoint("erp")));
    auto all = store->db().outbox().endpoints();
    REQUIRE(all);
    REQUIRE(all.value->size() == 2);
    CHECK((*all.value)[0].name == "erp");
    CHECK((*all.value)[1] == replaced);

    REQUIRE(append(*store, event("evt_1", "A1"), {"payroll", "erp"}));
    auto deleted =
        store->db().write([&](write_tx& tx) { return tx.outbox().delete_endpoint("payroll"); });
    REQUIRE(deleted);
    CHECK(*deleted.value);
    auto gone = store->db().outbox().list_deliveries({.endpoint = "payroll"});
    REQUIRE(gone);
    CHECK(gone.value->empty());
    auto kept = store->db().outbox().list_deliveries({.endpoint = "erp"});
    REQUIRE(kept);
    CHECK(ids_of(*kept.value) == std::vector<std::string>{"evt_1"});
    auto again =
        store->db().write([&](write_tx& tx) { return tx.outbox().delete_endpoint("payroll"); });
    REQUIRE(again);
    CHECK_FALSE(*again.value);
}

TEST_CASE("Appended events come back per endpoint in outbox order, byte for byte",
          "[storage][contract][outbox]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    REQUIRE(save(*store, endpoint("a")));
    REQUIRE(save(*store, endpoint("b")));
    auto first = append(*store, event("evt_1", "A1"), {"a"});
    auto second = append(*store, event("evt_2", "B2"), {"a", "b"});
    auto third = append(*store, event("evt_3", "A1"), {"a"});
    REQUIRE(first);
    REQUIRE(second);
    REQUIRE(third);
    CHECK(*first.value < *second.value);
    CHECK(*second.value < *third.value);

    auto to_a = store->db().outbox().list_deliveries({.endpoint = "a"});
    REQUIRE(to_a);
    CHECK(ids_of(*to_a.value) == std::vector<std::string>{"evt_1", "evt_2", "evt_3"});
    const auto& d = (*to_a.value)[1];
    CHECK(d.event == [&] {
        auto e = event("evt_2", "B2");
        e.seq = *second.value;
        return e;
    }());
    CHECK(d.state == delivery_state::pending);
    CHECK(d.attempts == 0);
    CHECK(d.next_attempt == at(10));

    auto lane = store->db().outbox().list_deliveries({.endpoint = "a", .lane = "A1"});
    REQUIRE(lane);
    CHECK(ids_of(*lane.value) == std::vector<std::string>{"evt_1", "evt_3"});
    auto page = store->db().outbox().list_deliveries(
        {.endpoint = "a", .after_seq = *first.value, .limit = 1});
    REQUIRE(page);
    CHECK(ids_of(*page.value) == std::vector<std::string>{"evt_2"});
    auto to_b = store->db().outbox().list_deliveries({.endpoint = "b"});
    REQUIRE(to_b);
    CHECK(ids_of(*to_b.value) == std::vector<std::string>{"evt_2"});

    auto lanes = store->db().outbox().pending_lanes("a");
    REQUIRE(lanes);
    CHECK(*lanes.value ==
          std::vector<outbox_store::lane_head>{{"A1", *first.value}, {"B2", *second.value}});

    SECTION("an event id is stored once")
    {
        CHECK_FALSE(append(*store, event("evt_1", "A1"), {"a"}));
    }
    SECTION("found by endpoint and event id")
    {
        auto found = store->db().outbox().find_delivery("b", "evt_2");
        REQUIRE(found);
        REQUIRE(found.value->has_value());
        CHECK((*found.value)->event.seq == *second.value);
        auto missing = store->db().outbox().find_delivery("b", "evt_1");
        REQUIRE(missing);
        CHECK_FALSE(missing.value->has_value());
    }
}

TEST_CASE("Attempts are logged and move a delivery to delivered or failed",
          "[storage][contract][outbox]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    REQUIRE(save(*store, endpoint("a")));
    auto seq = append(*store, event("evt_1", "A1"), {"a"});
    auto later = append(*store, event("evt_2", "A1", 20), {"a"});
    REQUIRE(seq);
    REQUIRE(later);
    auto record = [&](std::int64_t s, const attempt_record& r) {
        return store->db().write(
            [&](write_tx& tx) { return tx.outbox().record_attempt("a", s, r); });
    };
    REQUIRE(record(*seq.value, attempt(0, delivery_state::pending, 11, 16)));
    auto summary = store->db().outbox().summary("a");
    REQUIRE(summary);
    CHECK(summary.value->pending == 2);
    CHECK(summary.value->failed == 0);
    CHECK(summary.value->oldest_pending == at(10));

    REQUIRE(record(*seq.value, attempt(204, delivery_state::delivered, 16)));
    REQUIRE(record(*later.value, attempt(422, delivery_state::failed, 21)));
    auto d = store->db().outbox().find_delivery("a", "evt_1");
    REQUIRE(d);
    REQUIRE(d.value->has_value());
    CHECK((*d.value)->state == delivery_state::delivered);
    CHECK((*d.value)->attempts == 2);
    CHECK((*d.value)->last_status == 204);
    CHECK((*d.value)->delivered_at == at(16));

    auto log = store->db().outbox().attempts("a", *seq.value);
    REQUIRE(log);
    REQUIRE(log.value->size() == 2);
    CHECK((*log.value)[0].number == 1);
    CHECK((*log.value)[0].error == "connection refused");
    CHECK((*log.value)[1].number == 2);
    CHECK((*log.value)[1].status == 204);
    CHECK((*log.value)[1].duration == std::chrono::milliseconds{12});
    CHECK((*log.value)[1].response == "ok");

    summary = store->db().outbox().summary("a");
    REQUIRE(summary);
    CHECK(summary.value->pending == 0);
    CHECK(summary.value->failed == 1);
    CHECK_FALSE(summary.value->oldest_pending);
    auto lanes = store->db().outbox().pending_lanes("a");
    REQUIRE(lanes);
    CHECK(lanes.value->empty());
    auto failed =
        store->db().outbox().list_deliveries({.endpoint = "a", .state = delivery_state::failed});
    REQUIRE(failed);
    CHECK(ids_of(*failed.value) == std::vector<std::string>{"evt_2"});

    SECTION("a replay makes delivered and failed ones pending again, same ids and bytes")
    {
        auto requeued = store->db().write(
            [&](write_tx& tx) { return tx.outbox().requeue({.endpoint = "a"}, at(30)); });
        REQUIRE(requeued);
        CHECK(*requeued.value == 2);
        auto pending = store->db().outbox().list_deliveries(
            {.endpoint = "a", .state = delivery_state::pending});
        REQUIRE(pending);
        CHECK(ids_of(*pending.value) == std::vector<std::string>{"evt_1", "evt_2"});
        CHECK((*pending.value)[0].next_attempt == at(30));
        CHECK((*pending.value)[0].event.body == event("evt_1", "A1").body);
        CHECK((*pending.value)[0].attempts == 2); // the log stays
    }
    SECTION("a retry of parked ones only leaves delivered ones alone")
    {
        auto requeued = store->db().write([&](write_tx& tx) {
            return tx.outbox().requeue({.endpoint = "a", .delivered = false}, at(30));
        });
        REQUIRE(requeued);
        CHECK(*requeued.value == 1);
    }
    SECTION("a replay by time range takes only the events created in it")
    {
        auto requeued = store->db().write([&](write_tx& tx) {
            return tx.outbox().requeue(
                {.endpoint = "a", .created_from = at(15), .created_to = at(25)}, at(30));
        });
        REQUIRE(requeued);
        CHECK(*requeued.value == 1);
        auto pending = store->db().outbox().list_deliveries(
            {.endpoint = "a", .state = delivery_state::pending});
        REQUIRE(pending);
        CHECK(ids_of(*pending.value) == std::vector<std::string>{"evt_2"});
    }
    SECTION("pruning drops delivered rows older than the cut, never pending or failed ones")
    {
        auto pruned =
            store->db().write([&](write_tx& tx) { return tx.outbox().prune(at(100), 1000); });
        REQUIRE(pruned);
        CHECK(pruned.value->deliveries == 1);
        CHECK(pruned.value->events == 1);
        auto left = store->db().outbox().list_deliveries({.endpoint = "a"});
        REQUIRE(left);
        CHECK(ids_of(*left.value) == std::vector<std::string>{"evt_2"});
        // The event went with its last delivery: nothing refers to its id any more.
        CHECK(append(*store, event("evt_1", "A1"), {"a"}));
    }
}

TEST_CASE("An upload's events are appended in one call, numbered in order, all or none",
          "[storage][contract][outbox]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    REQUIRE(save(*store, endpoint("a")));
    REQUIRE(save(*store, endpoint("b")));
    REQUIRE(append(*store, event("evt_taken", "A1"), {"a"}));
    auto append_all = [&](std::vector<outbox_event>& rows,
                          const std::vector<std::vector<std::string>>& to) {
        return store->db().write([&](write_tx& tx) { return tx.outbox().append_events(rows, to); });
    };

    std::vector<outbox_event> rows{event("evt_1", "A1"), event("evt_2", "B2"),
                                   event("evt_3", "A1")};
    REQUIRE(append_all(rows, {{"a"}, {"a", "b"}, {"b"}}));
    CHECK(rows[0].seq < rows[1].seq);
    CHECK(rows[1].seq < rows[2].seq);
    auto to_a = store->db().outbox().list_deliveries({.endpoint = "a"});
    REQUIRE(to_a);
    CHECK(ids_of(*to_a.value) == std::vector<std::string>{"evt_taken", "evt_1", "evt_2"});
    auto to_b = store->db().outbox().list_deliveries({.endpoint = "b"});
    REQUIRE(to_b);
    CHECK(ids_of(*to_b.value) == std::vector<std::string>{"evt_2", "evt_3"});

    // A taken id in the middle: none of the three is stored.
    std::vector<outbox_event> bad{event("evt_4", "A1"), event("evt_taken", "A1"),
                                  event("evt_5", "A1")};
    CHECK_FALSE(append_all(bad, {{"a"}, {"a"}, {"a"}}));
    to_a = store->db().outbox().list_deliveries({.endpoint = "a"});
    REQUIRE(to_a);
    CHECK(to_a.value->size() == 3);
    // Mismatched lists are an error, not a guess.
    std::vector<outbox_event> one{event("evt_6", "A1")};
    CHECK_FALSE(append_all(one, {}));
}

TEST_CASE("Pruning goes oldest first in rounds of at most its limit", "[storage][contract][outbox]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    REQUIRE(save(*store, endpoint("a")));
    for (int i = 1; i <= 5; ++i) {
        auto seq = append(*store, event(fmt::format("evt_{}", i), "A1", i), {"a"});
        REQUIRE(seq);
        // Delivered in the reverse order of creation: the oldest delivery is evt_5's.
        REQUIRE(store->db().write([&](write_tx& tx) {
            return tx.outbox().record_attempt("a", *seq.value,
                                              attempt(204, delivery_state::delivered, 20 - i));
        }));
    }
    auto round = [&] {
        auto pruned =
            store->db().write([&](write_tx& tx) { return tx.outbox().prune(at(100), 2); });
        INFO(pruned.error.message);
        REQUIRE(pruned);
        return std::pair{pruned.value->deliveries, pruned.value->events};
    };
    CHECK(round() == std::pair<std::size_t, std::size_t>{2, 2});
    auto left = store->db().outbox().list_deliveries({.endpoint = "a"});
    REQUIRE(left);
    CHECK(ids_of(*left.value) == std::vector<std::string>{"evt_1", "evt_2", "evt_3"});
    CHECK(round() == std::pair<std::size_t, std::size_t>{2, 2});
    CHECK(round() == std::pair<std::size_t, std::size_t>{1, 1});
    CHECK(round() == std::pair<std::size_t, std::size_t>{0, 0});
}

TEST_CASE("An event and the data it announces commit together or not at all",
          "[storage][contract][outbox]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    REQUIRE(save(*store, endpoint("a")));
    REQUIRE(append(*store, event("evt_dup", "A1"), {"a"}));

    // In one batch: a group whose event fails (a duplicate id) takes its punch with it, while
    // the batch's other call commits.
    std::optional<storage_status> failed_group;
    std::optional<storage_result<punch_counts>> other;
    auto committed = store->db().write_batch([&](write_tx& tx) {
        failed_group.emplace(tx.atomic([&]() -> storage_status {
            auto stored = tx.punches().store_punches(
                "A1", std::vector{punch("1", "2025-03-01 08:00:00")}, at(2), false);
            if (!stored) {
                return stored.error;
            }
            auto e = event("evt_dup", "A1");
            return tx.outbox().append_event(e, std::vector<std::string>{"a"});
        }));
        other.emplace(tx.punches().store_punches(
            "B2", std::vector{punch("2", "2025-03-01 08:00:00")}, at(2), false));
    });
    REQUIRE(committed);
    CHECK_FALSE(*failed_group);
    CHECK(*other);
    auto punches = store->query_punches({});
    REQUIRE(punches);
    REQUIRE(punches.value->size() == 1);
    CHECK(punches.value->front().serial_number == "B2");

    SECTION("a group that succeeds stores both")
    {
        auto ok = store->db().write([&](write_tx& tx) {
            return tx.atomic([&]() -> storage_status {
                auto stored = tx.punches().store_punches(
                    "A1", std::vector{punch("1", "2025-03-01 08:00:00")}, at(3), false);
                if (!stored) {
                    return stored.error;
                }
                CHECK(stored.value->ids.size() == 1);
                CHECK(stored.value->ids[0] > 0);
                auto e = event("evt_new", "A1");
                return tx.outbox().append_event(e, std::vector<std::string>{"a"});
            });
        });
        REQUIRE(ok);
        auto deliveries = store->db().outbox().list_deliveries({.endpoint = "a"});
        REQUIRE(deliveries);
        CHECK(ids_of(*deliveries.value) == std::vector<std::string>{"evt_dup", "evt_new"});
    }
}

TEST_CASE("store_punches gives each new punch its id and a duplicate 0", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    std::vector<punch_input> batch{punch("1", "2025-03-01 08:00:00"),
                                   punch("1", "2025-03-01 08:00:00"),
                                   punch("2", "2025-03-01 08:00:00")};
    auto stored = store->store_punches("A1", batch, at(1), false);
    REQUIRE(stored);
    REQUIRE(stored.value->ids.size() == 3);
    CHECK(stored.value->ids[1] == 0);
    auto rows = store->query_punches({});
    REQUIRE(rows);
    REQUIRE(rows.value->size() == 2);
    CHECK(stored.value->ids[0] == (*rows.value)[0].id);
    CHECK(stored.value->ids[2] == (*rows.value)[1].id);
}

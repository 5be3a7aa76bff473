#include "tests/unit/server/storage/contract/cases.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <optional>
#include <thread>

// The database every backend must be: durable across re-opening, closed for good after close,
// reads that never wait for a batch, and batches whose failing calls are undone alone.

using namespace adms::storage_test;

TEST_CASE("Re-opening a database keeps devices, punches and commands", "[storage][contract]")
{
    auto backend = make_backend_factory();
    std::string command_id;
    {
        auto store = open_store(*backend);
        device_record d;
        d.serial_number = "A1";
        d.first_seen = at(100);
        d.last_seen = at(200);
        d.attlog_stamp = "9999";
        REQUIRE(store->upsert_device(d));
        std::vector<punch_input> punches{punch("1", "2025-03-01 08:00:00")};
        REQUIRE(store->store_punches("A1", punches, at(200), false));
        auto id = store->enqueue_command("A1", "INFO", "admin", at(200));
        REQUIRE(id);
        command_id = *id.value;
        REQUIRE(store->close());
    }
    auto store = reopen_store(*backend);
    auto device = store->load_device("A1");
    REQUIRE(device);
    REQUIRE(device.value->has_value());
    CHECK((*device.value)->attlog_stamp == "9999");
    CHECK((*device.value)->first_seen == at(100));
    auto punches = store->list_punches({});
    REQUIRE(punches);
    REQUIRE(punches.value->size() == 1);
    CHECK(punches.value->front().pin == "1");
    auto commands = store->list_commands("A1");
    REQUIRE(commands);
    REQUIRE(commands.value->size() == 1);
    CHECK(commands.value->front().id == command_id);
    CHECK(commands.value->front().state == command_state::queued);

    SECTION("and a re-sent batch after re-opening is still a duplicate")
    {
        std::vector<punch_input> again{punch("1", "2025-03-01 08:00:00")};
        auto counts = store->store_punches("A1", again, at(300), false);
        REQUIRE(counts);
        CHECK(*counts.value == store_counts{0, 1});
    }
    SECTION("and command ids are never reused")
    {
        auto id = store->enqueue_command("A1", "CHECK", "admin", at(300));
        REQUIRE(id);
        CHECK(*id.value != command_id);
        CHECK(std::stoll(*id.value) > std::stoll(command_id));
    }
}

TEST_CASE("After close every call returns an error value", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    REQUIRE(store->close());
    REQUIRE(store->close()); // twice is fine
    auto listed = store->list_punches({});
    REQUIRE_FALSE(listed);
    CHECK_THAT(listed.error.message, Catch::Contains("closed"));
    auto id = store->enqueue_command("A1", "INFO", "admin", at(0));
    CHECK_FALSE(id);
}

TEST_CASE("A read runs while a write call of the same storage is in progress",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    std::vector<punch_input> batch{punch("1", "2025-03-01 08:00:00")};
    REQUIRE(store->store_punches("A1", batch, at(1), false));
    REQUIRE(store->enqueue_command("A1", "INFO", "admin", at(1)));

    // The chooser runs inside claim_commands' transaction, holding the write connection.
    std::promise<void> inside;
    std::promise<void> release;
    auto released = release.get_future();
    std::atomic<bool> chooser_timed_out{false};
    std::optional<storage_result<std::vector<queued_command>>> claimed;
    std::jthread writer{[&] {
        claimed = store->claim_commands("A1", at(2), policy, [&](const auto& offered) {
            inside.set_value();
            // A read that waited for this call would only finish after this gives up.
            if (released.wait_for(10s) != std::future_status::ready) {
                chooser_timed_out = true;
            }
            return choose_all(offered);
        });
    }};
    inside.get_future().wait();
    auto punches = store->query_punches({});
    auto listed = store->list_commands("A1");
    auto health = store->check();
    release.set_value();
    writer.join();

    CHECK_FALSE(chooser_timed_out);
    REQUIRE(claimed);
    CHECK(*claimed);
    REQUIRE(punches);
    CHECK(punches.value->size() == 1);
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 1);
    CHECK(listed.value->front().state == command_state::queued); // the claim had not committed
    CHECK(health);
    auto after = store->list_commands("A1");
    REQUIRE(after);
    CHECK(after.value->front().state == command_state::sent);
}

TEST_CASE("A write batch commits every call once, and a failing call is undone alone",
          "[storage][contract][batch]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    device_record taken;
    taken.serial_number = "A1";
    taken.alias = "front";
    REQUIRE(store->upsert_device(taken));

    std::vector<punch_input> first{punch("1", "2025-03-01 08:00:00")};
    std::vector<punch_input> second{punch("2", "2025-03-01 08:01:00"),
                                    punch("1", "2025-03-01 08:00:00")};
    device_record clash;
    clash.serial_number = "B2";
    clash.alias = "front"; // used by A1: refused
    std::optional<storage_result<punch_counts>> a;
    std::optional<storage_result<device_record>> b;
    std::optional<storage_result<punch_counts>> c;
    auto committed = store->write_batch([&](write_tx& tx) {
        a.emplace(tx.punches().store_punches("A1", first, at(1), false));
        b.emplace(tx.devices().upsert_device(clash));
        c.emplace(tx.punches().store_punches("A1", second, at(2), false));
    });
    REQUIRE(committed);
    REQUIRE(*a);
    CHECK(*a->value == store_counts{1, 0});
    CHECK_FALSE(*b);
    REQUIRE(*c);
    // The second call saw the first one's row inside the same transaction.
    CHECK(*c->value == store_counts{1, 1});
    CHECK(store->list_punches({}).value->size() == 2);
    CHECK_FALSE(store->load_device("B2").value->has_value());

    // After the batch the connection is back to one transaction per call.
    REQUIRE(
        store->store_punches("A1", std::vector{punch("3", "2025-03-01 09:00:00")}, at(3), false));
    CHECK(store->list_punches({}).value->size() == 3);
}

TEST_CASE("A batch whose commit fails returns the commit's error and stores nothing it wrote",
          "[storage][contract][batch]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    REQUIRE(
        store->store_punches("A1", std::vector{punch("1", "2025-03-01 08:00:00")}, at(1), false));
    if (!backend->inject_commit_failure()) {
        WARN("this backend cannot make a commit fail");
        return;
    }
    std::optional<storage_result<punch_counts>> punches;
    std::optional<storage_result<std::string>> command;
    auto committed = store->write_batch([&](write_tx& tx) {
        punches.emplace(tx.punches().store_punches(
            "A1", std::vector{punch("2", "2025-03-01 09:00:00")}, at(2), false));
        command.emplace(tx.commands().enqueue_command("A1", "INFO", "admin", at(2)));
    });
    REQUIRE_FALSE(committed);
    CHECK_FALSE(committed.error.message.empty());
    // Each call succeeded inside the transaction; the commit lost them all.
    REQUIRE(punches);
    CHECK(*punches);
    REQUIRE(command);
    CHECK(*command);
    CHECK(keys_of(query(*store, {})) == std::vector<std::string>{"A1 1 2025-03-01 08:00:00"});
    CHECK(store->list_commands("A1").value->empty());

    // A single write gets the commit's error, not its own result.
    auto single =
        store->store_punches("A1", std::vector{punch("3", "2025-03-01 10:00:00")}, at(3), false);
    REQUIRE_FALSE(single);
    CHECK(query(*store, {}).size() == 1);
    // Batches the failure does not touch still commit.
    REQUIRE(store->enqueue_command("A1", "INFO", "admin", at(4)));
    CHECK(store->list_commands("A1").value->size() == 1);
}

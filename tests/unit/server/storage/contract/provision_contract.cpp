#include "tests/unit/server/storage/contract/cases.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

// The provisioning state every backend must keep: the latest item per (device, PIN, kind, key),
// read back with its command's state and Return= as the queue has them; the users and templates
// a device holds; and forgetting a device (a replaced terminal) or one user on it.

using namespace adms::storage_test;

namespace {

provision_item item_of(std::string pin, std::string kind, std::string hash, std::string id)
{
    provision_item i;
    i.serial_number = "A1";
    i.pin = std::move(pin);
    i.kind = std::move(kind);
    i.content_hash = std::move(hash);
    i.command_id = std::move(id);
    i.planned_at = at(5);
    return i;
}

// Queues a command and records it as the item's latest, in one batch, as the provisioner does.
std::string queue(test_store& store, provision_item item)
{
    auto id = store.db().write([&](write_tx& tx) -> storage_result<std::string> {
        auto queued = tx.commands().enqueue_command(item.serial_number, "DATA UPDATE USERINFO",
                                                    "provision", at(5));
        if (!queued) {
            return queued.error;
        }
        item.command_id = *queued.value;
        auto recorded = tx.provisioning().record_item(item);
        if (!recorded) {
            return recorded.error;
        }
        return *queued.value;
    });
    REQUIRE(id);
    return *id.value;
}

std::vector<provision_item> items(test_store& store)
{
    auto listed = store.db().provisioning().items_of("A1");
    REQUIRE(listed);
    return *listed.value;
}

} // namespace

TEST_CASE("Provisioning items are read back with their command's state",
          "[storage][contract][provisioning]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto first = queue(*store, item_of("1001", "user", "h1", ""));
    queue(*store, item_of("1002", "user", "h2", ""));

    auto listed = items(*store);
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].pin == "1001");
    CHECK(listed[0].command_id == first);
    CHECK(listed[0].state == command_state::queued);
    CHECK_FALSE(listed[0].return_code);

    // The device answers the first with Return=0 and the second is refused.
    std::vector<adms::protocol::command_result> results{
        {first, 0, "DATA", {}, ""}, {listed[1].command_id, -1004, "DATA", {}, ""}};
    REQUIRE(store->db().write(
        [&](write_tx& tx) { return tx.commands().record_command_results("A1", results, at(6)); }));
    listed = items(*store);
    CHECK(listed[0].state == command_state::done);
    CHECK(listed[0].return_code == 0);
    CHECK(listed[1].state == command_state::failed);
    CHECK(listed[1].return_code == -1004);

    SECTION("a newer plan of the same key replaces the item")
    {
        auto second = queue(*store, item_of("1001", "user", "h1b", ""));
        listed = items(*store);
        REQUIRE(listed.size() == 2);
        CHECK(listed[0].content_hash == "h1b");
        CHECK(listed[0].command_id == second);
        CHECK(listed[0].state == command_state::queued);
    }
    SECTION("forgetting the device forgets its items, users and templates")
    {
        auto user =
            adms::protocol::parse_operlog("USER PIN=1001\tName=Ann\tPri=0\tPasswd=\tCard=\t"
                                          "Grp=1\tTZ=0000000000000000\tVerify=0\tViceCard=\n");
        REQUIRE(user.rejected.empty());
        REQUIRE(store->store_operlog("A1", user.records, at(7)));
        REQUIRE(store->db().write([&](write_tx& tx) {
            return tx.provisioning().store_device_template({"A1", "1001", "1:6:0", "t1", at(7)});
        }));
        auto users = store->db().provisioning().device_users("A1");
        REQUIRE(users);
        REQUIRE(users.value->size() == 1);
        CHECK((*users.value)[0].name == "Ann");
        REQUIRE(
            store->db().write([&](write_tx& tx) { return tx.provisioning().forget_device("A1"); }));
        CHECK(items(*store).empty());
        users = store->db().provisioning().device_users("A1");
        REQUIRE(users);
        CHECK(users.value->empty());
        auto templates = store->db().provisioning().device_templates("A1");
        REQUIRE(templates);
        CHECK(templates.value->empty());
    }
}

TEST_CASE("A device's templates are kept per key and forgotten with their user",
          "[storage][contract][provisioning]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto put = [&](device_template t) {
        REQUIRE(store->db().write(
            [&](write_tx& tx) { return tx.provisioning().store_device_template(t); }));
    };
    put({"A1", "1001", "1:6:0", "old", at(1)});
    put({"A1", "1001", "1:6:0", "new", at(2)}); // one slot per key: the newest
    put({"A1", "1001", "9:0:0", "face", at(2)});
    put({"A1", "1002", "1:1:0", "other", at(2)});
    put({"B2", "1001", "1:6:0", "elsewhere", at(2)});
    auto listed = store->db().provisioning().device_templates("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 3);
    CHECK((*listed.value)[0].content_hash == "new");
    CHECK((*listed.value)[0].updated_at == at(2));

    auto kept = queue(*store, item_of("1002", "user", "h2", ""));
    queue(*store, item_of("1001", "user", "h1", ""));
    REQUIRE(store->db().write(
        [&](write_tx& tx) { return tx.provisioning().forget_device_user("A1", "1001"); }));
    auto left = items(*store);
    REQUIRE(left.size() == 1); // the PIN's items went with it
    CHECK(left[0].command_id == kept);
    listed = store->db().provisioning().device_templates("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 1);
    CHECK((*listed.value)[0].pin == "1002");
    auto other = store->db().provisioning().device_templates("B2");
    REQUIRE(other);
    CHECK(other.value->size() == 1);
}

#include "tests/unit/server/storage/contract/cases.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

// The people directory every backend must keep: persons by PIN with their areas (which must
// exist), saved as a whole and reported unchanged when nothing changed; listings by area, status
// and source with a PIN cursor; areas with their device and person counts, never deleted under a
// device; templates kept per algorithm version side by side.

using namespace adms::storage_test;
using adms::server::personnel::area;
using adms::server::personnel::person;
using adms::server::personnel::person_source;
using adms::server::personnel::person_status;

namespace {

person person_of(std::string pin, std::vector<std::string> areas = {"HQ"})
{
    person p;
    p.pin = std::move(pin);
    p.name = "Ann Lee " + p.pin;
    p.card = "123456";
    p.privilege = 0;
    p.areas = std::move(areas);
    return p;
}

storage_result<person_saved> save(test_store& store, const person& p, std::int64_t at_s = 10)
{
    return store.db().write([&](write_tx& tx) { return tx.persons().save_person(p, at(at_s)); });
}

storage_result<bool> save_area(test_store& store, std::string code)
{
    return store.db().write([&](write_tx& tx) {
        return tx.persons().save_area({code, "Area " + code});
    });
}

std::vector<std::string> pins_of(const std::vector<stored_person>& persons)
{
    std::vector<std::string> pins;
    for (const auto& p : persons) {
        pins.push_back(p.person.pin);
    }
    return pins;
}

person_template template_of(std::string pin, int major, std::string data)
{
    person_template t;
    t.pin = std::move(pin);
    t.type = 1;
    t.no = 6;
    t.major = major;
    t.data = std::move(data);
    t.sha256 = "sha-" + t.data;
    t.source_serial_number = "A1";
    t.captured_at = at(5);
    return t;
}

} // namespace

TEST_CASE("Persons are saved by PIN with their areas and read back as saved",
          "[storage][contract][persons]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    REQUIRE(save_area(*store, "HQ"));
    REQUIRE(save_area(*store, "WH"));

    auto p = person_of("1001", {"WH", "HQ", "WH"});
    p.password = "4321";
    p.source = person_source::csv;
    p.external_id = "emp-7";
    auto created = save(*store, p);
    REQUIRE(created);
    CHECK(*created.value == person_saved::created);

    auto found = store->db().persons().find_person("1001");
    REQUIRE(found);
    REQUIRE(found.value->has_value());
    const auto& stored = **found.value;
    CHECK(stored.person.areas == std::vector<std::string>{"HQ", "WH"}); // sorted, once each
    CHECK(stored.person.password == "4321");
    CHECK(stored.person.source == person_source::csv);
    CHECK(stored.person.external_id == "emp-7");
    CHECK(stored.updated_at == at(10));

    SECTION("saving the same person again changes nothing, not even its time")
    {
        auto again = save(*store, p, 20);
        REQUIRE(again);
        CHECK(*again.value == person_saved::unchanged);
        auto reread = store->db().persons().find_person("1001");
        REQUIRE(reread);
        CHECK((*reread.value)->updated_at == at(10));
    }
    SECTION("a change replaces the person, areas included")
    {
        p.status = person_status::left;
        p.areas = {"WH"};
        p.password.reset();
        auto updated = save(*store, p, 20);
        REQUIRE(updated);
        CHECK(*updated.value == person_saved::updated);
        auto reread = store->db().persons().find_person("1001");
        REQUIRE(reread);
        CHECK((*reread.value)->person.status == person_status::left);
        CHECK((*reread.value)->person.areas == std::vector<std::string>{"WH"});
        CHECK_FALSE((*reread.value)->person.password);
        CHECK((*reread.value)->updated_at == at(20));
    }
    SECTION("an area that does not exist is an error and nothing is saved")
    {
        auto bad = save(*store, person_of("1002", {"HQ", "NOPE"}));
        CHECK_FALSE(bad);
        auto missing = store->db().persons().find_person("1002");
        REQUIRE(missing);
        CHECK_FALSE(missing.value->has_value());
    }
    SECTION("a read inside the batch sees the batch's own write")
    {
        auto seen = store->db().write([&](write_tx& tx) -> storage_result<bool> {
            auto saved = tx.persons().save_person(person_of("1003"), at(30));
            if (!saved) {
                return saved.error;
            }
            auto read = tx.persons().find_person("1003");
            if (!read) {
                return read.error;
            }
            return read.value->has_value();
        });
        REQUIRE(seen);
        CHECK(*seen.value);
    }
    SECTION("deleting a person takes their templates")
    {
        REQUIRE(store->db().write([&](write_tx& tx) {
            return tx.persons().store_template(template_of("1001", 10, "AAAA"));
        }));
        auto deleted =
            store->db().write([&](write_tx& tx) { return tx.persons().delete_person("1001"); });
        REQUIRE(deleted);
        CHECK(*deleted.value);
        auto templates = store->db().persons().templates_of("1001", false);
        REQUIRE(templates);
        CHECK(templates.value->empty());
        auto again =
            store->db().write([&](write_tx& tx) { return tx.persons().delete_person("1001"); });
        REQUIRE(again);
        CHECK_FALSE(*again.value);
    }
}

TEST_CASE("Persons are listed by PIN with filters and a cursor", "[storage][contract][persons]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    REQUIRE(save_area(*store, "HQ"));
    REQUIRE(save_area(*store, "WH"));
    for (auto pin : {"3", "1", "2", "10"}) {
        REQUIRE(save(*store, person_of(pin, {std::string{pin} == "2" ? "WH" : "HQ"})));
    }
    auto left = person_of("4");
    left.status = person_status::left;
    left.source = person_source::ldap;
    REQUIRE(save(*store, left));

    auto list = [&](person_query q) {
        auto listed = store->db().persons().list_persons(q);
        REQUIRE(listed);
        return pins_of(*listed.value);
    };
    // PINs are text: "10" sorts before "2".
    CHECK(list({}) == std::vector<std::string>{"1", "10", "2", "3", "4"});
    CHECK(list({.area = "HQ"}) == std::vector<std::string>{"1", "10", "3", "4"});
    CHECK(list({.status = person_status::left}) == std::vector<std::string>{"4"});
    CHECK(list({.source = person_source::ldap}) == std::vector<std::string>{"4"});
    CHECK(list({.area = "HQ", .after = "10", .limit = 2}) == std::vector<std::string>{"3", "4"});
    CHECK(list({.area = "NOPE"}).empty());
}

TEST_CASE("Areas count their devices and persons and are not deleted under a device",
          "[storage][contract][persons]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto created = save_area(*store, "HQ");
    REQUIRE(created);
    CHECK(*created.value);
    auto renamed = store->db().write([&](write_tx& tx) {
        return tx.persons().save_area({"HQ", "Head office"});
    });
    REQUIRE(renamed);
    CHECK_FALSE(*renamed.value);
    REQUIRE(save_area(*store, "WH"));
    REQUIRE(save(*store, person_of("1", {"HQ", "WH"})));

    device_record d;
    d.serial_number = "A1";
    d.first_seen = d.last_seen = at(1);
    d.area = "HQ";
    auto device = store->upsert_device(d);
    REQUIRE(device);
    CHECK(device.value->area == "HQ");
    d.serial_number = "B2";
    d.area = "NOPE";
    CHECK_FALSE(store->upsert_device(d)); // an area that does not exist

    auto hq = store->db().persons().find_area("HQ");
    REQUIRE(hq);
    REQUIRE(hq.value->has_value());
    CHECK((*hq.value)->area.name == "Head office");
    CHECK((*hq.value)->devices == 1);
    CHECK((*hq.value)->persons == 1);

    auto refused = store->db().write([&](write_tx& tx) { return tx.persons().delete_area("HQ"); });
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error.message, Catch::Contains("1 device"));

    auto deleted = store->db().write([&](write_tx& tx) { return tx.persons().delete_area("WH"); });
    REQUIRE(deleted);
    CHECK(*deleted.value);
    auto p = store->db().persons().find_person("1");
    REQUIRE(p);
    CHECK((*p.value)->person.areas == std::vector<std::string>{"HQ"});
    auto areas = store->db().persons().list_areas();
    REQUIRE(areas);
    REQUIRE(areas.value->size() == 1);
    CHECK((*areas.value)[0].area.code == "HQ");
}

TEST_CASE("Templates of several algorithm versions are kept side by side",
          "[storage][contract][persons]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto put = [&](const person_template& t) {
        auto saved =
            store->db().write([&](write_tx& tx) { return tx.persons().store_template(t); });
        INFO(saved.error.message);
        REQUIRE(saved);
        return *saved.value;
    };
    // No person 7 in the directory yet: its templates are kept for when it is.
    CHECK(put(template_of("7", 10, "v10")) == template_saved::created);
    CHECK(put(template_of("7", 13, "v13")) == template_saved::created);
    CHECK(put(template_of("7", 10, "v10")) == template_saved::unchanged);
    CHECK(put(template_of("7", 10, "v10-again")) == template_saved::replaced);

    auto listed = store->db().persons().templates_of("7", false);
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 2);
    CHECK((*listed.value)[0].major == 10);
    CHECK((*listed.value)[0].data.empty()); // listings never carry the template
    CHECK((*listed.value)[0].sha256 == "sha-v10-again");
    CHECK((*listed.value)[1].major == 13);
    auto full = store->db().persons().templates_of("7", true);
    REQUIRE(full);
    CHECK((*full.value)[1].data == "v13");

    auto face = template_of("7", 40, "face");
    face.type = 9;
    face.no = 0;
    put(face);
    auto removed =
        store->db().write([&](write_tx& tx) { return tx.persons().delete_templates("7", 1); });
    REQUIRE(removed);
    CHECK(*removed.value == 2);
    auto rest = store->db().persons().templates_of("7", false);
    REQUIRE(rest);
    REQUIRE(rest.value->size() == 1);
    CHECK((*rest.value)[0].type == 9);
}

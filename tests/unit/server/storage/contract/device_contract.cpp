#include "tests/unit/server/storage/contract/cases.hpp"

#include <catch2/catch.hpp>

// The device store every backend must have: stamps that never move backwards, every field
// round-tripping, unique aliases, options.

using namespace adms::storage_test;
namespace protocol = adms::protocol;

TEST_CASE("A device's stored stamps never move backwards", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    device_record d;
    d.serial_number = "A1";
    d.first_seen = d.last_seen = at(1);
    d.attlog_stamp = "1000";
    d.operlog_stamp = "500";
    d.attphoto_stamp = "7";
    REQUIRE(store->upsert_device(d));

    d.attlog_stamp = "999";   // older
    d.operlog_stamp = "501";  // newer
    d.attphoto_stamp.reset(); // not sent
    auto stored = store->upsert_device(d);
    REQUIRE(stored);
    CHECK(stored.value->attlog_stamp == "1000");
    CHECK(stored.value->operlog_stamp == "501");
    CHECK(stored.value->attphoto_stamp == "7");

    d.attlog_stamp = "0";
    REQUIRE(store->upsert_device(d));
    auto loaded = store->load_device("A1");
    REQUIRE(loaded);
    CHECK((*loaded.value)->attlog_stamp == "1000");
}

TEST_CASE("Every device field round-trips and the earliest first_seen is kept",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    device_record d;
    d.serial_number = "CQZ7224460246";
    d.first_seen = instant{1'700'000'000'001ms};
    d.last_seen = instant{1'700'000'100'002ms};
    d.remote_address = "192.0.2.7:51515";
    d.push_version = "2.4.1";
    d.language = "69";
    d.approved = true;
    d.alias = "front-door";
    d.zone_override = "Asia/Kolkata";
    d.dialect = "ATT";
    d.attlog_stamp = "9999";
    d.operlog_stamp = "8888";
    d.attphoto_stamp = "7777";
    d.full_upload_requested = true;
    d.info = "Ver 8.0.4.2-20200723,153,316,39279,192.168.1.203,10,-1,0,0,101";
    d.info_at = instant{1'700'000'050'000ms};
    d.time_sync_sent_at = instant{1'700'000'060'000ms};
    d.time_sync_confirmed_at = instant{1'700'000'070'000ms};
    d.time_sync_error = "Return=-1002 not supported";
    auto stored = store->upsert_device(d);
    REQUIRE(stored);
    CHECK(stored.value->serial_number == d.serial_number);
    CHECK(stored.value->first_seen == d.first_seen);
    CHECK(stored.value->last_seen == d.last_seen);
    CHECK(stored.value->remote_address == d.remote_address);
    CHECK(stored.value->push_version == d.push_version);
    CHECK(stored.value->language == d.language);
    CHECK(stored.value->approved);
    CHECK(stored.value->alias == d.alias);
    CHECK(stored.value->zone_override == d.zone_override);
    CHECK(stored.value->dialect == d.dialect);
    CHECK(stored.value->attlog_stamp == d.attlog_stamp);
    CHECK(stored.value->operlog_stamp == d.operlog_stamp);
    CHECK(stored.value->attphoto_stamp == d.attphoto_stamp);
    CHECK(stored.value->full_upload_requested);
    CHECK(stored.value->info == d.info);
    CHECK(stored.value->info_at == d.info_at);
    CHECK(stored.value->time_sync_sent_at == d.time_sync_sent_at);
    CHECK(stored.value->time_sync_confirmed_at == d.time_sync_confirmed_at);
    CHECK(stored.value->time_sync_error == d.time_sync_error);

    auto later = d;
    later.first_seen = instant{1'800'000'000'000ms};
    later.approved = false;
    later.full_upload_requested = false;
    later.alias = ""; // empty means unset
    later.zone_override.reset();
    later.time_sync_error.clear();
    REQUIRE(store->upsert_device(later));
    auto all = store->load_devices();
    REQUIRE(all);
    REQUIRE(all.value->size() == 1);
    const auto& got = all.value->front();
    CHECK(got.first_seen == d.first_seen);
    CHECK_FALSE(got.approved);
    CHECK_FALSE(got.full_upload_requested);
    CHECK_FALSE(got.alias);
    CHECK_FALSE(got.zone_override);
    CHECK(got.time_sync_error.empty());

    auto unknown = store->load_device("NOPE");
    REQUIRE(unknown);
    CHECK_FALSE(unknown.value->has_value());
}

TEST_CASE("An alias another device uses is an error value and changes nothing",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    device_record a;
    a.serial_number = "A1";
    a.alias = "lobby";
    REQUIRE(store->upsert_device(a));
    device_record b;
    b.serial_number = "B2";
    REQUIRE(store->upsert_device(b));
    REQUIRE(store->upsert_device(b)); // devices without alias do not clash
    b.alias = "lobby";
    auto clash = store->upsert_device(b);
    REQUIRE_FALSE(clash);
    CHECK_THAT(clash.error.message, Catch::Contains("UNIQUE"));
    auto loaded = store->load_device("B2");
    REQUIRE(loaded);
    CHECK_FALSE((*loaded.value)->alias);
}

TEST_CASE("Device options are set per key, last value wins, and load with the device",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    std::vector<protocol::key_value> first{{"~DeviceName", "MB460"}, {"FWVersion", "Ver 6.60"}};
    auto count = store->store_device_options("NEW", first, at(5));
    REQUIRE(count);
    CHECK(*count.value == 2);
    std::vector<protocol::key_value> second{{"FWVersion", "Ver 6.61"}, {"UserCount", "12"}};
    REQUIRE(store->store_device_options("NEW", second, at(6)));

    auto loaded = store->load_device("NEW");
    REQUIRE(loaded);
    REQUIRE(loaded.value->has_value());
    const auto& d = **loaded.value;
    CHECK(d.first_seen == at(5)); // the row is created for an unknown device
    CHECK_FALSE(d.approved);
    CHECK(d.options == std::vector<protocol::key_value>{{"FWVersion", "Ver 6.61"},
                                                        {"UserCount", "12"},
                                                        {"~DeviceName", "MB460"}});
    auto all = store->load_devices();
    REQUIRE(all);
    REQUIRE(all.value->size() == 1);
    CHECK(all.value->front().options == d.options);

    // upsert_device leaves the options alone.
    auto row = d;
    row.options.clear();
    REQUIRE(store->upsert_device(row));
    auto again = store->load_device("NEW");
    REQUIRE(again);
    CHECK((*again.value)->options.size() == 3);
}

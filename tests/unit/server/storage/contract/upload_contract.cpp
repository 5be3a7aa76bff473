#include "protocol/operlog.hpp"
#include "tests/unit/server/storage/contract/cases.hpp"

#include <catch2/catch.hpp>

// What else a device uploads, as every backend must keep it: rejected lines, OPERLOG and users,
// table bodies and photos, byte for byte.

using namespace adms::storage_test;
namespace protocol = adms::protocol;

TEST_CASE("Rejected lines round-trip and a re-sent one is a duplicate", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    std::vector<protocol::rejected_line> lines{{3, "garbage\tline", "bad time"},
                                               {7, "x", "too few fields"}};
    auto counts = store->store_rejected_lines("A1", "ATTLOG", lines, at(1));
    REQUIRE(counts);
    CHECK(*counts.value == store_counts{2, 0});
    auto again = store->store_rejected_lines("A1", "ATTLOG", lines, at(2));
    REQUIRE(again);
    CHECK(*again.value == store_counts{0, 2});
    auto other_table = store->store_rejected_lines("A1", "OPERLOG", lines, at(2));
    REQUIRE(other_table);
    CHECK(*other_table.value == store_counts{2, 0});

    auto listed = store->list_rejected_lines({.serial_number = "A1", .limit = 2});
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 2);
    const auto& r = listed.value->front();
    CHECK(r.id > 0);
    CHECK(r.serial_number == "A1");
    CHECK(r.table == "ATTLOG");
    CHECK(r.line_number == 3);
    CHECK(r.text == "garbage\tline");
    CHECK(r.reason == "bad time");
    CHECK(r.received_at == at(1));
}

TEST_CASE("OPERLOG lines round-trip, USER lines become users and templates are kept raw",
          "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    auto parsed = protocol::parse_operlog("OPLOG 4\t0\t2025-03-01 08:00:00\t1\t2\t\t0\n"
                                          "USER PIN=7\tName=Ann\tPri=14\tPasswd=\tCard=123\tGrp=1\t"
                                          "TZ=0000000000000000\tVerify=0\tViceCard=\n"
                                          "FP PIN=7\tFID=6\tSize=8\tValid=1\tTMP=QUJDRA==\n"
                                          "WEIRD something\n");
    REQUIRE(parsed.rejected.empty());
    REQUIRE(parsed.records.size() == 4);
    auto counts = store->store_operlog("A1", parsed.records, at(1));
    REQUIRE(counts);
    CHECK(*counts.value == store_counts{4, 0});
    auto again = store->store_operlog("A1", parsed.records, at(2));
    REQUIRE(again);
    CHECK(*again.value == store_counts{0, 4});

    auto lines = store->list_operlog({.serial_number = "A1"});
    REQUIRE(lines);
    REQUIRE(lines.value->size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {
        CHECK(lines.value->at(i).tag == parsed.records[i].tag);
        CHECK(lines.value->at(i).raw == parsed.records[i].raw);
        CHECK(lines.value->at(i).oplog == parsed.records[i].oplog);
        CHECK(lines.value->at(i).received_at == at(1));
    }
    CHECK(lines.value->at(0).oplog.has_value());
    CHECK_FALSE(lines.value->at(0).pin);
    CHECK(lines.value->at(1).pin == "7");
    CHECK(lines.value->at(2).pin == "7");
    CHECK(lines.value->at(2).tag == "FP");
    CHECK_FALSE(lines.value->at(3).pin);

    auto users = store->list_users("A1");
    REQUIRE(users);
    REQUIRE(users.value->size() == 1);
    const auto& u = users.value->front();
    CHECK(u.user == protocol::to_user_info(parsed.records[1]).value());
    CHECK(u.raw == parsed.records[1].raw);
    CHECK(u.updated_at == at(2)); // the last USER line received wins

    SECTION("a changed USER line updates the user")
    {
        auto changed = protocol::parse_operlog("USER PIN=7\tName=Anne\tPri=0\n"
                                               "USER PIN=8\tName=Bob\n");
        REQUIRE(store->store_operlog("A1", changed.records, at(3)));
        auto now = store->list_users("A1");
        REQUIRE(now);
        REQUIRE(now.value->size() == 2);
        CHECK(now.value->at(0).user.name == "Anne");
        CHECK(now.value->at(0).user.privilege == 0);
        CHECK_FALSE(now.value->at(0).user.verify);
        CHECK(now.value->at(1).user.pin == "8");
    }
}

TEST_CASE("Unknown table bodies and photos round-trip byte for byte", "[storage][contract]")
{
    auto backend = make_backend_factory();
    auto store = open_store(*backend);
    const std::string body{"BIODATA Pin=1\tNo=0\0\xff\xfe\r\n", 22};
    auto id = store->store_table_body("A1", "BIODATA", body, at(1));
    REQUIRE(id);
    auto empty_id = store->store_table_body("A1", "rtstate", "", at(2));
    REQUIRE(empty_id);
    CHECK(*empty_id.value > *id.value);
    auto bodies = store->list_table_bodies({});
    REQUIRE(bodies);
    REQUIRE(bodies.value->size() == 2);
    CHECK(bodies.value->at(0).id == *id.value);
    CHECK(bodies.value->at(0).table == "BIODATA");
    CHECK(bodies.value->at(0).body == body);
    CHECK(bodies.value->at(0).received_at == at(1));
    CHECK(bodies.value->at(1).body.empty());

    const std::string jpeg{"\xff\xd8\xff\xe0\0\x10JFIF\0\xff\xd9", 14};
    auto photo = store->store_photo("A1", "20250301080000-7.jpg", jpeg, at(3));
    REQUIRE(photo);
    CHECK(*photo.value == store_counts{1, 0});
    auto again = store->store_photo("A1", "20250301080000-7.jpg", jpeg, at(4));
    REQUIRE(again);
    CHECK(*again.value == store_counts{0, 1});
    auto photos = store->list_photos({.serial_number = "A1"});
    REQUIRE(photos);
    REQUIRE(photos.value->size() == 1);
    CHECK(photos.value->front().file_name == "20250301080000-7.jpg");
    CHECK(photos.value->front().bytes == jpeg);
    CHECK(photos.value->front().received_at == at(3));
}

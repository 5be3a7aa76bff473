#include "server/events/event_stream.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <set>

using namespace adms::server;
using namespace std::chrono_literals;

TEST_CASE("Event ids are evt_ and a ULID: 26 Crockford characters, time-ordered, unique, no dot",
          "[events]")
{
    instant t{1'796'309'141'412ms};
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto id = new_event_id(t);
        REQUIRE(id.size() == 30);
        CHECK(id.starts_with("evt_"));
        CHECK(id.find_first_not_of("0123456789ABCDEFGHJKMNPQRSTVWXYZ", 4) == std::string::npos);
        CHECK(seen.insert(id).second);
    }
    // The first ten characters are the millisecond: later instants sort after.
    auto a = new_event_id(t);
    auto b = new_event_id(t + 1ms);
    CHECK(a.substr(0, 14) == new_event_id(t).substr(0, 14));
    CHECK(a.substr(0, 14) < b.substr(0, 14));
    // The Unix epoch is all zeros; the largest 48-bit millisecond starts with 7.
    CHECK(new_event_id(instant{0ms}).substr(0, 14) == "evt_0000000000");
    CHECK(new_event_id(instant{std::chrono::milliseconds{(1LL << 48) - 1}}).substr(0, 14) ==
          "evt_7ZZZZZZZZZ");
}

TEST_CASE("The envelope is id, type, timestamp (UTC, milliseconds) and data, in that order",
          "[events]")
{
    boost::json::object data;
    data["pin"] = "42";
    auto body = event_envelope("evt_X", "punch.created", instant{1'614'265'330'005ms}, data);
    CHECK(body == R"({"id":"evt_X","type":"punch.created","timestamp":"2021-02-25T15:02:10.005Z",)"
                  R"("data":{"pin":"42"}})");
}

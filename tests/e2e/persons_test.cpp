// End-to-end: the people directory's admin API against the real server (127.0.0.1:0, a real
// SQLite file): areas and persons created, listed with a cursor, changed, refused with the field
// named, a device put into an area and taken out, and what survives a restart.
#include "tests/e2e/device_client.hpp"
#include "tests/e2e/test_server.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace adms;
using adms::test::device_get;
using adms::test::http_reply;
using adms::test::running_server;
using adms::test::temp_dir;
namespace json = boost::json;

namespace {

http_reply api(unsigned short port, const std::string& method, const std::string& target,
               const std::string& body = {})
{
    return adms::test::admin_api_call(port, method, target, body);
}

json::object body_of(const http_reply& reply)
{
    return adms::test::json_object_of(reply);
}

std::vector<std::string> pins_of(const json::object& listing)
{
    std::vector<std::string> pins;
    for (const auto& p : listing.at("data").as_array()) {
        pins.emplace_back(p.at("pin").as_string());
    }
    return pins;
}

} // namespace

TEST_CASE("Areas and persons are created, listed, changed and deleted through the admin API",
          "[e2e][persons]")
{
    temp_dir dir;
    server::settings config;
    config.time_zone = "Europe/Berlin";
    running_server server{config, dir.path};
    auto port = server.port;

    auto hq = api(port, "POST", "/areas", R"({"code": "HQ", "name": "Head office"})");
    CHECK(hq.status == 201);
    CHECK(body_of(hq).at("code") == "HQ");
    CHECK(api(port, "POST", "/areas", R"({"code": "WH", "name": "Warehouse"})").status == 201);
    auto again = api(port, "POST", "/areas", R"({"code": "HQ"})");
    CHECK(again.status == 409);
    auto bad_code = api(port, "POST", "/areas", R"({"code": "H Q"})");
    CHECK(bad_code.status == 400);
    CHECK_THAT(bad_code.body, Catch::Contains("code"));

    auto ann = api(port, "POST", "/persons",
                   R"({"pin": "1001", "name": "Ann Lee", "card": "123456", "privilege": 0,
                       "areas": ["HQ"], "password": "4321"})");
    REQUIRE(ann.status == 201);
    auto ann_body = body_of(ann);
    CHECK(ann_body.at("name") == "Ann Lee");
    CHECK(ann_body.at("has_password") == true);
    CHECK_FALSE(ann_body.contains("password")); // write-only
    CHECK(ann_body.at("status") == "active");
    CHECK(ann_body.at("source") == "api");
    for (int i = 2; i <= 5; ++i) {
        REQUIRE(api(port, "POST", "/persons",
                    fmt::format(R"({{"pin": "100{}", "name": "P{}", "areas": ["{}"]}})", i, i,
                                i % 2 == 0 ? "WH" : "HQ"))
                    .status == 201);
    }

    SECTION("refusals name the field")
    {
        auto dup = api(port, "POST", "/persons", R"({"pin": "1001"})");
        CHECK(dup.status == 409);
        auto tab = api(port, "POST", "/persons", R"({"pin": "2001", "name": "A\tB"})");
        CHECK(tab.status == 400);
        CHECK_THAT(tab.body, Catch::Contains("name"));
        auto pin = api(port, "POST", "/persons", R"({"pin": "20 01"})");
        CHECK(pin.status == 400);
        CHECK_THAT(pin.body, Catch::Contains("pin"));
        auto priv = api(port, "POST", "/persons", R"({"pin": "2001", "privilege": 3})");
        CHECK(priv.status == 400);
        CHECK_THAT(priv.body, Catch::Contains("privilege"));
        auto area = api(port, "POST", "/persons", R"({"pin": "2001", "areas": ["NOPE"]})");
        CHECK(area.status == 400);
        CHECK_THAT(area.body, Catch::Contains("unknown area: NOPE"));
        CHECK(api(port, "GET", "/persons/2001").status == 404);
        auto unknown = api(port, "PATCH", "/persons/1001", R"({"colour": "red"})");
        CHECK(unknown.status == 400);
        CHECK(api(port, "PATCH", "/persons/1001", R"({"pin": "9"})").status == 400);
    }
    SECTION("listings filter by area and page with a cursor")
    {
        auto all = body_of(api(port, "GET", "/persons"));
        CHECK(pins_of(all) == std::vector<std::string>{"1001", "1002", "1003", "1004", "1005"});
        CHECK(all.at("next").is_null());
        auto page = body_of(api(port, "GET", "/persons?area=HQ&limit=2"));
        CHECK(pins_of(page) == std::vector<std::string>{"1001", "1003"});
        REQUIRE(page.at("next") == "1003");
        auto rest = body_of(api(port, "GET", "/persons?area=HQ&limit=2&after=1003"));
        CHECK(pins_of(rest) == std::vector<std::string>{"1005"});
        CHECK(api(port, "GET", "/persons?status=gone").status == 400);
    }
    SECTION("a PATCH changes only its fields, and marking left keeps the person")
    {
        auto patched = api(port, "PATCH", "/persons/1001",
                           R"({"status": "left", "areas": ["HQ", "WH"], "password": null})");
        REQUIRE(patched.status == 200);
        auto p = body_of(patched);
        CHECK(p.at("status") == "left");
        CHECK(p.at("name") == "Ann Lee");
        CHECK(p.at("card") == "123456");
        CHECK(p.at("has_password") == false);
        CHECK(p.at("areas") == json::array{"HQ", "WH"});
        auto left = body_of(api(port, "GET", "/persons?status=left"));
        CHECK(pins_of(left) == std::vector<std::string>{"1001"});
    }
    SECTION("a device joins an area and leaves it, and an area with a device stays")
    {
        REQUIRE(device_get(port, "/iclock/cdata?SN=AREA01&options=all").status == 200);
        auto joined = api(port, "PATCH", "/devices/AREA01", R"({"area": "HQ"})");
        REQUIRE(joined.status == 200);
        CHECK(body_of(joined).at("data").at("area") == "HQ");
        CHECK(api(port, "PATCH", "/devices/AREA01", R"({"area": "NOPE"})").status == 400);
        auto area = body_of(api(port, "GET", "/areas/HQ"));
        CHECK(area.at("devices") == 1);
        CHECK(area.at("persons") == 3);
        auto refused = api(port, "DELETE", "/areas/HQ");
        CHECK(refused.status == 409);
        CHECK_THAT(refused.body, Catch::Contains("1 device"));
        auto out = api(port, "PATCH", "/devices/AREA01", R"({"area": null})");
        REQUIRE(out.status == 200);
        CHECK(body_of(out).at("data").at("area").is_null());
        CHECK(api(port, "DELETE", "/areas/HQ").status == 200);
        auto p = body_of(api(port, "GET", "/persons/1001"));
        CHECK(p.at("areas") == json::array{});
    }
    SECTION("everything survives a restart")
    {
        REQUIRE(device_get(port, "/iclock/cdata?SN=AREA02&options=all").status == 200);
        REQUIRE(api(port, "PATCH", "/devices/AREA02", R"({"area": "WH"})").status == 200);
        server.stop();
        server.start();
        port = server.port;
        auto p = body_of(api(port, "GET", "/persons/1001"));
        CHECK(p.at("name") == "Ann Lee");
        CHECK(p.at("has_password") == true);
        auto d = body_of(api(port, "GET", "/devices/AREA02"));
        CHECK(d.at("data").at("area") == "WH");
        CHECK(api(port, "DELETE", "/persons/1005").status == 200);
        CHECK(api(port, "DELETE", "/persons/1005").status == 404);
        CHECK(api(port, "GET", "/persons/1001/templates").status == 200);
        CHECK(api(port, "GET", "/persons/1005/templates").status == 404);
    }
}

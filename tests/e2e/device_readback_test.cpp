// End-to-end: what a device sends (handshake, options, INFO, uploads, command results) read back
// through the admin API's device list and detail view, before and after a restart on the same
// data directory. The expected values are literals of the requests, not the server's own code.
#include "tests/e2e/device_client.hpp"
#include "tests/e2e/test_server.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <regex>
#include <set>

using namespace std::chrono;
using namespace adms;
using adms::test::device_get;
using adms::test::device_post;
using adms::test::eventually;
using adms::test::http_reply;
using adms::test::round_trip;
using adms::test::running_server;
using adms::test::temp_dir;
using adms::test::test_token;
namespace json = boost::json;

namespace {

// One admin API call over a new connection.
http_reply api(unsigned short port, const std::string& method, const std::string& target,
               const std::string& body = {})
{
    return adms::test::admin_call(port, method, target, body, test_token);
}

// The "data" member of a successful API reply.
json::value data_of(const http_reply& reply)
{
    INFO(reply.raw);
    REQUIRE(reply.status == 200);
    auto value = json::parse(reply.body);
    REQUIRE(value.at("success") == true);
    return value.at("data");
}

json::object device_view(unsigned short port, const std::string& id)
{
    return data_of(api(port, "GET", "/devices/" + id)).as_object();
}

json::object listed_device(unsigned short port, const std::string& sn)
{
    auto listed = data_of(api(port, "GET", "/devices"));
    for (const auto& d : listed.as_array()) {
        if (d.at("sn") == sn.c_str()) {
            return d.as_object();
        }
    }
    FAIL("device " << sn << " is not listed");
    return {};
}

std::set<std::string> keys_of(const json::object& o)
{
    std::set<std::string> keys;
    for (const auto& kv : o) {
        keys.emplace(kv.key());
    }
    return keys;
}

std::string text_of(const json::value& v)
{
    return std::string{v.as_string()};
}

// The commands of a device as the API lists them.
json::array commands_of(unsigned short port, const std::string& id)
{
    return data_of(api(port, "GET", "/devices/" + id + "/commands")).as_array();
}

// "C:<id>:<text>" split into id and text.
std::pair<std::string, std::string> command_line(const std::string& line)
{
    REQUIRE(line.starts_with("C:"));
    auto colon = line.find(':', 2);
    REQUIRE(colon != std::string::npos);
    return {line.substr(2, colon - 2), line.substr(colon + 1)};
}

// The device's poll until it carries a command (a time sync reply waits for the whole second).
std::string poll_for_command(unsigned short port, const std::string& sn)
{
    std::string body;
    eventually([&] {
        body = device_get(port, "/iclock/getrequest?SN=" + sn).body;
        return body != "OK";
    });
    REQUIRE(body != "OK");
    return body;
}

// A time of day written as the API writes it in a zone of fixed offset: YYYY-MM-DDTHH:MM:SS+hh:mm.
std::string iso_in(sys_seconds t, minutes offset)
{
    auto local = t + offset;
    auto day = floor<days>(local);
    year_month_day ymd{day};
    hh_mm_ss hms{local - day};
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}", int(ymd.year()),
                       unsigned(ymd.month()), unsigned(ymd.day()), hms.hours().count(),
                       hms.minutes().count(), hms.seconds().count(), offset < 0min ? '-' : '+',
                       abs(offset).count() / 60, abs(offset).count() % 60);
}

// Whether `text` is `t` (±1 s for the instant read around a request) in that zone.
bool near(const json::value& text, sys_seconds t, minutes offset)
{
    if (!text.is_string()) {
        return false;
    }
    for (auto delta : {-1s, 0s, 1s}) {
        if (text.as_string() == iso_in(t + delta, offset)) {
            return true;
        }
    }
    return false;
}

constexpr minutes kathmandu{5 * 60 + 45}; // Asia/Kathmandu: +05:45 all year, no DST
constexpr minutes tokyo{9 * 60};          // Asia/Tokyo: +09:00 all year, no DST

} // namespace

TEST_CASE("Options a device uploads and an INFO command result show as model, firmware and "
          "options in the device list and the detail view",
          "[e2e][admin][readback]")
{
    temp_dir dir;
    server::settings s;
    s.time_zone = "UTC";
    running_server server{s, dir.path};
    const std::string sn = "OPT1";
    REQUIRE(
        device_get(server.port, "/iclock/cdata?SN=" + sn + "&options=all&pushver=2.4.1").status ==
        200);

    // Before any options: nothing is made up.
    CHECK(listed_device(server.port, sn).at("model").is_null());
    CHECK(device_view(server.port, sn).at("options").as_object().empty());

    // As real devices send it: one line, comma-separated, values with spaces and slashes.
    auto uploaded = device_post(server.port, "/iclock/cdata?SN=" + sn + "&table=options",
                                "~DeviceName=MB360/ID,MAC=00:17:61:01:02:03,FWVersion=Ver 8.0.4.2,"
                                "UserCount=15,IPAddress=192.168.1.201");
    REQUIRE(uploaded.status == 200);
    CHECK(uploaded.body == "OK");
    json::object expected{{"~DeviceName", "MB360/ID"},
                          {"MAC", "00:17:61:01:02:03"},
                          {"FWVersion", "Ver 8.0.4.2"},
                          {"UserCount", "15"},
                          {"IPAddress", "192.168.1.201"}};
    auto listed = listed_device(server.port, sn);
    CHECK(listed.at("model") == "MB360/ID");
    CHECK(listed.at("firmware") == "Ver 8.0.4.2");
    auto detail = device_view(server.port, sn);
    CHECK(detail.at("model") == "MB360/ID");
    CHECK(detail.at("firmware") == "Ver 8.0.4.2");
    CHECK(detail.at("options") == expected);

    // An INFO command the operator queues; the device answers with key=value lines.
    auto queued = api(server.port, "POST", "/devices/" + sn + "/commands", R"({"command":"info"})");
    REQUIRE(queued.status == 202);
    auto info_id = text_of(json::parse(queued.body).at("command_id"));
    // The first polls also carry the first-contact time sync; answer whatever comes until INFO.
    bool got_info = false;
    for (int i = 0; i < 3 && !got_info; ++i) {
        auto body = poll_for_command(server.port, sn);
        std::string results;
        for (std::size_t start = 0; start < body.size();) {
            auto end = std::min(body.find('\n', start), body.size());
            auto [id, text] = command_line(body.substr(start, end - start));
            start = end + 1;
            if (id == info_id) {
                CHECK(text == "INFO");
                got_info = true;
                results += "ID=" + id +
                           "&Return=0&CMD=INFO\n~DeviceName=MB360 Pro\n"
                           "FWVersion=Ver 8.0.5.1-20240101\nUserCount=16\n";
            } else {
                results += "ID=" + id + "&Return=0&CMD=SET OPTIONS\n";
            }
        }
        REQUIRE(device_post(server.port, "/iclock/devicecmd?SN=" + sn, results).body == "OK");
    }
    REQUIRE(got_info);

    // The INFO values replace the uploaded ones key by key; the others stay.
    expected["~DeviceName"] = "MB360 Pro";
    expected["FWVersion"] = "Ver 8.0.5.1-20240101";
    expected["UserCount"] = "16";
    listed = listed_device(server.port, sn);
    CHECK(listed.at("model") == "MB360 Pro");
    CHECK(listed.at("firmware") == "Ver 8.0.5.1-20240101");
    detail = device_view(server.port, sn);
    CHECK(detail.at("model") == "MB360 Pro");
    CHECK(detail.at("firmware") == "Ver 8.0.5.1-20240101");
    CHECK(detail.at("options") == expected);
    // The command's own record keeps what the device answered.
    bool listed_result = false;
    for (const auto& c : commands_of(server.port, sn)) {
        if (c.at("id") == info_id.c_str()) {
            listed_result = true;
            CHECK(c.at("state") == "done");
            CHECK(c.at("result_info") ==
                  "~DeviceName=MB360 Pro\nFWVersion=Ver 8.0.5.1-20240101\nUserCount=16");
        }
    }
    CHECK(listed_result);
}

TEST_CASE("A queued time sync is listed with its kind and no made-up DateTime, then with the "
          "exact text the device got",
          "[e2e][admin][sync]")
{
    temp_dir dir;
    server::settings s;
    s.time_zone = "UTC";
    running_server server{s, dir.path};
    const std::string sn = "TS1";
    // The handshake queues the first-contact time sync.
    REQUIRE(
        device_get(server.port, "/iclock/cdata?SN=" + sn + "&options=all&pushver=2.4.1").status ==
        200);

    auto queued = commands_of(server.port, sn);
    REQUIRE(queued.size() == 1);
    const auto& pending = queued[0].as_object();
    CHECK(pending.at("state") == "queued");
    CHECK(text_of(pending.at("kind")).starts_with("time-sync"));
    CHECK(pending.at("text").is_null());
    CHECK(text_of(pending.at("description")).starts_with("SET OPTIONS DateTime=<"));
    auto listing = api(server.port, "GET", "/devices/" + sn + "/commands").body;
    CHECK(listing.find("DateTime=0") == std::string::npos);
    // The detail view shows it the same way, as pending and as a time sync.
    auto detail = device_view(server.port, sn);
    REQUIRE(detail.at("pending_commands").as_array().size() == 1);
    CHECK(detail.at("pending_commands").as_array()[0] == pending);
    REQUIRE(detail.at("time_syncs").as_array().size() == 1);
    CHECK(detail.at("time_syncs").as_array()[0] == pending);
    CHECK(api(server.port, "GET", "/devices/" + sn).body.find("DateTime=0") == std::string::npos);

    // The poll carries the real value; from then on the API shows that exact text.
    auto [id, sent] = command_line(poll_for_command(server.port, sn));
    CHECK(id == text_of(pending.at("id")));
    REQUIRE(std::regex_match(sent, std::regex{R"(SET OPTIONS DateTime=[1-9]\d{8,9})"}));
    json::object after;
    CHECK(eventually([&] {
        after = commands_of(server.port, sn)[0].as_object();
        return after.at("text").is_string();
    }));
    CHECK(after.at("text") == sent.c_str());
    CHECK(after.at("state") == "sent");
    CHECK(after.at("kind") == pending.at("kind"));
    CHECK(after.at("description") == pending.at("description"));
    detail = device_view(server.port, sn);
    CHECK(detail.at("pending_commands").as_array()[0].at("text") == sent.c_str());
    CHECK(detail.at("time_syncs").as_array()[0].at("text") == sent.c_str());
}

TEST_CASE("Every field of the device list and the detail view reads back after a handshake, "
          "options, INFO and OPERLOG, and persists across a restart where PATCHed settings win "
          "over the config file and the config alias is applied again",
          "[e2e][admin][readback][restart]")
{
    temp_dir dir;
    server::settings s;
    s.time_zone = "UTC";
    s.devices["RB1"].alias = "front-door";
    s.devices["RB1"].time_zone = "Asia/Kathmandu";
    running_server server{s, dir.path};
    const std::string sn = "RB1";

    auto contact = floor<seconds>(system_clock::now());
    REQUIRE(device_get(server.port, "/iclock/cdata?SN=RB1&options=all&pushver=2.4.1&language=69")
                .status == 200);
    // The first poll after boot carries INFO and gets the time sync.
    auto [sync_id, sync_text] = command_line(poll_for_command(
        server.port, "RB1&INFO=Ver%208.0.4.2-20200723,153,316,39279,192.168.1.203,10,-1,0,0,101"));
    REQUIRE(sync_text.starts_with("SET OPTIONS DateTime="));
    REQUIRE(device_post(server.port, "/iclock/devicecmd?SN=RB1",
                        "ID=" + sync_id + "&Return=0&CMD=SET OPTIONS\n")
                .body == "OK");
    REQUIRE(device_post(server.port, "/iclock/cdata?SN=RB1&table=options",
                        "~DeviceName=SpeedFace-V5L,MAC=00:17:61:0a:0b:0c,FWVersion=Ver 8.0.4.7")
                .body == "OK");
    auto info = api(server.port, "POST", "/devices/front-door/commands", R"({"command":"info"})");
    REQUIRE(info.status == 202);
    auto info_id = text_of(json::parse(info.body).at("command_id"));
    auto [polled_id, polled_text] = command_line(poll_for_command(server.port, sn));
    REQUIRE(polled_id == info_id);
    REQUIRE(device_post(server.port, "/iclock/devicecmd?SN=RB1",
                        "ID=" + info_id + "&Return=0&CMD=INFO\nUserCount=154\nFPCount=316\n")
                .body == "OK");
    REQUIRE(device_post(server.port, "/iclock/cdata?SN=RB1&table=OPERLOG&OpStamp=12",
                        "OPLOG 4\t0\t2026-01-29 08:05:00\t0\t0\t0\t0\n")
                .body == "OK:1");
    REQUIRE(device_post(server.port, "/iclock/cdata?SN=RB1&table=ATTLOG&Stamp=9999",
                        "1\t2026-01-29 08:00:00\t0\t1\t\t0\t0\n")
                .body == "OK:1");
    auto last_contact = floor<seconds>(system_clock::now());

    auto listed = listed_device(server.port, sn);
    CHECK(keys_of(listed) == std::set<std::string>{"id", "sn", "alias", "online", "last_seen",
                                                   "first_seen", "zone", "model", "firmware",
                                                   "remote_address", "push_version", "protocol",
                                                   "approved", "area", "time_dialect", "sync_at",
                                                   "sync_interval", "last_time_sync"});
    CHECK(listed.at("id") == "front-door");
    CHECK(listed.at("sn") == "RB1");
    CHECK(listed.at("alias") == "front-door");
    CHECK(listed.at("online") == true);
    CHECK(near(listed.at("first_seen"), contact, kathmandu));
    CHECK(near(listed.at("last_seen"), last_contact, kathmandu));
    CHECK(listed.at("zone") == "Asia/Kathmandu");
    CHECK(listed.at("model") == "SpeedFace-V5L");
    CHECK(listed.at("firmware") == "Ver 8.0.4.7"); // the option wins over INFO's first field
    CHECK(listed.at("remote_address") == "127.0.0.1");
    CHECK(listed.at("push_version") == "2.4.1");
    CHECK(listed.at("protocol") == "ATT");
    CHECK(listed.at("approved") == true);
    CHECK(listed.at("area").is_null()); // in no area until PATCHed (tests/e2e/persons_test.cpp)
    CHECK(listed.at("time_dialect") == "att");
    CHECK(listed.at("sync_at") == "03:00");
    CHECK(listed.at("sync_interval").is_null());
    const auto& last_sync = listed.at("last_time_sync").as_object();
    CHECK(near(last_sync.at("queued_at"), contact, kathmandu));
    CHECK(near(last_sync.at("confirmed_at"), last_contact, kathmandu));
    CHECK(last_sync.at("error").is_null());

    auto detail = device_view(server.port, "front-door");
    auto detail_keys = keys_of(listed);
    detail_keys.insert(
        {"zone_source", "options", "info", "stamps", "pending_commands", "time_syncs"});
    CHECK(keys_of(detail) == detail_keys);
    for (const auto& kv : listed) {
        if (kv.key() != "last_seen" && kv.key() != "online") {
            CHECK(detail.at(kv.key()) == kv.value());
        }
    }
    CHECK(detail.at("zone_source") == "config");
    CHECK(detail.at("options") == json::object{{"~DeviceName", "SpeedFace-V5L"},
                                               {"MAC", "00:17:61:0a:0b:0c"},
                                               {"FWVersion", "Ver 8.0.4.7"},
                                               {"UserCount", "154"},
                                               {"FPCount", "316"}});
    const auto& info_view = detail.at("info").as_object();
    CHECK(info_view.at("raw") == "Ver 8.0.4.2-20200723,153,316,39279,192.168.1.203,10,-1,0,0,101");
    CHECK(info_view.at("firmware") == "Ver 8.0.4.2-20200723");
    CHECK(info_view.at("users") == 153);
    CHECK(info_view.at("fingerprints") == 316);
    CHECK(info_view.at("attlogs") == 39279);
    CHECK(info_view.at("ip_address") == "192.168.1.203");
    CHECK(near(info_view.at("received_at"), contact, kathmandu));
    CHECK(detail.at("stamps") ==
          json::object{{"attlog", "9999"}, {"operlog", "12"}, {"attphoto", nullptr}});
    CHECK(detail.at("pending_commands").as_array().empty());
    // The one time sync, confirmed, with the text the device got (recorded within a second).
    json::array syncs;
    CHECK(eventually([&] {
        syncs = device_view(server.port, "front-door").at("time_syncs").as_array();
        return syncs.size() == 1 && syncs[0].at("text").is_string();
    }));
    REQUIRE(syncs.size() == 1);
    CHECK(syncs[0].at("id") == sync_id.c_str());
    CHECK(syncs[0].at("text") == sync_text.c_str());
    CHECK(syncs[0].at("state") == "done");
    CHECK(syncs[0].at("return_code") == 0);
    CHECK(syncs[0].at("attempts") == 1);

    // PATCH what the config file also sets (zone), and what it does not.
    auto patched = api(server.port, "PATCH", "/devices/front-door",
                       R"({"zone":"Asia/Tokyo","time_dialect":"att-singular","sync_at":"02:30",)"
                       R"("sync_interval":"6h","alias":"lobby"})");
    REQUIRE(patched.status == 200);
    auto before = device_view(server.port, "lobby");
    CHECK(before.at("zone") == "Asia/Tokyo");
    CHECK(before.at("zone_source") == "api");
    CHECK(before.at("time_dialect") == "att-singular");
    CHECK(before.at("sync_at") == "02:30");
    CHECK(before.at("sync_interval") == "6h");
    CHECK(near(before.at("first_seen"), contact, tokyo)); // times follow the device's zone

    // A restart on the same data directory, with the same config file.
    server.stop();
    server.start();
    auto after = device_view(server.port, "front-door");
    CHECK(after.at("alias") == "front-door"); // the config file's alias is applied again
    CHECK(after.at("id") == "front-door");
    CHECK(api(server.port, "GET", "/devices/lobby").status == 404);
    CHECK(after.at("zone") == "Asia/Tokyo"); // the API's zone wins over the config file's
    CHECK(after.at("zone_source") == "api");
    // Everything else is as it was before the restart.
    before["alias"] = "front-door";
    before["id"] = "front-door";
    for (const auto& kv : before) {
        INFO(kv.key());
        CHECK(after.at(kv.key()) == kv.value());
    }
    CHECK(keys_of(after) == keys_of(before));
    // The list shows the same, without the detail view's own fields.
    auto list_part = after;
    for (auto key :
         {"zone_source", "options", "info", "stamps", "pending_commands", "time_syncs"}) {
        list_part.erase(key);
    }
    CHECK(listed_device(server.port, sn) == list_part);

    // Clearing the API's zone brings the config file's back.
    auto cleared = api(server.port, "PATCH", "/devices/front-door", R"({"zone":null})");
    REQUIRE(cleared.status == 200);
    auto back = device_view(server.port, "front-door");
    CHECK(back.at("zone") == "Asia/Kathmandu");
    CHECK(back.at("zone_source") == "config");
}

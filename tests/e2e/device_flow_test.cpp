// End-to-end: the real admsd application on 127.0.0.1:0 with a fresh data directory, spoken to
// over real sockets the way a terminal does, with the real SQLite file and zone database.
#include "protocol/civil_time.hpp"
#include "protocol/zk_time.hpp"
#include "server/app.hpp"
#include "server/storage/sqlite/sqlite_database.hpp"
#include "tests/e2e/device_client.hpp"
#include "tests/e2e/test_server.hpp"
#include "tz/zone.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sqlite3.h>

#include <arpa/inet.h>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <regex>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace std::chrono;
using namespace adms;
using adms::test::device_get;
using adms::test::device_post;
using adms::test::round_trip;
using adms::test::running_server;
using adms::test::stored_device;
using adms::test::temp_dir;

namespace {

server::settings base_settings(const std::string& zone)
{
    server::settings s;
    s.time_zone = zone;
    return s;
}

// The DateTime value of a time-sync command line "C:<id>:SET OPTIONS DateTime=<n>".
std::int64_t date_time_value(const std::string& line)
{
    auto at = line.find("DateTime=");
    REQUIRE(at != std::string::npos);
    return std::stoll(line.substr(at + 9));
}

std::string command_id(const std::string& line)
{
    REQUIRE(line.rfind("C:", 0) == 0);
    return line.substr(2, line.find(':', 2) - 2);
}

// Seconds between the device-local time a command carries and the zone's local time now.
seconds sync_error(std::int64_t zk_value, const tz::zone& zone)
{
    auto sent = protocol::decode_zk_datetime(zk_value);
    REQUIRE(sent);
    auto now = zone.to_local(floor<seconds>(system_clock::now()));
    return duration_cast<seconds>(*sent - now);
}

const std::string sn = "RKQ4243400358";

} // namespace

TEST_CASE("A device registers, gets its clock set, uploads without duplicates, and its state "
          "survives a restart",
          "[e2e]")
{
    temp_dir dir;
    running_server server{base_settings("Asia/Riyadh"), dir.path};
    auto riyadh = *tz::locate_zone("Asia/Riyadh").value;

    // Handshake: the option block, byte for byte, with TimeZone=3 for Riyadh.
    auto handshake = device_get(server.port, "/iclock/cdata?SN=" + sn +
                                                 "&options=all&pushver=2.4.1&language=69");
    CHECK(handshake.status == 200);
    CHECK(handshake.body == "GET OPTION FROM: RKQ4243400358\n"
                            "ATTLOGStamp=None\n"
                            "OPERLOGStamp=None\n"
                            "ATTPHOTOStamp=None\n"
                            "ErrorDelay=30\n"
                            "Delay=10\n"
                            "TransTimes=00:00;14:05\n"
                            "TransInterval=1\n"
                            "TransFlag=TransData AttLog\tOpLog\tAttPhoto\tEnrollUser\tChgUser\t"
                            "EnrollFP\tChgFP\tUserPic\n"
                            "TimeZone=3\n"
                            "Realtime=1\n"
                            "Encrypt=None\n"
                            "ServerVer=2.4.1\n"
                            "PushProtVer=2.4.1");
    CHECK(handshake.headers["content-type"] == "text/plain");
    CHECK(handshake.headers["content-length"] == std::to_string(handshake.body.size()));
    CHECK(handshake.headers["connection"] == "close");
    // The Date header is RFC 1123 GMT and right to within a couple of seconds.
    std::regex date_format{R"([A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT)"};
    CHECK(std::regex_match(handshake.headers["date"], date_format));
    auto now = round<seconds>(system_clock::now());
    bool date_close = false;
    for (auto delta : {-2s, -1s, 0s, 1s, 2s}) {
        date_close =
            date_close || handshake.headers["date"] == protocol::format_http_date(now + delta);
    }
    CHECK(date_close);

    // First poll: the time sync queued at first contact goes out, with Riyadh local time.
    auto poll = device_get(server.port, "/iclock/getrequest?SN=" + sn);
    REQUIRE(poll.status == 200);
    REQUIRE(poll.body.rfind("C:", 0) == 0);
    CHECK(poll.body.find("SET OPTIONS DateTime=") != std::string::npos);
    CHECK(abs(sync_error(date_time_value(poll.body), riyadh)) <= 2s);
    auto sync_id = command_id(poll.body);

    // The next poll inside the resend window does not send it again.
    CHECK(device_get(server.port, "/iclock/getrequest?SN=" + sn).body == "OK");

    // The device confirms.
    auto confirm = device_post(server.port, "/iclock/devicecmd?SN=" + sn,
                               "ID=" + sync_id + "&Return=0&CMD=SET OPTIONS\n");
    CHECK(confirm.status == 200);
    CHECK(confirm.body == "OK");

    // ATTLOG: three punches (CRLF, a trailing TAB, 5 fields), one impossible line rejected.
    std::string batch = "1\t2026-01-29 08:00:00\t0\t1\t\t0\t0\r\n"
                        "0042\t2026-01-29 08:01:30\t1\t15\t\t0\t0\t\n"
                        "7\t2026-02-30 08:00:00\t0\t1\t\t0\t0\n"
                        "A9\t2026-01-29 17:59:59\t255\t4\t\n";
    auto upload =
        device_post(server.port, "/iclock/cdata?SN=" + sn + "&table=ATTLOG&Stamp=9999", batch);
    CHECK(upload.status == 200);
    CHECK(upload.body == "OK:3");
    // The same batch again: still acknowledged, nothing stored twice.
    auto again =
        device_post(server.port, "/iclock/cdata?SN=" + sn + "&table=ATTLOG&Stamp=9999", batch);
    CHECK(again.body == "OK:3");

    // OPERLOG with mixed tags.
    auto operlog = device_post(server.port, "/iclock/cdata?SN=" + sn + "&table=OPERLOG&OpStamp=12",
                               "OPLOG 4\t0\t2026-01-29 08:05:00\t0\t0\t0\t0\n"
                               "USER PIN=1\tName=Ann\tPri=0\tPasswd=\tCard=\tGrp=1\tTZ=0\n"
                               "FP PIN=1\tFID=6\tSize=4\tValid=1\tTMP=AAAA\n");
    CHECK(operlog.body == "OK:3");

    // options and an INFO command result.
    CHECK(device_post(server.port, "/iclock/cdata?SN=" + sn + "&table=options",
                      "~DeviceName=MB460,FWVersion=Ver 8.0.4.2,UserCount=1")
              .body == "OK");
    CHECK(device_post(server.port, "/iclock/devicecmd?SN=" + sn,
                      "ID=77&Return=0&CMD=INFO\n~DeviceName=MB460\nMAC=00:17:61:aa:bb:cc\n")
              .body == "OK");
    CHECK(device_get(server.port, "/iclock/ping?SN=" + sn).body == "OK");

    {
        auto db = server.database();
        auto punches = db->punches().list_punches({});
        REQUIRE(punches);
        REQUIRE(punches.value->size() == 3);
        const auto& p = *punches.value;
        CHECK(p[0].pin == "1");
        CHECK(p[0].local_time == "2026-01-29 08:00:00");
        CHECK(p[0].utc == sys_days{2026y / January / 29} + 5h);
        CHECK(p[0].raw_line == "1\t2026-01-29 08:00:00\t0\t1\t\t0\t0");
        CHECK(p[1].pin == "0042");
        CHECK(p[1].verify == 15);
        CHECK(p[2].pin == "A9");
        CHECK(p[2].status == 255);
        CHECK(p[2].utc == sys_days{2026y / January / 29} + 14h + 59min + 59s);
        auto rejected = db->uploads().list_rejected_lines({});
        REQUIRE(rejected);
        REQUIRE(rejected.value->size() == 1);
        CHECK(rejected.value->front().line_number == 3);
        auto device = stored_device(*db, sn, [](const auto& d) {
            return d.attlog_stamp == "9999" && d.operlog_stamp == "12" &&
                   d.time_sync_confirmed_at.has_value();
        });
        CHECK(device.has_value());
        auto users = db->uploads().list_users(sn);
        REQUIRE(users);
        REQUIRE(users.value->size() == 1);
        CHECK(users.value->front().user.name == "Ann");
    }

    auto log = server.log_text();
    CHECK(log.find("New device RKQ4243400358 from 127.0.0.1 (pushver 2.4.1)") != std::string::npos);
    CHECK(log.find("RKQ4243400358, ATTLOG, 3 stored, 0 duplicate, 1 rejected") !=
          std::string::npos);
    CHECK(log.find("RKQ4243400358, ATTLOG, 0 stored, 3 duplicate, 1 rejected") !=
          std::string::npos);
    CHECK(log.find("Device RKQ4243400358 confirmed time sync (command " + sync_id + ")") !=
          std::string::npos);
    CHECK(std::regex_search(
        log,
        std::regex{
            R"(\n\[\d{2}/[A-Z][a-z]{2}/\d{4} \d{2}:\d{2}:\d{2}\] "GET /iclock/getrequest\?SN=RKQ4243400358 HTTP/1\.1" 200 2\n)"}));
    CHECK(std::regex_search(
        log, std::regex{"\xF0\x9F\x95\x90 Time sync request from device RKQ4243400358\n"
                        "   Server UTC time: \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}\n"
                        "   Server local time \\(Asia/Riyadh\\): [-0-9: ]{19}\n"
                        "   Sending to device: [-0-9: ]{19}\n"
                        "   \xF0\x9F\x93\xA4 Sending: SET OPTIONS DateTime=\\d+ \\(reason: first "
                        "contact\\)\n"}));

    // Restart on the same data directory: the device is known, its stamps are echoed, and the
    // boot handshake queues a new sync.
    server.stop();
    server.start();
    auto rebooted =
        device_get(server.port, "/iclock/cdata?SN=" + sn + "&options=all&pushver=2.4.1");
    CHECK(rebooted.body.find("\nATTLOGStamp=9999\nOPERLOGStamp=12\n") != std::string::npos);
    auto after = device_get(server.port, "/iclock/getrequest?SN=" + sn);
    CHECK(after.body.find("SET OPTIONS DateTime=") != std::string::npos);
    CHECK(command_id(after.body) != sync_id);
    auto final_log = server.log_text();
    CHECK(final_log.find("New device RKQ4243400358", log.size()) == std::string::npos);
    CHECK(final_log.find("(reason: boot)", log.size()) != std::string::npos);
    auto db = server.database();
    CHECK(db->punches().list_punches({}).value->size() == 3);
}

TEST_CASE("Punches get UTC instants in each device's zone, DST gaps and overlaps included", "[e2e]")
{
    temp_dir dir;
    auto config = base_settings("Asia/Riyadh");
    config.devices["KOLKATA1"].time_zone = "Asia/Kolkata";
    config.devices["NEWYORK1"].time_zone = "America/New_York";
    running_server server{config, dir.path};

    CHECK(device_get(server.port, "/iclock/cdata?SN=KOLKATA1&options=all&pushver=2.4.1")
              .body.find("\nTimeZone=330\n") != std::string::npos);
    auto ny_tz = *tz::locate_zone("America/New_York").value;
    auto ny = device_get(server.port, "/iclock/cdata?SN=NEWYORK1&options=all&pushver=2.4.1");
    CHECK(ny.body.find(fmt::format("\nTimeZone={}\n",
                                   ny_tz.time_zone_option(floor<seconds>(system_clock::now())))) !=
          std::string::npos);

    CHECK(device_post(server.port, "/iclock/cdata?SN=KOLKATA1&table=ATTLOG",
                      "1\t2026-01-29 09:00:00\t0\t1\t\t0\t0\n")
              .body == "OK:1");
    CHECK(device_post(server.port, "/iclock/cdata?SN=NEWYORK1&table=ATTLOG",
                      "1\t2025-03-09 01:30:00\t0\t1\t\t0\t0\n"  // EST
                      "2\t2025-03-09 02:30:00\t0\t1\t\t0\t0\n"  // in the gap
                      "3\t2025-03-09 03:30:00\t0\t1\t\t0\t0\n"  // EDT
                      "4\t2025-11-02 01:30:00\t0\t1\t\t0\t0\n"  // in the overlap
                      "5\t2025-07-01 12:00:00\t0\t1\t\t0\t0\n") // EDT
              .body == "OK:5");

    auto db = server.database();
    auto punches = db->punches().list_punches({});
    REQUIRE(punches);
    std::map<std::string, std::optional<sys_seconds>> utc;
    for (const auto& p : *punches.value) {
        utc[p.serial_number + "/" + p.pin] = p.utc;
    }
    CHECK(utc["KOLKATA1/1"] == sys_days{2026y / January / 29} + 3h + 30min);
    CHECK(utc["NEWYORK1/1"] == sys_days{2025y / March / 9} + 6h + 30min);
    // Nonexistent 02:30 is read with the offset before the gap (EST): 07:30Z.
    CHECK(utc["NEWYORK1/2"] == sys_days{2025y / March / 9} + 7h + 30min);
    CHECK(utc["NEWYORK1/3"] == sys_days{2025y / March / 9} + 7h + 30min);
    // Ambiguous 01:30 is read with the offset before the overlap (EDT): 05:30Z.
    CHECK(utc["NEWYORK1/4"] == sys_days{2025y / November / 2} + 5h + 30min);
    CHECK(utc["NEWYORK1/5"] == sys_days{2025y / July / 1} + 16h);
}

TEST_CASE("The time replies: SEC rtdata, P320 cdata and the Django compatibility form", "[e2e]")
{
    temp_dir dir;
    running_server server{base_settings("Asia/Kathmandu"), dir.path};
    auto zone = *tz::locate_zone("Asia/Kathmandu").value;

    auto rtdata = device_get(server.port, "/iclock/rtdata?SN=SEC1&type=time");
    REQUIRE(rtdata.status == 200);
    std::smatch m;
    REQUIRE(std::regex_match(rtdata.body, m, std::regex{R"(DateTime=(\d+),ServerTZ=\+0545)"}));
    // rtdata carries UTC.
    auto utc_sent = protocol::decode_zk_datetime(std::stoll(m[1].str()));
    REQUIRE(utc_sent);
    CHECK(abs(*utc_sent - local_seconds{floor<seconds>(system_clock::now()).time_since_epoch()}) <=
          2s);

    auto p320 = device_get(server.port, "/iclock/cdata?SN=P3201&type=time");
    REQUIRE(std::regex_match(p320.body, m,
                             std::regex{R"(Time=(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\+05:45)"}));
    auto p320_local = protocol::parse_civil_time(m[1].str());
    REQUIRE(p320_local);
    CHECK(abs(*p320_local - zone.to_local(floor<seconds>(system_clock::now()))) <= 2s);

    auto xml = device_get(server.port, "/iclock/getrequest?SN=DJ1&cmd=gettime&format=iso");
    CHECK(xml.headers["content-type"] == "application/xml");
    CHECK(std::regex_match(
        xml.body,
        std::regex{
            R"(<Response><Cmd>GetTime</Cmd><Status>OK</Status><Time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}</Time></Response>)"}));
    auto unix_reply = device_get(server.port, "/iclock/getrequest?SN=DJ1&cmd=settime&format=unix");
    CHECK(std::regex_match(
        unix_reply.body,
        std::regex{
            R"(<Response><Cmd>SetTime</Cmd><Status>OK</Status><Time>\d{10}</Time></Response>)"}));
    CHECK(device_get(server.port, "/iclock/getrequest?SN=DJ1&cmd=gettime&format=xml").status ==
          400);
    CHECK(server.log_text().find("Sending: GetTime XML with iso time format") != std::string::npos);
}

TEST_CASE("Bad requests get a clear status and one-line reason", "[e2e]")
{
    temp_dir dir;
    auto config = base_settings("UTC");
    config.max_body_bytes = 4096;
    running_server server{config, dir.path};

    auto no_sn = device_get(server.port, "/iclock/getrequest");
    CHECK(no_sn.status == 400);
    CHECK(no_sn.body == "missing SN\n");
    CHECK(device_get(server.port, "/iclock/getrequest?SN=a%0Ab").status == 400);
    CHECK(device_get(server.port, "/iclock/getrequestx?SN=A1").status == 404);
    CHECK(device_get(server.port, "/").status == 404);
    CHECK(round_trip(server.port, adms::test::device_request("DELETE", "/iclock/cdata?SN=A1"))
              .status == 405);
    CHECK(device_post(server.port, "/iclock/cdata?SN=A1", "x").status == 400);

    auto too_large =
        device_post(server.port, "/iclock/cdata?SN=A1&table=ATTLOG", std::string(8192, 'x'));
    CHECK(too_large.status == 413);
    auto huge_header = round_trip(server.port, "GET /iclock/ping?SN=A1 HTTP/1.1\r\nX-Big: " +
                                                   std::string(20000, 'a') + "\r\n\r\n");
    CHECK(huge_header.status == 431);
    CHECK(round_trip(server.port, "NOT HTTP AT ALL\r\n\r\n").status == 400);
    // The server is still fine.
    CHECK(device_get(server.port, "/iclock/ping?SN=A1").body == "OK");
}

TEST_CASE("HTTP/1.0, keep-alive and pipelined requests are answered in order", "[e2e]")
{
    temp_dir dir;
    running_server server{base_settings("UTC"), dir.path};

    auto old =
        round_trip(server.port, adms::test::device_request("GET", "/iclock/ping?SN=A1", "", "1.0"));
    CHECK(old.status_line == "HTTP/1.0 200 OK");
    CHECK(old.body == "OK");

    // Two requests in one write: both answered, in order, on one connection.
    std::string two =
        "GET /iclock/ping?SN=A1 HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /iclock/getrequest?SN=A2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    auto replies = adms::test::parse_replies(adms::test::round_trip_raw(server.port, two));
    REQUIRE(replies.size() == 2);
    CHECK(replies[0].body == "OK");
    CHECK(replies[0].headers.count("connection") == 0); // HTTP/1.1 default: keep-alive
    CHECK(replies[1].body.rfind("C:", 0) == 0);         // A2's first-contact time sync
    CHECK(replies[1].headers["connection"] == "close");

    // HTTP/1.0 with keep-alive asked for explicitly stays open for a second request.
    std::string kept = "GET /iclock/ping?SN=A1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                       "GET /iclock/ping?SN=A1 HTTP/1.0\r\n\r\n";
    auto old_replies = adms::test::parse_replies(adms::test::round_trip_raw(server.port, kept));
    REQUIRE(old_replies.size() == 2);
    CHECK(old_replies[0].headers["connection"] == "keep-alive");
    CHECK(old_replies[1].status_line == "HTTP/1.0 200 OK");
}

TEST_CASE("In approval mode unknown devices are refused at the handshake and their uploads are "
          "kept in quarantine",
          "[e2e]")
{
    temp_dir dir;
    auto config = base_settings("UTC");
    config.approval_required = true;
    running_server server{config, dir.path};

    auto refused = device_get(server.port, "/iclock/cdata?SN=STRANGER1&options=all&pushver=2.4.1");
    CHECK(refused.status == 403);
    CHECK(device_get(server.port, "/iclock/getrequest?SN=STRANGER1").body == "OK");
    CHECK(device_post(server.port, "/iclock/cdata?SN=STRANGER1&table=ATTLOG",
                      "5\t2026-03-01 09:00:00\t0\t1\t\t0\t0\n")
              .body == "OK:1");
    auto db = server.database();
    auto punches = db->punches().list_punches({});
    REQUIRE(punches);
    REQUIRE(punches.value->size() == 1);
    CHECK(punches.value->front().quarantined);
    CHECK(server.log_text().find("New device STRANGER1 from 127.0.0.1 (pushver 2.4.1), awaiting "
                                 "approval") != std::string::npos);
}

TEST_CASE("Approval mode admits the devices the config file declares", "[e2e]")
{
    temp_dir dir;
    auto config = base_settings("UTC");
    config.approval_required = true;
    config.devices["KNOWN1"].alias = "principal";
    running_server server{config, dir.path};
    CHECK(device_get(server.port, "/iclock/cdata?SN=KNOWN1&options=all&pushver=2.4.1").status ==
          200);
    auto db = server.database();
    auto device = stored_device(*db, "KNOWN1", [](const auto&) { return true; });
    REQUIRE(device);
    CHECK(device->approved);
    CHECK(device->alias == "principal");
}

TEST_CASE("Quarantined punches are released when the device is declared and the server "
          "restarts",
          "[e2e]")
{
    temp_dir dir;
    auto config = base_settings("UTC");
    config.approval_required = true;
    running_server server{config, dir.path};
    CHECK(device_post(server.port, "/iclock/cdata?SN=LATE1&table=ATTLOG",
                      "5\t2026-03-01 09:00:00\t0\t1\t\t0\t0\n")
              .body == "OK:1");
    server.stop();
    server.config.devices["LATE1"] = {};
    server.start();
    auto punches = server.database()->punches().list_punches({});
    REQUIRE(punches);
    REQUIRE(punches.value->size() == 1);
    CHECK_FALSE(punches.value->front().quarantined);
    CHECK(device_get(server.port, "/iclock/cdata?SN=LATE1&options=all&pushver=2.4.1").status ==
          200);
}

TEST_CASE("The JSON log format carries the same events, one object per line", "[e2e]")
{
    temp_dir dir;
    auto config = base_settings("Asia/Riyadh");
    config.log_format = "json";
    running_server server{config, dir.path};
    device_get(server.port, "/iclock/cdata?SN=JSON1&options=all&pushver=2.4.1");
    device_get(server.port, "/iclock/getrequest?SN=JSON1%0A");
    device_get(server.port, "/iclock/getrequest?SN=JSON1");
    auto log = server.log_text();
    std::istringstream lines{log};
    std::string line;
    int requests = 0;
    bool time_sync = false;
    while (std::getline(lines, line)) {
        INFO(line);
        REQUIRE(line.front() == '{');
        REQUIRE(line.back() == '}');
        requests += line.find("\"event\":\"request\"") != std::string::npos;
        time_sync = time_sync || (line.find("\"event\":\"time_sync\"") != std::string::npos &&
                                  line.find("\"zone\":\"Asia/Riyadh\"") != std::string::npos);
    }
    CHECK(requests == 3);
    CHECK(time_sync);
    // A percent-encoded newline stays encoded in the logged target (HTTP forbids a raw one), and
    // the request it belongs to is refused.
    CHECK(std::regex_search(
        log, std::regex{R"("target":"/iclock/getrequest\?SN=JSON1%0A"[^\n]*"status":400)"}));
}

TEST_CASE("While another process holds the database lock, uploads get 503 and nothing is "
          "acknowledged, and once it is released the same batch is stored once",
          "[e2e][storage_fault]")
{
    temp_dir dir;
    running_server server{base_settings("UTC"), dir.path};
    CHECK(device_get(server.port, "/iclock/ping?SN=LOCK1").body == "OK");

    sqlite3* other = nullptr;
    auto db_file = std::filesystem::path{server.config.data_dir} / "admsd.sqlite3";
    REQUIRE(sqlite3_open(db_file.c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);

    std::string batch = "1\t2026-04-01 08:00:00\t0\t1\t\t0\t0\n";
    auto refused = device_post(server.port, "/iclock/cdata?SN=LOCK1&table=ATTLOG", batch);
    CHECK(refused.status == 503);
    CHECK(refused.body.find("OK") == std::string::npos);
    auto refused_again = device_post(server.port, "/iclock/cdata?SN=LOCK1&table=ATTLOG", batch);
    CHECK(refused_again.status == 503);
    // Polls and time replies still answer.
    CHECK(device_get(server.port, "/iclock/rtdata?SN=LOCK1&type=time").status == 200);

    CHECK(device_get(server.port, "/healthz").status == 503);

    REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(other);

    // The server notices by itself (a probe write every second), without an upload.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    while (device_get(server.port, "/healthz").status != 200 &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    CHECK(device_get(server.port, "/healthz").status == 200);
    CHECK(device_post(server.port, "/iclock/cdata?SN=LOCK1&table=ATTLOG", batch).body == "OK:1");
    auto punches = server.database()->punches().list_punches({});
    REQUIRE(punches);
    CHECK(punches.value->size() == 1);
    auto log = server.log_text();
    // The cause is logged once per change of state, not once per request.
    auto first = log.find("Storage failed");
    REQUIRE(first != std::string::npos);
    CHECK(log.find("Storage failed", first + 1) == std::string::npos);
    CHECK(log.find("Storage recovered") != std::string::npos);
}

TEST_CASE("A client that stops sending is cut off by the read deadline while others are served",
          "[e2e]")
{
    temp_dir dir;
    auto config = base_settings("UTC");
    config.read_timeout = std::chrono::seconds{1};
    running_server server{config, dir.path};

    // Half a request line, then silence: the server closes the connection by itself.
    auto start = steady_clock::now();
    auto raw = adms::test::round_trip_raw(server.port, "GET /iclock/ping?SN=SL", 10s);
    auto waited = steady_clock::now() - start;
    CHECK(raw.empty());
    CHECK(waited < 8s); // closed by the 1 s deadline, not by the client's 10 s give-up
    CHECK(device_get(server.port, "/iclock/ping?SN=OK1").body == "OK");
}

TEST_CASE("Photos, unknown tables and the SEC registry and push endpoints are stored and answered",
          "[e2e]")
{
    temp_dir dir;
    running_server server{base_settings("UTC"), dir.path};
    std::string jpeg{"\xff\xd8\x00\x01\xff\xd9", 6};
    std::string photo = "PIN=20260401080000-1.jpg\nSN=PH1\nsize=6\nCMD=uploadphoto";
    photo += '\0';
    photo += jpeg;
    CHECK(device_post(server.port, "/iclock/fdata?SN=PH1", photo).body == "OK");
    std::string second = photo;
    second.replace(second.find("-1.jpg"), 6, "-2.jpg");
    CHECK(device_post(server.port, "/iclock/cdata?SN=PH1&table=ATTPHOTO&Stamp=5", second).body ==
          "OK");
    CHECK(device_post(server.port, "/iclock/cdata?SN=PH1&table=BIODATA",
                      "BIODATA Pin=1\tNo=0\tIndex=0\tValid=1\tTmp=AAAA\n")
              .body == "OK");

    auto registry = device_post(server.port, "/iclock/registry?SN=SEC9",
                                "DeviceType=acc,~MaxPackageSize=2048000");
    CHECK(std::regex_match(registry.body, std::regex{"RegistryCode=[0-9a-f]{16}"}));
    auto push = device_post(server.port, "/iclock/push?SN=SEC9", "");
    CHECK(push.body.rfind("ServerVersion=3.0.1\n", 0) == 0);
    CHECK(push.body.find("\nRequestDelay=10\n") != std::string::npos);

    auto db = server.database();
    auto photos = db->uploads().list_photos({});
    REQUIRE(photos);
    REQUIRE(photos.value->size() == 2);
    CHECK(photos.value->front().file_name == "20260401080000-1.jpg");
    CHECK(photos.value->front().bytes == jpeg);
    auto bodies = db->uploads().list_table_bodies({});
    REQUIRE(bodies);
    REQUIRE(bodies.value->size() == 1);
    CHECK(bodies.value->front().table == "BIODATA");
    auto device = stored_device(*db, "PH1", [](const auto& d) { return d.attphoto_stamp == "5"; });
    CHECK(device.has_value());
    // A device whose first request is an upload is registered and logged as new all the same.
    auto log = server.log_text();
    CHECK(log.find("New device PH1 from 127.0.0.1 (pushver none)") != std::string::npos);
    CHECK(log.find("New device SEC9 from 127.0.0.1 (pushver none)") != std::string::npos);
}

TEST_CASE("A bad data directory or listen address stops start-up with one line naming it",
          "[e2e][startup]")
{
    temp_dir dir;
    auto start_with = [&](server::settings s) {
        s.time_zone = "UTC";
        s.threads = 1;
        s.admin_tokens = {"startup-test-token-0123"};
        auto log = std::fopen((dir.path / "startup.log").c_str(), "a");
        std::string error;
        {
            server::app app{s, log};
            error = app.start().error;
        }
        std::fclose(log);
        return error;
    };

    // A regular file where the data directory should be.
    auto file = dir.path / "not-a-directory";
    std::ofstream{file} << "x";
    server::settings s;
    s.listen = "127.0.0.1:0";
    s.data_dir = file.string();
    CHECK_THAT(start_with(s),
               Catch::StartsWith(fmt::format("invalid data_dir '{}':", file.string())));

    // A port another listener holds.
    s.data_dir = (dir.path / "data").string();
    server::settings holder_settings = s;
    holder_settings.time_zone = "UTC";
    holder_settings.admin_tokens = {"startup-test-token-0123"};
    auto holder_log = std::fopen((dir.path / "holder.log").c_str(), "a");
    {
        server::app holder{holder_settings, holder_log};
        auto held = holder.start();
        REQUIRE(held);
        s.listen = fmt::format("127.0.0.1:{}", held.port);
        s.data_dir = (dir.path / "data2").string();
        auto busy = start_with(s);
        CHECK_THAT(busy, Catch::StartsWith(fmt::format(
                             "invalid listen '127.0.0.1:{}': cannot listen:", held.port)));
        CHECK(busy.find('\n') == std::string::npos);
    }
    std::fclose(holder_log);

    // A host name is not an address.
    s.listen = "localhost:0";
    CHECK(start_with(s) == "invalid listen 'localhost:0': 'localhost' is not an IP address");
}

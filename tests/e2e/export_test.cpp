// End-to-end: the scheduled payroll exports against the real server (127.0.0.1:0, a real SQLite
// file, real files in a temporary directory): the file of a day is the body of GET /punches.csv
// for that day byte for byte, the schedule writes at `at`, missed days are written at the next
// start, and the hook's writes commit with the run.
#include "protocol/civil_time.hpp"
#include "server/exports/export_service.hpp"
#include "server/net.hpp"
#include "server/observability/logger.hpp"
#include "server/observability/metrics.hpp"
#include "server/storage/commit_queue.hpp"
#include "tests/e2e/device_client.hpp"
#include "tests/e2e/test_server.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sqlite3.h>

#include <fstream>
#include <future>
#include <sstream>

using namespace std::chrono;
using namespace adms;
using adms::test::device_get;
using adms::test::device_post;
using adms::test::eventually;
using adms::test::http_reply;
using adms::test::running_server;
using adms::test::temp_dir;
using adms::test::test_token;
namespace json = boost::json;

namespace {

http_reply api(unsigned short port, const std::string& method, const std::string& target,
               const std::string& body = {})
{
    return adms::test::admin_call(port, method, target, body, test_token);
}

json::object body_of(const http_reply& reply)
{
    INFO(reply.raw);
    auto value = json::parse(reply.body);
    REQUIRE(value.is_object());
    return value.as_object();
}

std::string read_file(const std::filesystem::path& path)
{
    std::ifstream in{path, std::ios::binary};
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string day_text(local_days day)
{
    return protocol::format_civil_date(day);
}

std::filesystem::path day_file(const std::filesystem::path& directory, local_days day)
{
    return directory / fmt::format("punches-{}.csv", day_text(day));
}

// The body of GET /punches.csv for one day: what the day's file must hold, byte for byte.
std::string csv_of_day(unsigned short port, local_days day)
{
    auto reply =
        api(port, "GET", fmt::format("/punches.csv?from={}&to={}", day_text(day), day_text(day)));
    REQUIRE(reply.status == 200);
    return reply.body;
}

// ATTLOG lines of PIN `pin` at each of `times` ("YYYY-MM-DD HH:MM:SS").
std::string attlog(const std::string& pin, const std::vector<std::string>& times)
{
    std::string body;
    for (const auto& t : times) {
        body += fmt::format("{}\t{}\t0\t1\t0\t0\t0\n", pin, t);
    }
    return body;
}

void upload(unsigned short port, const std::string& serial_number, const std::string& lines)
{
    auto reply = device_post(port, "/iclock/cdata?SN=" + serial_number + "&table=ATTLOG", lines);
    REQUIRE(reply.body == fmt::format("OK:{}", std::count(lines.begin(), lines.end(), '\n')));
}

// A fixed-offset zone in which it is now around noon, so a test's days and `at` never cross
// midnight: Etc/GMT-k is UTC+k.
std::string noon_zone()
{
    auto hour = floor<hours>(system_clock::now() - floor<days>(system_clock::now())).count();
    auto offset = 12 - hour; // -11 .. 12
    if (offset == 0) {
        return "Etc/GMT";
    }
    return offset > 0 ? fmt::format("Etc/GMT-{}", offset) : fmt::format("Etc/GMT+{}", -offset);
}

local_seconds local_now(const std::string& zone)
{
    return tz::locate_zone(zone).value->to_local(floor<seconds>(system_clock::now()));
}

server::settings settings_with_export(const std::string& zone,
                                      const std::filesystem::path& directory, seconds at)
{
    server::settings s;
    s.time_zone = zone;
    s.exports["payroll"] = {.at = at, .directory = directory.string(), .format = "csv"};
    return s;
}

// Where `needle` first occurs in the log from `from` on, for ordering lines.
std::size_t log_position(const running_server& server, const std::string& needle,
                         std::size_t from = 0)
{
    auto at = server.log_text().find(needle, from);
    INFO(needle);
    REQUIRE(at != std::string::npos);
    return at;
}

} // namespace

TEST_CASE("An on-demand export writes exactly the bytes of /punches.csv for that day",
          "[e2e][exports]")
{
    temp_dir dir;
    auto out = dir.path / "payroll";
    auto s = settings_with_export("Europe/Berlin", out, 1h + 30min);
    s.approval_required = true; // declared devices are admitted; Q1's punches are quarantined
    s.devices["P1"].alias = "front";
    s.devices["P2"].time_zone = "Asia/Kolkata";
    running_server server{s, dir.path};
    for (const auto* sn : {"P1", "P2"}) {
        REQUIRE(
            device_get(server.port, fmt::format("/iclock/cdata?SN={}&options=all", sn)).status ==
            200);
    }
    // 2024-03-31 is Berlin's 23-hour day (02:00 -> 03:00): the file is its wall-clock day all
    // the same, 02:30 (which Berlin's clocks skipped) included.
    local_days sat{2024y / March / 30};
    local_days sun{2024y / March / 31};
    upload(server.port, "P1",
           attlog("7", {"2024-03-29 23:59:59", "2024-03-30 00:00:00", "2024-03-30 08:01:02",
                        "2024-03-30 23:59:59", "2024-03-31 00:00:00", "2024-03-31 02:30:00",
                        "2024-03-31 23:59:59", "2024-04-01 00:00:00"}));
    upload(server.port, "P2", attlog("42", {"2024-03-30 12:00:00", "2024-03-31 12:00:00"}));
    upload(server.port, "Q1", attlog("9", {"2024-03-30 10:00:00"}));

    auto run = api(server.port, "POST", "/exports/payroll/run", R"({"date": "2024-03-30"})");
    REQUIRE(run.status == 200);
    auto result = body_of(run);
    CHECK(result.at("success") == true);
    CHECK(result.at("name") == "payroll");
    CHECK(result.at("date") == "2024-03-30");
    CHECK(json::value_to<std::string>(result.at("file")) == day_file(out, sat).string());
    CHECK(result.at("rows") == 4);
    CHECK(result.at("trigger") == "on_demand");
    auto file = read_file(day_file(out, sat));
    CHECK(result.at("bytes") == file.size());
    auto api_csv = csv_of_day(server.port, sat);
    CHECK(file == api_csv);
    CHECK_THAT(file, Catch::Contains(",front,P1,7,2024-03-30 00:00:00,2024-03-30T00:00:00+01:00,"));
    CHECK_THAT(file, Catch::Contains(",P2,P2,42,2024-03-30 12:00:00,2024-03-30T12:00:00+05:30,"));
    // The quarantined punch and the neighbouring days' punches are not there.
    CHECK_THAT(file, !Catch::Contains("Q1") && !Catch::Contains(",2024-03-29 23:59:59,") &&
                         !Catch::Contains(",2024-03-31 00:00:00,"));

    auto sunday =
        body_of(api(server.port, "POST", "/exports/payroll/run", R"({"date":"2024-03-31"})"));
    CHECK(sunday.at("rows") == 4);
    CHECK(read_file(day_file(out, sun)) == csv_of_day(server.port, sun));

    // A day with no punches is the header alone, like the API's answer.
    local_days empty_day{2024y / January / 1};
    auto empty =
        body_of(api(server.port, "POST", "/exports/payroll/run", R"({"date":"2024-01-01"})"));
    CHECK(empty.at("rows") == 0);
    CHECK(read_file(day_file(out, empty_day)) == csv_of_day(server.port, empty_day));
    CHECK(read_file(day_file(out, empty_day)).starts_with("id,device,sn,pin,"));

    // Run again after a late punch: the file is replaced, still equal to the API's answer.
    upload(server.port, "P2", attlog("43", {"2024-03-30 18:00:00"}));
    REQUIRE(api(server.port, "POST", "/exports/payroll/run", R"({"date":"2024-03-30"})").status ==
            200);
    auto again = read_file(day_file(out, sat));
    CHECK(again != file);
    CHECK(again == csv_of_day(server.port, sat));
    // Nothing but whole files in the directory.
    for (const auto& entry : std::filesystem::directory_iterator{out}) {
        CHECK_FALSE(entry.path().filename().string().ends_with(".tmp"));
    }

    SECTION("bad requests name the field; an unknown export is 404")
    {
        auto unknown = api(server.port, "POST", "/exports/nope/run", R"({"date":"2024-03-30"})");
        CHECK(unknown.status == 404);
        CHECK(body_of(unknown).at("error") == "Export not found: nope");
        auto missing = api(server.port, "POST", "/exports/payroll/run", "{}");
        CHECK(missing.status == 400);
        CHECK_THAT(std::string{body_of(missing).at("error").as_string()},
                   Catch::StartsWith("field 'date': required"));
        for (const auto* bad : {R"({"date":"2024-02-30"})", R"({"date":"30.03.2024"})",
                                R"({"date":20240330})", R"({"date":"2024-03-30T00:00:00"})"}) {
            auto refused = api(server.port, "POST", "/exports/payroll/run", bad);
            INFO(bad);
            CHECK(refused.status == 400);
            CHECK_THAT(std::string{body_of(refused).at("error").as_string()},
                       Catch::StartsWith("field 'date':"));
        }
        auto extra =
            api(server.port, "POST", "/exports/payroll/run", R"({"date":"2024-03-30","day":"x"})");
        CHECK(extra.status == 400);
        CHECK(api(server.port, "POST", "/exports/payroll/run", "not json").status == 400);
        CHECK(api(server.port, "GET", "/exports/payroll/run").status == 405);
        CHECK(adms::test::admin_call(server.port, "GET", "/exports", {}, "").status == 401);
    }
    SECTION("GET /exports shows the schedule, the last run and the schedule's last day")
    {
        // The start wrote the latest due day (a new export starts there).
        REQUIRE(eventually([&] {
            auto listed = body_of(api(server.port, "GET", "/exports"));
            return !listed.at("data")
                        .as_array()
                        .at(0)
                        .as_object()
                        .at("last_completed_day")
                        .is_null();
        }));
        auto listed = body_of(api(server.port, "GET", "/exports"));
        REQUIRE(listed.at("data").as_array().size() == 1);
        const auto& e = listed.at("data").as_array().at(0).as_object();
        CHECK(e.at("name") == "payroll");
        CHECK(e.at("at") == "01:30");
        CHECK(e.at("time_zone") == "Europe/Berlin");
        CHECK(json::value_to<std::string>(e.at("directory")) == out.string());
        CHECK(e.at("format") == "csv");
        auto berlin = *tz::locate_zone("Europe/Berlin").value;
        auto latest = floor<days>(berlin.to_local(floor<seconds>(system_clock::now()))) - days{1};
        auto completed = protocol::parse_civil_date(e.at("last_completed_day").as_string());
        REQUIRE(completed);
        // Yesterday, or the day before while today's 01:30 has not come.
        CHECK((*completed == latest || *completed == latest - days{1}));
        CHECK(json::value_to<std::string>(e.at("next_day")) == day_text(*completed + days{1}));
        CHECK_THAT(std::string{e.at("next_run").as_string()},
                   Catch::StartsWith(day_text(*completed + days{2}) + "T01:30:00+01:00"));
        CHECK(e.at("last_error").is_null());
        REQUIRE(e.at("last_run").is_object());
        CHECK(e.at("last_run").as_object().contains("finished_at"));
        auto metrics = api(server.port, "GET", "/metrics").body;
        CHECK_THAT(metrics, Catch::Contains(
                                R"(admsd_export_runs_total{export="payroll",outcome="written"})"));
        CHECK_THAT(
            metrics,
            Catch::Contains(R"(admsd_export_last_success_timestamp_seconds{export="payroll"})"));
        CHECK_THAT(server.log_text(),
                   Catch::Contains("Export payroll: wrote " + day_file(out, sat).string() +
                                   " for 2024-03-30 (4 rows, "));
    }
}

TEST_CASE(
    "The schedule writes yesterday's file at `at`, and a new export starts with the latest day",
    "[e2e][exports]")
{
    temp_dir dir;
    auto out = dir.path / "payroll";
    auto zone = noon_zone();
    auto today = floor<days>(local_now(zone));
    auto yesterday = today - days{1};
    auto before = today - days{2};
    {
        // The punches are there before the export is configured.
        server::settings s;
        s.time_zone = zone;
        running_server first{s, dir.path};
        for (auto day : {before, yesterday, today}) {
            upload(first.port, "S1",
                   attlog("5", {day_text(day) + " 00:00:00", day_text(day) + " 09:15:00",
                                day_text(day) + " 23:59:59"}));
        }
    }
    // Due in a few seconds: today's `at` (local), so yesterday's file is written then.
    auto now = local_now(zone);
    auto at = duration_cast<seconds>(now - today) + seconds{5};
    auto due = tz::locate_zone(zone).value->to_utc(
        today + at, {tz::gap_policy::reject, tz::overlap_policy::reject});
    REQUIRE(due);
    running_server server{settings_with_export(zone, out, at), dir.path};

    // At start the latest due day is the day before yesterday: written at once.
    REQUIRE(eventually([&] { return std::filesystem::exists(day_file(out, before)); }));
    if (system_clock::now() < *due - seconds{1}) {
        CHECK_FALSE(std::filesystem::exists(day_file(out, yesterday)));
    }
    CHECK(read_file(day_file(out, before)) == csv_of_day(server.port, before));

    // Then yesterday's, at `at`, not before.
    REQUIRE(
        eventually([&] { return std::filesystem::exists(day_file(out, yesterday)); }, seconds{20}));
    CHECK(system_clock::now() >= *due);
    auto file = read_file(day_file(out, yesterday));
    CHECK(file == csv_of_day(server.port, yesterday));
    CHECK(std::count(file.begin(), file.end(), '\n') == 4);
    CHECK_FALSE(std::filesystem::exists(day_file(out, today)));

    REQUIRE(eventually([&] {
        auto e = body_of(api(server.port, "GET", "/exports")).at("data").as_array().at(0);
        return e.as_object().at("last_completed_day") == json::value(day_text(yesterday));
    }));
    auto e = body_of(api(server.port, "GET", "/exports")).at("data").as_array().at(0).as_object();
    CHECK(json::value_to<std::string>(e.at("next_day")) == day_text(today));
    CHECK(e.at("last_run").as_object().at("trigger") == "scheduled");
    CHECK_THAT(std::string{e.at("next_run").as_string()},
               Catch::StartsWith(day_text(today + days{1}) + "T"));
    CHECK(log_position(server, "punches-" + day_text(before) + ".csv") <
          log_position(server, "punches-" + day_text(yesterday) + ".csv"));
}

TEST_CASE("Days missed while admsd was down are written at the next start, oldest first",
          "[e2e][exports]")
{
    temp_dir dir;
    auto out = dir.path / "payroll";
    auto zone = noon_zone();
    auto yesterday = floor<days>(local_now(zone)) - days{1};
    auto s = settings_with_export(zone, out, 0s); // due at midnight: yesterday is due all day
    running_server server{s, dir.path};
    for (int back = 0; back < 4; ++back) {
        auto day = day_text(yesterday - days{back});
        upload(server.port, "M1", attlog("3", {day + " 07:00:00", day + " 16:00:00"}));
    }
    // The first start wrote yesterday (a new export starts there) and recorded it.
    REQUIRE(eventually([&] {
        auto e = body_of(api(server.port, "GET", "/exports")).at("data").as_array().at(0);
        return e.as_object().at("last_completed_day") == json::value(day_text(yesterday));
    }));
    server.stop();

    // Down for three days: the schedule's last day is set back (as if those starts never came),
    // the files are gone, and a crash left a temporary beside someone else's file.
    {
        sqlite3* raw = nullptr;
        REQUIRE(sqlite3_open((dir.path / "data" / "admsd.sqlite3").c_str(), &raw) == SQLITE_OK);
        auto sql = fmt::format("UPDATE export_state SET last_completed_day = '{}'",
                               day_text(yesterday - days{3}));
        CHECK(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
        CHECK(sqlite3_changes(raw) == 1);
        sqlite3_close(raw);
    }
    std::filesystem::remove(day_file(out, yesterday));
    std::ofstream{out / ".punches-2024-01-02.csv.tmp"} << "id,device,sn\r\n1,";
    std::ofstream{out / ".someone-else.tmp"} << "theirs";

    auto restarted_at = server.log_text().size();
    server.start();
    for (int back = 2; back >= 0; --back) {
        auto day = yesterday - days{back};
        REQUIRE(eventually([&] { return std::filesystem::exists(day_file(out, day)); }));
    }
    CHECK_FALSE(std::filesystem::exists(day_file(out, yesterday - days{3})));
    for (int back = 2; back >= 0; --back) {
        auto day = yesterday - days{back};
        INFO(day_text(day));
        auto file = read_file(day_file(out, day));
        CHECK(file == csv_of_day(server.port, day));
        CHECK(std::count(file.begin(), file.end(), '\n') == 3);
    }
    // Oldest first, after the leftover temporary was removed (and nothing else).
    auto log_of = [&](local_days day) {
        return log_position(server, "wrote " + day_file(out, day).string(), restarted_at);
    };
    CHECK(log_position(server, "removed 1 temporary file a crash left in", restarted_at) <
          log_of(yesterday - days{2}));
    CHECK(log_of(yesterday - days{2}) < log_of(yesterday - days{1}));
    CHECK(log_of(yesterday - days{1}) < log_of(yesterday));
    CHECK_FALSE(std::filesystem::exists(out / ".punches-2024-01-02.csv.tmp"));
    CHECK(std::filesystem::exists(out / ".someone-else.tmp"));
    REQUIRE(eventually([&] {
        auto e = body_of(api(server.port, "GET", "/exports")).at("data").as_array().at(0);
        return e.as_object().at("last_completed_day") == json::value(day_text(yesterday));
    }));
}

TEST_CASE("The completed-export hook writes in the run's commit, and its failure leaves the run "
          "unrecorded",
          "[e2e][exports]")
{
    temp_dir dir;
    auto opened = server::sqlite_database::open(dir.path / "admsd.sqlite3");
    REQUIRE(opened);
    auto& db = **opened.value;
    server::commit_queue writer{db};
    auto utc = *tz::locate_zone("UTC").value;
    auto log_file = dir.path / "export.log";
    std::FILE* log_out = std::fopen(log_file.c_str(), "w");
    server::logger log{utc, false, log_out};
    server::metrics stats;
    std::vector<server::punch_input> punches(3);
    for (int i = 0; i < 3; ++i) {
        auto text = fmt::format("2026-11-30 0{}:00:00", i + 7);
        punches[i].record.pin = "1";
        punches[i].record.time = *protocol::parse_civil_time(text);
        punches[i].utc = sys_seconds{punches[i].record.time.time_since_epoch()};
        punches[i].raw_line = "1\t" + text;
    }
    REQUIRE(db.write([&](server::write_tx& tx) {
        return tx.punches().store_punches("H1", punches, server::instant{}, false);
    }));

    std::vector<server::export_run> seen;
    bool fail_hook = false;
    server::export_table exports;
    exports["payroll"] = {.at = 1h, .directory = (dir.path / "out").string(), .format = "csv"};
    server::export_service service{
        exports,
        utc,
        db,
        writer,
        [utc] {
            return server::device_lookup{[utc](const server::stored_punch& p) {
                return server::punch_device{p.serial_number, utc};
            }};
        },
        log,
        stats,
        [&](server::write_tx& tx, const server::export_run& run) -> server::storage_status {
            seen.push_back(run);
            if (fail_hook) {
                return server::storage_error{"the outbox is full"};
            }
            // Stands in for the outbox row: anything written through the run's transaction.
            std::vector<server::clock_offset_point> event{{"EVENT", run.finished_at, 1, 1, "sync"}};
            return tx.clocks().store_clock_offsets(event, server::instant{});
        }};
    REQUIRE(service.load());
    server::net::io_context io;
    auto run_now = [&](local_days day) {
        auto done =
            server::net::co_spawn(io, service.run_now("payroll", day), server::net::use_future);
        io.restart();
        io.run();
        return done.get();
    };
    local_days day{2026y / November / 30};
    auto events = [&] {
        return db.clocks().list_clock_offsets({.serial_number = "EVENT"}).value->size();
    };

    auto outcome = run_now(day);
    REQUIRE(outcome.run);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == *outcome.run);
    CHECK(seen[0].name == "payroll");
    CHECK(seen[0].day == day);
    CHECK(seen[0].rows == 3);
    CHECK(seen[0].file == (dir.path / "out" / "punches-2026-11-30.csv").string());
    CHECK(seen[0].bytes == std::filesystem::file_size(seen[0].file));
    CHECK_FALSE(seen[0].scheduled);
    CHECK(events() == 1);
    auto states = db.exports().list_export_states();
    REQUIRE(states);
    REQUIRE(states.value->size() == 1);
    CHECK(states.value->at(0).last_run == *outcome.run);

    // The hook fails: the run is not recorded and the hook's own write is undone with it.
    fail_hook = true;
    auto failed = run_now(day - days{1});
    CHECK_FALSE(failed.run);
    CHECK(failed.error == server::export_error::storage);
    CHECK_THAT(failed.message, Catch::Contains("the outbox is full"));
    CHECK(seen.size() == 2);
    CHECK(events() == 1);
    CHECK(db.exports().list_export_states().value->at(0).last_run == *outcome.run);
    CHECK(service.list().at(0).last_error == failed.message);

    // The hook works again: the run is recorded with its event. Unknown exports are errors.
    fail_hook = false;
    CHECK(run_now(day).run);
    CHECK(events() == 2);
    auto unknown = server::net::co_spawn(io, service.run_now("nope", day), server::net::use_future);
    io.restart();
    io.run();
    CHECK(unknown.get().error == server::export_error::unknown_export);
    service.stop();
    writer.stop();
    std::fclose(log_out);
}

#include "protocol/civil_time.hpp"
#include "protocol/command.hpp"
#include "protocol/operlog.hpp"
#include "tests/temp_dir.hpp"
#include "tests/unit/server/storage/contract/cases.hpp"
#include "tests/unit/server/storage/sqlite/sqlite_backend.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <unistd.h>

using namespace adms::server;
using namespace adms::storage_test;
using namespace std::chrono_literals;
namespace protocol = adms::protocol;
namespace fs = std::filesystem;

namespace {

// The SQLite-only cases: the file, its schema and migrations, WAL and locks, read-only modes and
// the statement cache. What every backend must do is in ../contract/.

// The shared temp dir, with the file this suite works on.
struct temp_dir : adms::test::temp_dir {
    fs::path db() const { return path / "admsd.sqlite3"; }
};

std::unique_ptr<test_store> open_store(const fs::path& file, sqlite_open_options options = {})
{
    auto opened = sqlite_database::open(file, options);
    INFO(opened.error.message);
    REQUIRE(opened);
    return std::make_unique<test_store>(std::move(*opened.value), sqlite_reads());
}

// A second, raw connection to the same file, for what the storage API does not expose.
struct raw_connection {
    sqlite3* db = nullptr;
    explicit raw_connection(const fs::path& file)
    {
        REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    }
    raw_connection(const raw_connection&) = delete;
    raw_connection& operator=(const raw_connection&) = delete;
    ~raw_connection() { sqlite3_close(db); }
    void exec(const char* sql) { REQUIRE(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == 0); }
    std::string text(const char* sql)
    {
        sqlite3_stmt* s = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK);
        std::string out;
        if (sqlite3_step(s) == SQLITE_ROW) {
            out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
        }
        sqlite3_finalize(s);
        return out;
    }
};

} // namespace

TEST_CASE("A new database file gets the current schema version and the WAL journal",
          "[storage][sqlite]")
{
    temp_dir dir;
    {
        auto store = open_store(dir.db());
        REQUIRE(store->close());
    }
    REQUIRE(fs::exists(dir.db()));
    raw_connection raw{dir.db()};
    CHECK(raw.text("PRAGMA user_version") == std::to_string(sqlite_database::schema_version));
    CHECK(raw.text("PRAGMA journal_mode") == "wal");
    CHECK(raw.text("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'punch'") ==
          "1");
}

TEST_CASE("A database written by a newer build is refused as a value", "[storage][sqlite]")
{
    temp_dir dir;
    REQUIRE(open_store(dir.db())->close());
    {
        raw_connection raw{dir.db()};
        raw.exec("PRAGMA user_version = 99");
    }
    auto opened = sqlite_database::open(dir.db());
    REQUIRE_FALSE(opened);
    CHECK_THAT(opened.error.message, Catch::Contains("newer"));
}

TEST_CASE("A file that is not a database is refused as a value", "[storage][sqlite]")
{
    temp_dir dir;
    {
        std::ofstream out{dir.db(), std::ios::binary};
        out << std::string(4096, 'x');
    }
    auto opened = sqlite_database::open(dir.db());
    REQUIRE_FALSE(opened);
    CHECK_THAT(opened.error.message, Catch::Contains("not a database"));
}

TEST_CASE("Opening a file in a missing directory is refused as a value", "[storage][sqlite]")
{
    temp_dir dir;
    auto opened = sqlite_database::open(dir.path / "missing" / "admsd.sqlite3");
    REQUIRE_FALSE(opened);
    CHECK_THAT(opened.error.message, Catch::Contains("missing"));
}

TEST_CASE("A read-only database returns error values for every write, never exceptions",
          "[storage][sqlite]")
{
    temp_dir dir;
    {
        auto store = open_store(dir.db());
        REQUIRE(store->enqueue_command("A1", "INFO", "admin", at(0)));
        REQUIRE(store->close());
    }
    auto store = open_store(dir.db(), {.read_only = true});
    std::vector<punch_input> punches{punch("1", "2025-03-01 08:00:00")};
    std::vector<protocol::key_value> options{{"k", "v"}};
    std::vector<protocol::rejected_line> rejected{{1, "x", "y"}};
    auto operlog = protocol::parse_operlog("OPLOG 0\t0\t2025-03-01 08:00:00\t0\n").records;
    std::vector<protocol::command_result> results{{"1", 0, "INFO", {}, ""}};
    device_record device;
    device.serial_number = "A1";

    auto expect_readonly = [](const auto& result) {
        REQUIRE_FALSE(result);
        CHECK_THAT(result.error.message, Catch::Contains("readonly"));
    };
    REQUIRE_NOTHROW(expect_readonly(store->store_punches("A1", punches, at(1), false)));
    REQUIRE_NOTHROW(expect_readonly(store->upsert_device(device)));
    REQUIRE_NOTHROW(expect_readonly(store->store_device_options("A1", options, at(1))));
    REQUIRE_NOTHROW(expect_readonly(store->store_rejected_lines("A1", "ATTLOG", rejected, at(1))));
    REQUIRE_NOTHROW(expect_readonly(store->store_operlog("A1", operlog, at(1))));
    REQUIRE_NOTHROW(expect_readonly(store->store_table_body("A1", "X", "y", at(1))));
    REQUIRE_NOTHROW(expect_readonly(store->store_photo("A1", "f.jpg", "y", at(1))));
    REQUIRE_NOTHROW(expect_readonly(store->enqueue_command("A1", "INFO", "admin", at(1))));
    REQUIRE_NOTHROW(expect_readonly(store->claim_commands("A1", at(1), policy, choose_all)));
    REQUIRE_NOTHROW(expect_readonly(store->record_command_results("A1", results, at(1))));
    REQUIRE_NOTHROW(expect_readonly(store->release_quarantine("A1")));
    REQUIRE_NOTHROW(expect_readonly(
        store->enqueue_command_unless_pending("A1", "INFO", "time-sync", "time-sync", at(1))));

    // Reads still work.
    auto listed = store->list_commands("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 1);
    auto found = store->find_command("A1", listed.value->front().id);
    REQUIRE(found);
    CHECK(found.value->has_value());
    CHECK(store->query_punches({}));
    CHECK(store->last_punch_id());
    CHECK(store->check());
}

TEST_CASE("A database locked by another connection makes a store fail as a value",
          "[storage][sqlite]")
{
    temp_dir dir;
    auto store = open_store(dir.db(), {.busy_timeout = 20ms});
    raw_connection other{dir.db()};
    other.exec("BEGIN EXCLUSIVE");
    std::vector<punch_input> punches{punch("1", "2025-03-01 08:00:00")};
    auto locked = store->store_punches("A1", punches, at(1), false);
    REQUIRE_FALSE(locked);
    CHECK_THAT(locked.error.message, Catch::Contains("write batch") && Catch::Contains("locked"));
    other.exec("ROLLBACK");
    // Nothing half-written, and the same batch goes in once the lock is gone.
    auto retried = store->store_punches("A1", punches, at(2), false);
    REQUIRE(retried);
    CHECK(*retried.value == store_counts{1, 0});
}

TEST_CASE("A new database is at the current schema version and the admin API's device settings "
          "round-trip",
          "[storage][sqlite]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    {
        raw_connection raw{dir.db()};
        CHECK(raw.text("PRAGMA user_version") == "7");
    }
    CHECK(sqlite_database::schema_version == 7);

    device_record d;
    d.serial_number = "A1";
    d.first_seen = d.last_seen = at(1);
    auto plain = store->upsert_device(d);
    REQUIRE(plain);
    CHECK_FALSE(plain.value->time_dialect_override);
    CHECK_FALSE(plain.value->sync_at_minutes);
    CHECK_FALSE(plain.value->sync_interval_minutes);

    d.time_dialect_override = "att-singular";
    d.sync_at_minutes = 1439;
    d.sync_interval_minutes = 360;
    auto stored = store->upsert_device(d);
    REQUIRE(stored);
    CHECK(stored.value->time_dialect_override == "att-singular");
    CHECK(stored.value->sync_at_minutes == 1439);
    CHECK(stored.value->sync_interval_minutes == 360);
    auto loaded = store->load_device("A1");
    REQUIRE(loaded);
    REQUIRE(loaded.value->has_value());
    CHECK((*loaded.value)->time_dialect_override == "att-singular");
    CHECK((*loaded.value)->sync_at_minutes == 1439);
    CHECK((*loaded.value)->sync_interval_minutes == 360);

    // 0 is "explicitly off", not "unset"; clearing a field stores NULL again.
    d.time_dialect_override = "att";
    d.sync_at_minutes = 0;
    d.sync_interval_minutes = 0;
    REQUIRE(store->upsert_device(d));
    auto all = store->load_devices();
    REQUIRE(all);
    REQUIRE(all.value->size() == 1);
    CHECK(all.value->front().time_dialect_override == "att");
    CHECK(all.value->front().sync_at_minutes == 0);
    CHECK(all.value->front().sync_interval_minutes == 0);
    d.time_dialect_override.reset();
    d.sync_at_minutes.reset();
    d.sync_interval_minutes.reset();
    REQUIRE(store->upsert_device(d));
    loaded = store->load_device("A1");
    REQUIRE(loaded);
    CHECK_FALSE((*loaded.value)->time_dialect_override);
    CHECK_FALSE((*loaded.value)->sync_at_minutes);
    CHECK_FALSE((*loaded.value)->sync_interval_minutes);

    SECTION("values outside their range are error values")
    {
        auto bad_dialect = d;
        bad_dialect.time_dialect_override = "ATT";
        auto bad_at = d;
        bad_at.sync_at_minutes = 1440;
        auto negative_at = d;
        negative_at.sync_at_minutes = -1;
        auto bad_interval = d;
        bad_interval.sync_interval_minutes = -5;
        for (const auto& bad : {bad_dialect, bad_at, negative_at, bad_interval}) {
            auto r = store->upsert_device(bad);
            REQUIRE_FALSE(r);
            CHECK_THAT(r.error.message, Catch::Contains("CHECK constraint failed"));
        }
        auto unchanged = store->load_device("A1");
        REQUIRE(unchanged);
        CHECK_FALSE((*unchanged.value)->sync_at_minutes);
    }
}

TEST_CASE("A version 1 database is migrated to the current version and keeps its rows",
          "[storage][sqlite]")
{
    temp_dir dir;
    CHECK_FALSE(sqlite_database::migration_sql(0).empty());
    CHECK_FALSE(sqlite_database::migration_sql(1).empty());
    CHECK_FALSE(sqlite_database::migration_sql(2).empty());
    CHECK_FALSE(sqlite_database::migration_sql(3).empty());
    CHECK_FALSE(sqlite_database::migration_sql(4).empty());
    CHECK_FALSE(sqlite_database::migration_sql(5).empty());
    CHECK_FALSE(sqlite_database::migration_sql(6).empty());
    CHECK(sqlite_database::migration_sql(7).empty());
    CHECK(sqlite_database::migration_sql(-1).empty());
    {
        raw_connection raw{dir.db()};
        raw.exec(std::string{sqlite_database::migration_sql(0)}.c_str());
        raw.exec("INSERT INTO device (serial_number, first_seen_ms, last_seen_ms, zone_override, "
                 "attlog_stamp) VALUES ('OLD1', 1000, 2000, 'Asia/Kolkata', '42')");
        raw.exec("INSERT INTO punch (serial_number, pin, local_time, utc_s, status, verify, "
                 "work_code, raw_line, received_at_ms, quarantined) VALUES ('OLD1', '7', "
                 "'2025-03-01 08:00:00', NULL, 0, 1, '', 'line', 3000, 0)");
        raw.exec("PRAGMA user_version = 1");
    }
    auto store = open_store(dir.db());
    auto device = store->load_device("OLD1");
    REQUIRE(device);
    REQUIRE(device.value->has_value());
    const auto& d = **device.value;
    CHECK(d.first_seen == instant{1000ms});
    CHECK(d.zone_override == "Asia/Kolkata");
    CHECK(d.attlog_stamp == "42");
    CHECK_FALSE(d.time_dialect_override);
    CHECK_FALSE(d.sync_at_minutes);
    CHECK_FALSE(d.sync_interval_minutes);
    CHECK(keys_of(query(*store, {.pin = "7"})) ==
          std::vector<std::string>{"OLD1 7 2025-03-01 08:00:00"});

    raw_connection raw{dir.db()};
    CHECK(raw.text("PRAGMA user_version") == "7");
    CHECK(raw.text("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = "
                   "'punch_by_pin'") == "1");
    CHECK(raw.text("SELECT count(*) FROM sqlite_schema WHERE name = 'webhook_delivery'") == "1");
    CHECK(raw.text("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN "
                   "('webhook_delivery_by_age', 'outbox_event_by_age')") == "2");
    CHECK(raw.text("SELECT count(*) FROM sqlite_schema WHERE name IN ('area', 'person', "
                   "'person_area', 'person_template')") == "4");
    CHECK(raw.text("SELECT count(*) FROM pragma_table_info('device') WHERE name = 'area'") == "1");
    // The new columns are writable on the migrated table.
    auto updated = d;
    updated.sync_interval_minutes = 0;
    auto stored = store->upsert_device(updated);
    REQUIRE(stored);
    CHECK(stored.value->sync_interval_minutes == 0);
}

TEST_CASE("A database from before the payroll exports is migrated and records export runs",
          "[storage][sqlite]")
{
    temp_dir dir;
    {
        raw_connection raw{dir.db()};
        for (int v = 0; v < 4; ++v) {
            raw.exec(std::string{sqlite_database::migration_sql(v)}.c_str());
        }
        raw.exec("PRAGMA user_version = 4");
    }
    auto store = open_store(dir.db());
    export_run run;
    run.name = "payroll";
    run.day = std::chrono::local_days{std::chrono::year{2026} / 11 / 30};
    run.file = "/srv/payroll/punches-2026-11-30.csv";
    run.scheduled = true;
    REQUIRE(store->record_export_run(run));
    raw_connection raw{dir.db()};
    CHECK(raw.text("SELECT last_completed_day FROM export_state WHERE name = 'payroll'") ==
          "2026-11-30");
    // The schema keeps the days readable and ordered as text.
    CHECK(sqlite3_exec(raw.db, "UPDATE export_state SET last_completed_day = '30.11.2026'", nullptr,
                       nullptr, nullptr) == SQLITE_CONSTRAINT);
}

TEST_CASE("A serial number list longer than SQLite's parameter limit is an error value",
          "[storage][sqlite]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    std::vector<punch_input> batch{punch("1", "2025-03-01 08:00:00")};
    REQUIRE(store->store_punches("SN0", batch, at(1), false));
    int max_parameters = 0;
    {
        raw_connection raw{dir.db()};
        max_parameters = sqlite3_limit(raw.db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);
    }
    REQUIRE(max_parameters > 10);
    auto serial_numbers = [](int count) {
        std::vector<std::string> out;
        for (int i = 0; i < count; ++i) {
            out.push_back(fmt::format("SN{}", i));
        }
        return out;
    };
    // after_id and limit are parameters too.
    auto fits = store->query_punches({.serial_numbers = serial_numbers(max_parameters - 2)});
    REQUIRE(fits);
    CHECK(fits.value->size() == 1);
    auto too_many = store->query_punches({.serial_numbers = serial_numbers(max_parameters)});
    REQUIRE_FALSE(too_many);
    CHECK_THAT(too_many.error.message,
               Catch::Contains("query_punches") && Catch::Contains("too many SQL variables"));
}

TEST_CASE("Reads succeed while another connection holds an uncommitted write", "[storage][sqlite]")
{
    temp_dir dir;
    auto store = open_store(dir.db(), {.busy_timeout = 20ms});
    std::vector<punch_input> batch{punch("1", "2025-03-01 08:00:00")};
    REQUIRE(store->store_punches("A1", batch, at(1), false));
    device_record d;
    d.serial_number = "A1";
    REQUIRE(store->upsert_device(d));
    auto command = store->enqueue_command("A1", "INFO", "admin", at(1));
    REQUIRE(command);

    raw_connection other{dir.db()};
    other.exec("BEGIN IMMEDIATE");
    other.exec("INSERT INTO punch (serial_number, pin, local_time, status, verify, work_code, "
               "raw_line, received_at_ms, quarantined) VALUES ('A1', '2', '2025-03-01 09:00:00', "
               "0, 1, '', 'x', 2000, 0)");

    CHECK(keys_of(query(*store, {})) == std::vector<std::string>{"A1 1 2025-03-01 08:00:00"});
    auto listed = store->list_punches({});
    REQUIRE(listed);
    CHECK(listed.value->size() == 1);
    auto last = store->last_punch_id();
    REQUIRE(last);
    CHECK(*last.value == listed.value->front().id);
    auto device = store->load_device("A1");
    REQUIRE(device);
    CHECK(device.value->has_value());
    auto found = store->find_command("A1", *command.value);
    REQUIRE(found);
    CHECK(found.value->has_value());
    CHECK(store->check());

    // A write waits for the lock as before, and fails once the busy timeout passes.
    std::vector<punch_input> more{punch("3", "2025-03-01 10:00:00")};
    auto locked = store->store_punches("A1", more, at(2), false);
    REQUIRE_FALSE(locked);
    CHECK_THAT(locked.error.message, Catch::Contains("write batch") && Catch::Contains("locked"));

    other.exec("COMMIT");
    CHECK(query(*store, {}).size() == 2);
    REQUIRE(store->store_punches("A1", more, at(3), false));
    CHECK(query(*store, {}).size() == 3);
}

TEST_CASE("check answers while the storage is open and fails after close", "[storage][sqlite]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    auto open = store->check();
    INFO(open.error.message);
    CHECK(open);
    REQUIRE(store->close());
    auto closed = store->check();
    REQUIRE_FALSE(closed);
    CHECK_THAT(closed.error.message, Catch::Contains("check") && Catch::Contains("closed"));
    auto read = store->query_punches({});
    REQUIRE_FALSE(read);
    CHECK_THAT(read.error.message, Catch::Contains("closed"));

    // A read-only storage answers too, and closing leaves no WAL behind from the writer.
    CHECK_FALSE(fs::exists(fs::path{dir.db()} += "-wal"));
    auto read_only = open_store(dir.db(), {.read_only = true});
    CHECK(read_only->check());
    REQUIRE(read_only->close());
    CHECK_FALSE(read_only->check());
}

TEST_CASE("A write batch that cannot take the write lock runs nothing and says why",
          "[storage][sqlite][batch]")
{
    temp_dir dir;
    sqlite_open_options options;
    options.busy_timeout = 50ms;
    auto store = open_store(dir.db(), options);
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(dir.db().c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    bool ran = false;
    auto committed = store->write_batch([&](write_tx&) { ran = true; });
    CHECK_FALSE(committed);
    CHECK_FALSE(ran);
    CHECK(committed.error.message.find("locked") != std::string::npos);
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    CHECK(store->write_batch([&](write_tx&) { ran = true; }));
    CHECK(ran);
}

TEST_CASE("Kept prepared statements serve repeated calls, and close still works",
          "[storage][sqlite][batch]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    for (int i = 0; i < 50; ++i) {
        auto stored = store->store_punches(
            "S1", std::vector{punch(std::to_string(i), "2025-03-01 08:00:00")}, at(i), false);
        REQUIRE(stored);
        CHECK(*stored.value == store_counts{1, 0});
    }
    CHECK(store->list_punches({}).value->size() == 50);
    CHECK(store->list_punches({}).value->size() == 50);
    REQUIRE(store->enqueue_command("S1", "INFO", "admin", at(1)));
    for (int i = 0; i < 3; ++i) {
        auto claimed = store->claim_commands("S1", at(2), {}, choose_all);
        REQUIRE(claimed);
        CHECK(claimed.value->size() == (i == 0 ? 1u : 0u));
    }
    // SQLite refuses to close a connection with statements left: close finalizes the kept ones.
    auto closed = store->close();
    INFO(closed.error.message);
    CHECK(closed);
}

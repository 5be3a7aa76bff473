#include "protocol/civil_time.hpp"
#include "protocol/command.hpp"
#include "protocol/operlog.hpp"
#include "server/storage/sqlite/sqlite_storage.hpp"
#include "tests/temp_dir.hpp"

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
using namespace std::chrono_literals;
namespace protocol = adms::protocol;
namespace fs = std::filesystem;

namespace {

// The shared temp dir, with the file this suite works on.
struct temp_dir : adms::test::temp_dir {
    fs::path db() const { return path / "admsd.sqlite3"; }
};

std::unique_ptr<sqlite_storage> open_store(const fs::path& file, sqlite_open_options options = {})
{
    auto opened = sqlite_storage::open(file, options);
    INFO(opened.error.message);
    REQUIRE(opened);
    return std::move(*opened.value);
}

instant at(std::int64_t seconds)
{
    return instant{std::chrono::seconds{seconds}};
}

punch_input punch(std::string pin, std::string_view time, int status = 0, int verify = 1)
{
    punch_input p;
    p.record.pin = std::move(pin);
    p.record.time = protocol::parse_civil_time(time).value();
    p.record.status = status;
    p.record.verify = verify;
    p.raw_line = fmt::format("{}\t{}\t{}\t{}\t", p.record.pin, time, status, verify);
    return p;
}

// Chooses every offered command, in queue order.
command_choice choose_all(const std::vector<queued_command>& offered)
{
    command_choice choice;
    for (const auto& c : offered) {
        choice.send.push_back(c.id);
    }
    return choice;
}

std::vector<std::string> ids_of(const std::vector<queued_command>& commands)
{
    std::vector<std::string> ids;
    for (const auto& c : commands) {
        ids.push_back(c.id);
    }
    return ids;
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

const resend_policy policy{60s, 3};

// The UTC instant of a device time in a zone one hour ahead of UTC.
std::chrono::sys_seconds utc_of(std::string_view local)
{
    return std::chrono::sys_seconds{protocol::parse_civil_time(local).value().time_since_epoch()} -
           1h;
}

// A punch whose UTC instant is known.
punch_input placed_punch(std::string pin, std::string_view time)
{
    auto p = punch(std::move(pin), time);
    p.utc = utc_of(time);
    return p;
}

// "serial pin local_time" of each punch, in the order given.
std::vector<std::string> keys_of(const std::vector<stored_punch>& punches)
{
    std::vector<std::string> keys;
    for (const auto& p : punches) {
        keys.push_back(fmt::format("{} {} {}", p.serial_number, p.pin, p.local_time));
    }
    return keys;
}

std::vector<std::int64_t> ids_of(const std::vector<stored_punch>& punches)
{
    std::vector<std::int64_t> ids;
    for (const auto& p : punches) {
        ids.push_back(p.id);
    }
    return ids;
}

// The punches query_punches returns for `filter`; fails the test on an error value.
std::vector<stored_punch> query(storage& store, const punch_filter& filter)
{
    auto got = store.query_punches(filter);
    INFO(got.error.message);
    REQUIRE(got);
    return *got.value;
}

} // namespace

TEST_CASE("A new database file gets the current schema version and the WAL journal", "[storage]")
{
    temp_dir dir;
    {
        auto store = open_store(dir.db());
        REQUIRE(store->close());
    }
    REQUIRE(fs::exists(dir.db()));
    raw_connection raw{dir.db()};
    CHECK(raw.text("PRAGMA user_version") == std::to_string(sqlite_storage::schema_version));
    CHECK(raw.text("PRAGMA journal_mode") == "wal");
    CHECK(raw.text("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'punch'") ==
          "1");
}

TEST_CASE("Re-opening a database keeps devices, punches and commands", "[storage]")
{
    temp_dir dir;
    std::string command_id;
    {
        auto store = open_store(dir.db());
        device_record d;
        d.serial_number = "A1";
        d.first_seen = at(100);
        d.last_seen = at(200);
        d.attlog_stamp = "9999";
        REQUIRE(store->upsert_device(d));
        std::vector<punch_input> punches{punch("1", "2025-03-01 08:00:00")};
        REQUIRE(store->store_punches("A1", punches, at(200), false));
        auto id = store->enqueue_command("A1", "INFO", "admin", at(200));
        REQUIRE(id);
        command_id = *id.value;
        REQUIRE(store->close());
    }
    auto store = open_store(dir.db());
    auto device = store->load_device("A1");
    REQUIRE(device);
    REQUIRE(device.value->has_value());
    CHECK((*device.value)->attlog_stamp == "9999");
    CHECK((*device.value)->first_seen == at(100));
    auto punches = store->list_punches({});
    REQUIRE(punches);
    REQUIRE(punches.value->size() == 1);
    CHECK(punches.value->front().pin == "1");
    auto commands = store->list_commands("A1");
    REQUIRE(commands);
    REQUIRE(commands.value->size() == 1);
    CHECK(commands.value->front().id == command_id);
    CHECK(commands.value->front().state == command_state::queued);

    SECTION("and a re-sent batch after re-opening is still a duplicate")
    {
        std::vector<punch_input> again{punch("1", "2025-03-01 08:00:00")};
        auto counts = store->store_punches("A1", again, at(300), false);
        REQUIRE(counts);
        CHECK(*counts.value == store_counts{0, 1});
    }
    SECTION("and command ids are never reused")
    {
        auto id = store->enqueue_command("A1", "CHECK", "admin", at(300));
        REQUIRE(id);
        CHECK(*id.value != command_id);
        CHECK(std::stoll(*id.value) > std::stoll(command_id));
    }
}

TEST_CASE("A database written by a newer build is refused as a value", "[storage]")
{
    temp_dir dir;
    REQUIRE(open_store(dir.db())->close());
    {
        raw_connection raw{dir.db()};
        raw.exec("PRAGMA user_version = 99");
    }
    auto opened = sqlite_storage::open(dir.db());
    REQUIRE_FALSE(opened);
    CHECK_THAT(opened.error.message, Catch::Contains("newer"));
}

TEST_CASE("A file that is not a database is refused as a value", "[storage]")
{
    temp_dir dir;
    {
        std::ofstream out{dir.db(), std::ios::binary};
        out << std::string(4096, 'x');
    }
    auto opened = sqlite_storage::open(dir.db());
    REQUIRE_FALSE(opened);
    CHECK_THAT(opened.error.message, Catch::Contains("not a database"));
}

TEST_CASE("Opening a file in a missing directory is refused as a value", "[storage]")
{
    temp_dir dir;
    auto opened = sqlite_storage::open(dir.path / "missing" / "admsd.sqlite3");
    REQUIRE_FALSE(opened);
    CHECK_THAT(opened.error.message, Catch::Contains("missing"));
}

TEST_CASE("A batch stored twice is all duplicates the second time", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    std::vector<punch_input> batch{punch("1", "2025-03-01 08:00:00"),
                                   punch("2", "2025-03-01 08:00:05"),
                                   punch("007", "2025-03-01 08:01:00")};
    auto first = store->store_punches("A1", batch, at(1), false);
    REQUIRE(first);
    CHECK(*first.value == store_counts{3, 0});
    auto second = store->store_punches("A1", batch, at(2), false);
    REQUIRE(second);
    CHECK(*second.value == store_counts{0, 3});

    SECTION("a duplicate inside one batch counts as a duplicate")
    {
        std::vector<punch_input> repeated{punch("9", "2025-03-02 08:00:00"),
                                          punch("9", "2025-03-02 08:00:00")};
        auto counts = store->store_punches("A1", repeated, at(3), false);
        REQUIRE(counts);
        CHECK(*counts.value == store_counts{1, 1});
    }
    SECTION("a mixed batch counts only the new punches as stored")
    {
        std::vector<punch_input> mixed{batch[0], punch("3", "2025-03-01 09:00:00")};
        auto counts = store->store_punches("A1", mixed, at(3), false);
        REQUIRE(counts);
        CHECK(*counts.value == store_counts{1, 1});
    }
    SECTION("the same punch from another device is a different punch")
    {
        auto counts = store->store_punches("B2", batch, at(3), false);
        REQUIRE(counts);
        CHECK(*counts.value == store_counts{3, 0});
    }
    SECTION("the stored rows keep the first arrival")
    {
        auto all = store->list_punches({});
        REQUIRE(all);
        REQUIRE(all.value->size() == 3);
        for (const auto& p : *all.value) {
            CHECK(p.received_at == at(1));
        }
    }
}

TEST_CASE("The same PIN and time with another status or verify is a different punch", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    std::vector<punch_input> batch{
        punch("1", "2025-03-01 08:00:00", 0, 1), punch("1", "2025-03-01 08:00:00", 1, 1),
        punch("1", "2025-03-01 08:00:00", 0, 15), punch("01", "2025-03-01 08:00:00", 0, 1),
        punch("1", "2025-03-01 08:00:01", 0, 1)};
    auto counts = store->store_punches("A1", batch, at(1), false);
    REQUIRE(counts);
    CHECK(*counts.value == store_counts{5, 0});
}

TEST_CASE("A punch keeps its local time, UTC instant, fields and raw line as given", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    auto p = punch("00042", "2025-10-26 02:30:00", 255, 15);
    p.record.work_code = "W7";
    p.record.sequence = std::numeric_limits<std::uint64_t>::max();
    p.utc = std::chrono::sys_seconds{1761442200s};
    p.raw_line = "00042\t2025-10-26 02:30:00\t255\t15\tW7\t0\t0\t0\t0\t0\t18446744073709551615";
    auto no_utc = punch("5", "2025-03-30 02:30:00");
    std::vector<punch_input> batch{p, no_utc};
    REQUIRE(store->store_punches("A1", batch, instant{1'700'000'000'123ms}, true));

    auto all = store->list_punches({});
    REQUIRE(all);
    REQUIRE(all.value->size() == 2);
    const auto& got = all.value->at(0);
    CHECK(got.id > 0);
    CHECK(got.serial_number == "A1");
    CHECK(got.pin == "00042");
    CHECK(got.local_time == "2025-10-26 02:30:00");
    CHECK(got.utc == std::chrono::sys_seconds{1761442200s});
    CHECK(got.status == 255);
    CHECK(got.verify == 15);
    CHECK(got.work_code == "W7");
    CHECK(got.sequence == std::numeric_limits<std::uint64_t>::max());
    CHECK(got.raw_line == p.raw_line);
    CHECK(got.received_at == instant{1'700'000'000'123ms});
    CHECK(got.quarantined);
    const auto& second = all.value->at(1);
    CHECK_FALSE(second.utc);
    CHECK_FALSE(second.sequence);
    CHECK(second.work_code.empty());
    CHECK(second.id > got.id);
}

TEST_CASE("Punches are listed after an id cursor, per device or all, up to a limit", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    std::vector<punch_input> a{punch("1", "2025-03-01 08:00:00"), punch("2", "2025-03-01 08:00:00"),
                               punch("3", "2025-03-01 08:00:00")};
    std::vector<punch_input> b{punch("4", "2025-03-01 08:00:00")};
    REQUIRE(store->store_punches("A1", a, at(1), false));
    REQUIRE(store->store_punches("B2", b, at(2), false));

    auto page = store->list_punches({.limit = 2});
    REQUIRE(page);
    REQUIRE(page.value->size() == 2);
    CHECK(page.value->at(0).pin == "1");
    CHECK(page.value->at(1).pin == "2");
    auto rest = store->list_punches({.after_id = page.value->back().id});
    REQUIRE(rest);
    REQUIRE(rest.value->size() == 2);
    CHECK(rest.value->at(0).pin == "3");
    CHECK(rest.value->at(1).pin == "4");
    auto only_b = store->list_punches({.serial_number = "B2"});
    REQUIRE(only_b);
    REQUIRE(only_b.value->size() == 1);
    CHECK(only_b.value->front().serial_number == "B2");
    auto none = store->list_punches({.after_id = rest.value->back().id});
    REQUIRE(none);
    CHECK(none.value->empty());
}

TEST_CASE("Quarantined punches are kept and released for one device", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    std::vector<punch_input> batch{punch("1", "2025-03-01 08:00:00"),
                                   punch("2", "2025-03-01 08:00:00")};
    REQUIRE(store->store_punches("NEW", batch, at(1), true));
    REQUIRE(store->store_punches("OTHER", batch, at(1), true));
    auto released = store->release_quarantine("NEW");
    REQUIRE(released);
    CHECK(*released.value == 2);
    auto all = store->list_punches({});
    REQUIRE(all);
    for (const auto& p : *all.value) {
        CHECK(p.quarantined == (p.serial_number == "OTHER"));
    }
    auto again = store->release_quarantine("NEW");
    REQUIRE(again);
    CHECK(*again.value == 0);
}

TEST_CASE("Released punches move past a cursor taken before the release, in their order",
          "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    std::vector<punch_input> held{punch("1", "2025-03-01 08:00:00"),
                                  punch("2", "2025-03-01 08:05:00")};
    REQUIRE(store->store_punches("NEW", held, at(1), true));
    std::vector<punch_input> open{punch("3", "2025-03-01 08:10:00")};
    REQUIRE(store->store_punches("OK", open, at(2), false));
    // An HR reader has read everything visible so far.
    auto visible = store->query_punches({});
    REQUIRE(visible);
    REQUIRE(visible.value->size() == 1);
    auto cursor = visible.value->back().id;

    REQUIRE(store->release_quarantine("NEW"));
    punch_filter next;
    next.after_id = cursor;
    auto page = store->query_punches(next);
    REQUIRE(page);
    REQUIRE(page.value->size() == 2);
    CHECK(page.value->at(0).pin == "1");
    CHECK(page.value->at(1).pin == "2");
    // Later punches still get larger ids.
    std::vector<punch_input> later{punch("4", "2025-03-01 08:15:00")};
    REQUIRE(store->store_punches("OK", later, at(3), false));
    next.after_id = page.value->back().id;
    auto last = store->query_punches(next);
    REQUIRE(last);
    REQUIRE(last.value->size() == 1);
    CHECK(last.value->at(0).pin == "4");
}

TEST_CASE("merge_stamp never moves a stamp backwards", "[storage]")
{
    using s = std::optional<std::string>;
    CHECK(merge_stamp(s{"100"}, s{"50"}) == "100");
    CHECK(merge_stamp(s{"100"}, s{"200"}) == "200");
    CHECK(merge_stamp(s{"100"}, s{"0100"}) == "100");
    CHECK(merge_stamp(s{"99"}, s{"100"}) == "100");
    CHECK(merge_stamp(s{"100"}, s{"0"}) == "100");
    CHECK(merge_stamp(s{"0"}, s{"100"}) == "100");
    CHECK(merge_stamp(s{"18446744073709551616"}, s{"18446744073709551615"}) ==
          "18446744073709551616");
    CHECK(merge_stamp(s{"999999999999999999999"}, s{"1000000000000000000000"}) ==
          "1000000000000000000000");
    CHECK(merge_stamp(s{"100"}, std::nullopt) == "100");
    CHECK(merge_stamp(s{"100"}, s{""}) == "100");
    CHECK(merge_stamp(std::nullopt, s{"5"}) == "5");
    CHECK(merge_stamp(std::nullopt, std::nullopt) == std::nullopt);
    CHECK(merge_stamp(s{"abc"}, s{"abd"}) == "abd");
    CHECK(merge_stamp(s{"100"}, s{"x1"}) == "x1");
}

TEST_CASE("A device's stored stamps never move backwards", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
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

TEST_CASE("Every device field round-trips and the earliest first_seen is kept", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
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

TEST_CASE("An alias another device uses is an error value and changes nothing", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
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

TEST_CASE("Device options are set per key, last value wins, and load with the device", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
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

TEST_CASE("A claimed command is sent once, re-sent after the timeout and expired at the cap",
          "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    auto id = store->enqueue_command("A1", "SET OPTIONS DateTime=583080894", "time-sync", at(0));
    REQUIRE(id);
    CHECK(protocol::is_valid_command_id(*id.value));

    auto first = store->claim_commands("A1", at(10), policy, choose_all);
    REQUIRE(first);
    REQUIRE(first.value->size() == 1);
    CHECK(first.value->front().id == *id.value);
    CHECK(first.value->front().state == command_state::sent);
    CHECK(first.value->front().attempts == 1);
    CHECK(first.value->front().sent_at == at(10));
    CHECK(first.value->front().kind == "time-sync");

    auto inside = store->claim_commands("A1", at(69), policy, choose_all);
    REQUIRE(inside);
    CHECK(inside.value->empty());

    auto second = store->claim_commands("A1", at(70), policy, choose_all);
    REQUIRE(second);
    REQUIRE(second.value->size() == 1);
    CHECK(second.value->front().attempts == 2);

    auto third = store->claim_commands("A1", at(130), policy, choose_all);
    REQUIRE(third);
    REQUIRE(third.value->size() == 1);
    CHECK(third.value->front().attempts == 3);

    // At the cap it stays "sent" while a result may still arrive...
    auto waiting = store->claim_commands("A1", at(189), policy, choose_all);
    REQUIRE(waiting);
    CHECK(waiting.value->empty());
    auto listed = store->list_commands("A1");
    REQUIRE(listed);
    CHECK(listed.value->front().state == command_state::sent);

    // ...and expires once the timeout passes without one.
    auto after = store->claim_commands("A1", at(190), policy, choose_all);
    REQUIRE(after);
    CHECK(after.value->empty());
    listed = store->list_commands("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 1);
    CHECK(listed.value->front().state == command_state::expired);
    CHECK(listed.value->front().attempts == 3);
}

TEST_CASE("Only the commands the chooser picks go out, in the order it gives", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    std::vector<std::string> ids;
    for (auto text : {"REBOOT", "INFO", "BAD\nCOMMAND", "CHECK"}) {
        auto id = store->enqueue_command("A1", text, "admin", at(0));
        REQUIRE(id);
        ids.push_back(*id.value);
    }
    REQUIRE(store->enqueue_command("B2", "LOG", "admin", at(0)));

    std::vector<std::string> offered_texts;
    auto claimed = store->claim_commands("A1", at(1), policy, [&](const auto& offered) {
        for (const auto& c : offered) {
            offered_texts.push_back(c.text);
        }
        // CHECK then REBOOT (last), INFO left for a later poll; an id never offered and a
        // repeated id are ignored.
        return command_choice{{ids[3], ids[0], "12345", ids[3]}, {ids[2]}};
    });
    REQUIRE(claimed);
    CHECK(offered_texts == std::vector<std::string>{"REBOOT", "INFO", "BAD\nCOMMAND", "CHECK"});
    CHECK(ids_of(*claimed.value) == std::vector<std::string>{ids[3], ids[0]});

    auto listed = store->list_commands("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 4);
    CHECK(listed.value->at(0).state == command_state::sent);
    CHECK(listed.value->at(1).state == command_state::queued);
    CHECK(listed.value->at(2).state == command_state::unsendable);
    CHECK(listed.value->at(3).state == command_state::sent);
    CHECK(listed.value->at(3).attempts == 1);

    auto next = store->claim_commands("A1", at(2), policy, choose_all);
    REQUIRE(next);
    CHECK(ids_of(*next.value) == std::vector<std::string>{ids[1]});
}

TEST_CASE("A chooser built on build_command_batch claims exactly the reply's commands", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    for (auto text : {"REBOOT", "INFO", "BAD\nCOMMAND", "CHECK"}) {
        REQUIRE(store->enqueue_command("A1", text, "admin", at(0)));
    }
    protocol::command_batch batch;
    auto claimed = store->claim_commands("A1", at(1), policy, [&](const auto& offered) {
        std::vector<protocol::device_command> queue;
        for (const auto& c : offered) {
            queue.push_back({c.id, c.text});
        }
        batch = protocol::build_command_batch(queue);
        return command_choice{batch.sent_ids, batch.unsendable};
    });
    REQUIRE(claimed);
    CHECK(batch.body == "C:2:INFO\nC:4:CHECK\nC:1:REBOOT");
    CHECK(ids_of(*claimed.value) == batch.sent_ids);
    auto next = store->claim_commands("A1", at(2), policy, choose_all);
    REQUIRE(next);
    CHECK(next.value->empty()); // all sent, BAD parked as unsendable
}

TEST_CASE("A chooser that throws leaves every command as it was", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    REQUIRE(store->enqueue_command("A1", "INFO", "admin", at(0)));
    CHECK_THROWS_AS(store->claim_commands("A1", at(1), policy,
                                          [](const auto&) -> command_choice {
                                              throw std::runtime_error{"chooser bug"};
                                          }),
                    std::runtime_error);
    auto listed = store->list_commands("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 1);
    CHECK(listed.value->front().state == command_state::queued);
    CHECK(listed.value->front().attempts == 0);
    // The storage is still usable.
    auto claimed = store->claim_commands("A1", at(2), policy, choose_all);
    REQUIRE(claimed);
    CHECK(claimed.value->size() == 1);
}

TEST_CASE("Concurrent polls never claim the same command twice", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    constexpr int commands = 40;
    for (int i = 0; i < commands; ++i) {
        REQUIRE(store->enqueue_command("A1", fmt::format("INFO {}", i), "admin", at(0)));
    }
    std::vector<std::vector<std::string>> got(8);
    std::atomic<int> errors{0};
    {
        std::vector<std::jthread> threads;
        for (std::size_t t = 0; t < got.size(); ++t) {
            threads.emplace_back([&, t] {
                for (int poll = 0; poll < 10; ++poll) {
                    auto claimed = store->claim_commands("A1", at(1), policy, [](const auto& o) {
                        command_choice c;
                        for (std::size_t i = 0; i < std::min<std::size_t>(o.size(), 3); ++i) {
                            c.send.push_back(o[i].id);
                        }
                        return c;
                    });
                    if (!claimed) {
                        ++errors;
                        continue;
                    }
                    for (const auto& c : *claimed.value) {
                        got[t].push_back(c.id);
                    }
                }
            });
        }
    }
    CHECK(errors == 0);
    std::multiset<std::string> all;
    for (const auto& ids : got) {
        all.insert(ids.begin(), ids.end());
    }
    CHECK(all.size() == commands);
    CHECK(std::set<std::string>(all.begin(), all.end()).size() == commands);
}

TEST_CASE("Command results are matched by serial number and id", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    auto ok_id = *store->enqueue_command("A1", "INFO", "admin", at(0)).value;
    auto bad_id = *store->enqueue_command("A1", "USER ADD PIN=1", "admin", at(0)).value;
    auto other_id = *store->enqueue_command("B2", "CHECK", "admin", at(0)).value;
    REQUIRE(store->claim_commands("A1", at(1), policy, choose_all));

    std::vector<protocol::command_result> results{
        {ok_id, 0, "INFO", {{"~DeviceName", "MB460"}, {"UserCount", "12"}}, ""},
        {bad_id, -1002, "USER", {}, ""},
        {"999999", 0, "DATA", {}, ""},    // unknown id
        {other_id, 0, "CHECK", {}, ""},   // another device's command
        {"0" + ok_id, 0, "INFO", {}, ""}, // not the id that was sent
        {ok_id, 0, "INFO", {}, ""},       // duplicate
    };
    auto matched = store->record_command_results("A1", results, at(2));
    REQUIRE(matched);
    CHECK(*matched.value ==
          std::vector<result_match>{result_match::matched, result_match::matched,
                                    result_match::unmatched, result_match::unmatched,
                                    result_match::unmatched, result_match::duplicate});

    auto listed = store->list_commands("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 2);
    const auto& ok = listed.value->at(0);
    CHECK(ok.state == command_state::done);
    CHECK(ok.return_code == 0);
    CHECK(ok.result_command == "INFO");
    CHECK(ok.result_info == "~DeviceName=MB460\nUserCount=12");
    CHECK(ok.result_at == at(2));
    const auto& bad = listed.value->at(1);
    CHECK(bad.state == command_state::failed);
    CHECK(bad.return_code == -1002);

    auto other = store->list_commands("B2");
    REQUIRE(other);
    CHECK(other.value->front().state == command_state::queued);

    // Every result is kept in the log, matched or not.
    auto log = store->list_command_results({.serial_number = "A1"});
    REQUIRE(log);
    REQUIRE(log.value->size() == results.size());
    CHECK(log.value->at(0).result == results[0]);
    CHECK(log.value->at(0).match == result_match::matched);
    CHECK(log.value->at(2).result.id == "999999");
    CHECK(log.value->at(2).match == result_match::unmatched);
    CHECK(log.value->at(5).match == result_match::duplicate);

    SECTION("a Shell result keeps its content")
    {
        auto shell_id = *store->enqueue_command("A1", "SHELL ls", "admin", at(3)).value;
        std::vector<protocol::command_result> shell{{shell_id, 0, "Shell", {}, "a\n\nb"}};
        auto r = store->record_command_results("A1", shell, at(4));
        REQUIRE(r);
        CHECK(r.value->front() == result_match::matched);
        auto cmds = store->list_commands("A1");
        REQUIRE(cmds);
        CHECK(cmds.value->back().result_content == "a\n\nb");
        CHECK(cmds.value->back().state == command_state::done);
    }
}

TEST_CASE("list_commands returns every pending command and the latest finished ones", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(
            *store->enqueue_command("A1", fmt::format("INFO {}", i), "admin", at(i)).value);
    }
    REQUIRE(store->claim_commands("A1", at(10), policy, [&](const auto&) {
        return command_choice{{ids[0], ids[1], ids[2]}, {}};
    }));
    std::vector<protocol::command_result> results{
        {ids[0], 0, "INFO", {}, ""}, {ids[1], 0, "INFO", {}, ""}, {ids[2], -1, "INFO", {}, ""}};
    REQUIRE(store->record_command_results("A1", results, at(11)));
    auto listed = store->list_commands("A1", 2);
    REQUIRE(listed);
    CHECK(ids_of(*listed.value) == std::vector<std::string>{ids[1], ids[2], ids[3], ids[4]});
    auto pending_only = store->list_commands("A1", 0);
    REQUIRE(pending_only);
    CHECK(ids_of(*pending_only.value) == std::vector<std::string>{ids[3], ids[4]});
}

TEST_CASE("Rejected lines round-trip and a re-sent one is a duplicate", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
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
          "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
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

TEST_CASE("Unknown table bodies and photos round-trip byte for byte", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
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

TEST_CASE("A read-only database returns error values for every write, never exceptions",
          "[storage]")
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

TEST_CASE("A database locked by another connection makes a store fail as a value", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db(), {.busy_timeout = 20ms});
    raw_connection other{dir.db()};
    other.exec("BEGIN EXCLUSIVE");
    std::vector<punch_input> punches{punch("1", "2025-03-01 08:00:00")};
    auto locked = store->store_punches("A1", punches, at(1), false);
    REQUIRE_FALSE(locked);
    CHECK_THAT(locked.error.message, Catch::Contains("store_punches") && Catch::Contains("locked"));
    other.exec("ROLLBACK");
    // Nothing half-written, and the same batch goes in once the lock is gone.
    auto retried = store->store_punches("A1", punches, at(2), false);
    REQUIRE(retried);
    CHECK(*retried.value == store_counts{1, 0});
}

TEST_CASE("After close every call returns an error value", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    REQUIRE(store->close());
    REQUIRE(store->close()); // twice is fine
    auto listed = store->list_punches({});
    REQUIRE_FALSE(listed);
    CHECK_THAT(listed.error.message, Catch::Contains("closed"));
    auto id = store->enqueue_command("A1", "INFO", "admin", at(0));
    CHECK_FALSE(id);
}

TEST_CASE("A new database is at schema version 3 and the admin API's device settings round-trip",
          "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    {
        raw_connection raw{dir.db()};
        CHECK(raw.text("PRAGMA user_version") == "3");
    }
    CHECK(sqlite_storage::schema_version == 3);

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

TEST_CASE("A version 1 database is migrated to version 2 and keeps its rows", "[storage]")
{
    temp_dir dir;
    CHECK_FALSE(sqlite_storage::migration_sql(0).empty());
    CHECK_FALSE(sqlite_storage::migration_sql(1).empty());
    CHECK_FALSE(sqlite_storage::migration_sql(2).empty());
    CHECK(sqlite_storage::migration_sql(3).empty());
    CHECK(sqlite_storage::migration_sql(-1).empty());
    {
        raw_connection raw{dir.db()};
        raw.exec(std::string{sqlite_storage::migration_sql(0)}.c_str());
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
    CHECK(raw.text("PRAGMA user_version") == "3");
    CHECK(raw.text("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = "
                   "'punch_by_pin'") == "1");
    // The new columns are writable on the migrated table.
    auto updated = d;
    updated.sync_interval_minutes = 0;
    auto stored = store->upsert_device(updated);
    REQUIRE(stored);
    CHECK(stored.value->sync_interval_minutes == 0);
}

TEST_CASE("query_punches applies each filter alone and all of them together", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    auto no_utc = punch("1", "2025-03-01 08:30:00");
    std::vector<punch_input> a{placed_punch("1", "2025-03-01 08:00:00"),
                               placed_punch("2", "2025-03-01 09:00:00"),
                               placed_punch("1", "2025-03-02 08:00:00")};
    std::vector<punch_input> b{no_utc, placed_punch("3", "2025-03-03 10:00:00")};
    std::vector<punch_input> c{placed_punch("1", "2025-03-01 07:00:00")};
    std::vector<punch_input> q{placed_punch("1", "2025-03-01 08:00:00")};
    REQUIRE(store->store_punches("A1", a, at(100), false));
    REQUIRE(store->store_punches("B2", b, at(200), false));
    REQUIRE(store->store_punches("C3", c, at(300), false));
    REQUIRE(store->store_punches("Q9", q, at(400), true));

    using keys = std::vector<std::string>;
    const keys every{"A1 1 2025-03-01 08:00:00", "A1 2 2025-03-01 09:00:00",
                     "A1 1 2025-03-02 08:00:00", "B2 1 2025-03-01 08:30:00",
                     "B2 3 2025-03-03 10:00:00", "C3 1 2025-03-01 07:00:00"};
    CHECK(keys_of(query(*store, {})) == every);

    CHECK(keys_of(query(*store, {.serial_numbers = {"C3", "B2"}})) ==
          keys{every[3], every[4], every[5]});
    CHECK(keys_of(query(*store, {.serial_numbers = {"B2"}})) == keys{every[3], every[4]});
    CHECK(keys_of(query(*store, {.serial_numbers = {"B2", "B2", "NOPE"}})) ==
          keys{every[3], every[4]});
    CHECK(query(*store, {.serial_numbers = {"NOPE"}}).empty());
    CHECK(keys_of(query(*store, {.pin = "1"})) == keys{every[0], every[2], every[3], every[5]});
    CHECK(keys_of(query(*store, {.utc_from = utc_of("2025-03-01 08:00:00")})) ==
          keys{every[0], every[1], every[2], every[4]});
    CHECK(keys_of(query(*store, {.utc_to = utc_of("2025-03-01 09:00:00")})) ==
          keys{every[0], every[5]});
    CHECK(keys_of(query(*store, {.local_from = "2025-03-01 08:30:00"})) ==
          keys{every[1], every[2], every[3], every[4]});
    CHECK(keys_of(query(*store, {.local_to = "2025-03-01 08:30:00"})) == keys{every[0], every[5]});
    CHECK(keys_of(query(*store, {.received_from = at(200)})) == keys{every[3], every[4], every[5]});

    auto all = query(*store, {.include_quarantined = true});
    REQUIRE(all.size() == 7);
    CHECK(all.back().serial_number == "Q9");
    CHECK(all.back().quarantined);
    CHECK(query(*store, {.serial_numbers = {"Q9"}}).empty());

    const auto ids = ids_of(all);
    CHECK(ids_of(query(*store, {.after_id = ids[2]})) ==
          std::vector<std::int64_t>{ids[3], ids[4], ids[5]});
    CHECK(ids_of(query(*store, {.up_to_id = ids[2]})) ==
          std::vector<std::int64_t>{ids[0], ids[1], ids[2]});
    CHECK(ids_of(query(*store, {.after_id = ids[1], .up_to_id = ids[3]})) ==
          std::vector<std::int64_t>{ids[2], ids[3]});
    CHECK(ids_of(query(*store, {.newest_first = true})) ==
          std::vector<std::int64_t>{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]});
    CHECK(
        ids_of(query(*store,
                     {.after_id = ids[1], .up_to_id = ids[4], .newest_first = true, .limit = 2})) ==
        std::vector<std::int64_t>{ids[4], ids[3]});
    CHECK(keys_of(query(*store, {.limit = 2})) == keys{every[0], every[1]});
    CHECK(query(*store, {.limit = 0}).empty());

    // Every condition at once: only A1's and B2's PIN 1 on the first of March, in UTC or local.
    CHECK(keys_of(query(*store, {.serial_numbers = {"A1", "B2", "Q9"},
                                 .pin = "1",
                                 .local_from = "2025-03-01 00:00:00",
                                 .local_to = "2025-03-02 00:00:00",
                                 .include_quarantined = true})) ==
          keys{every[0], every[3], "Q9 1 2025-03-01 08:00:00"});
    CHECK(keys_of(query(*store, {.serial_numbers = {"A1", "B2", "C3"},
                                 .pin = "1",
                                 .utc_from = utc_of("2025-03-01 07:00:00"),
                                 .utc_to = utc_of("2025-03-02 08:00:00"),
                                 .local_from = "2025-03-01 07:30:00",
                                 .received_from = at(100),
                                 .after_id = 0,
                                 .up_to_id = ids[5]})) == keys{every[0]});

    // Values are bound, never spliced into the SQL.
    CHECK(query(*store, {.pin = "1' OR '1' = '1"}).empty());
    CHECK(query(*store, {.serial_numbers = {"A1') OR ('1' = '1"}}).empty());
}

TEST_CASE("Pages of query_punches return thousands of punches exactly once in id order",
          "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    constexpr int per_device = 850; // 2550 punches in all, some quarantined
    std::vector<punch_input> batch;
    for (int i = 0; i < per_device; ++i) {
        batch.push_back(
            punch(std::to_string(i % 37),
                  fmt::format("2025-03-{:02} {:02}:{:02}:00", 1 + i / 60, (i / 60) % 24, i % 60)));
    }
    // The devices' ids interleave: five batches each, in turn.
    for (int start = 0; start < per_device; start += 170) {
        for (std::string_view sn : {"A1", "B2", "C3"}) {
            std::span<const punch_input> part{batch.data() + start, 170};
            REQUIRE(store->store_punches(sn, part, at(start), sn == "C3"));
        }
    }
    auto last = store->last_punch_id();
    REQUIRE(last);

    auto page_through = [&](punch_filter filter) {
        std::vector<stored_punch> all;
        for (int pages = 0; pages < 1000; ++pages) {
            auto page = query(*store, filter);
            if (page.empty()) {
                break;
            }
            CHECK(page.size() <= filter.limit);
            all.insert(all.end(), page.begin(), page.end());
            if (filter.newest_first) {
                filter.up_to_id = page.back().id - 1;
            } else {
                filter.after_id = page.back().id;
            }
            // Punches stored mid-export are past its upper bound.
            std::vector<punch_input> late{
                punch("late", fmt::format("2025-04-01 00:{:02}:00", pages % 60))};
            REQUIRE(store->store_punches(pages % 2 ? "A1" : "B2", late, at(9999), false));
        }
        return all;
    };

    SECTION("every device, oldest first, up to the export's last id")
    {
        auto all = page_through({.up_to_id = *last.value, .limit = 100});
        CHECK(all.size() == 2 * per_device);
        CHECK(std::is_sorted(all.begin(), all.end(),
                             [](const auto& x, const auto& y) { return x.id < y.id; }));
        auto ids = ids_of(all);
        CHECK(std::set<std::int64_t>(ids.begin(), ids.end()).size() == ids.size());
        CHECK(std::none_of(all.begin(), all.end(),
                           [](const auto& p) { return p.quarantined || p.pin == "late"; }));
        CHECK(ids.back() < *last.value); // C3's quarantined punches came last
    }
    SECTION("two devices with quarantined ones, oldest first")
    {
        auto all = page_through({.serial_numbers = {"A1", "C3"},
                                 .up_to_id = *last.value,
                                 .include_quarantined = true,
                                 .limit = 333});
        CHECK(all.size() == 2 * per_device);
        CHECK(std::adjacent_find(all.begin(), all.end(), [](const auto& x, const auto& y) {
                  return x.id >= y.id;
              }) == all.end());
        CHECK(std::count_if(all.begin(), all.end(),
                            [](const auto& p) { return p.serial_number == "C3"; }) == per_device);
        CHECK(all.back().id == *last.value);
    }
    SECTION("newest first, the cursor moving down")
    {
        auto all = page_through({.up_to_id = *last.value, .newest_first = true, .limit = 128});
        CHECK(all.size() == 2 * per_device);
        CHECK(std::adjacent_find(all.begin(), all.end(), [](const auto& x, const auto& y) {
                  return x.id <= y.id;
              }) == all.end());
        auto oldest_first = query(*store, {.limit = 1});
        REQUIRE(oldest_first.size() == 1);
        CHECK(all.back() == oldest_first.front());
    }
    SECTION("one PIN across devices")
    {
        auto all = page_through({.pin = "5", .up_to_id = *last.value, .limit = 10});
        // i % 37 == 5 for i in [0, 850): 23 values, in A1 and B2.
        CHECK(all.size() == 2 * 23);
        CHECK(std::all_of(all.begin(), all.end(), [](const auto& p) { return p.pin == "5"; }));
    }
}

TEST_CASE("last_punch_id is 0 for an empty store and then the largest id", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    auto none = store->last_punch_id();
    REQUIRE(none);
    CHECK(*none.value == 0);
    std::vector<punch_input> batch{punch("1", "2025-03-01 08:00:00"),
                                   punch("2", "2025-03-01 08:00:00")};
    REQUIRE(store->store_punches("Q9", batch, at(1), true));
    auto all = query(*store, {.include_quarantined = true});
    REQUIRE(all.size() == 2);
    auto last = store->last_punch_id();
    REQUIRE(last);
    CHECK(*last.value == all.back().id);
}

TEST_CASE("A serial number list longer than SQLite's parameter limit is an error value",
          "[storage]")
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

TEST_CASE("A pending command of the same kind is returned instead of queueing another", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    const std::string text = "SET OPTIONS DateTime=000000000";
    auto first =
        store->enqueue_command_unless_pending("A1", text, "time-sync: drift", "time-sync", at(1));
    REQUIRE(first);
    CHECK(first.value->created);
    CHECK(protocol::is_valid_command_id(first.value->id));
    auto second = store->enqueue_command_unless_pending("A1", text, "time-sync: schedule",
                                                        "time-sync", at(2));
    REQUIRE(second);
    CHECK_FALSE(second.value->created);
    CHECK(second.value->id == first.value->id);

    // Another device, or a command of another kind, does not count.
    auto other_device =
        store->enqueue_command_unless_pending("B2", text, "time-sync: drift", "time-sync", at(2));
    REQUIRE(other_device);
    CHECK(other_device.value->created);
    REQUIRE(store->enqueue_command("A1", "INFO", "admin", at(0)));
    auto listed = store->list_commands("A1");
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 2);
    CHECK(listed.value->front().kind == "time-sync: drift");
    CHECK(listed.value->front().text == text);
    CHECK(listed.value->front().created_at == at(1));

    // Sent and not answered is still pending.
    REQUIRE(store->claim_commands("A1", at(3), policy, choose_all));
    auto while_sent =
        store->enqueue_command_unless_pending("A1", text, "time-sync: x", "time-sync", at(4));
    REQUIRE(while_sent);
    CHECK_FALSE(while_sent.value->created);
    CHECK(while_sent.value->id == first.value->id);

    // Once it is done a new one is queued; the same once that one fails.
    std::vector<protocol::command_result> ok{{first.value->id, 0, "SET OPTIONS", {}, ""}};
    REQUIRE(store->record_command_results("A1", ok, at(5)));
    auto third =
        store->enqueue_command_unless_pending("A1", text, "time-sync: x", "time-sync", at(6));
    REQUIRE(third);
    CHECK(third.value->created);
    CHECK(third.value->id != first.value->id);
    REQUIRE(store->claim_commands("A1", at(7), policy, choose_all));
    std::vector<protocol::command_result> failed{{third.value->id, -1, "SET OPTIONS", {}, ""}};
    REQUIRE(store->record_command_results("A1", failed, at(8)));
    auto fourth =
        store->enqueue_command_unless_pending("A1", text, "time-sync: x", "time-sync", at(9));
    REQUIRE(fourth);
    CHECK(fourth.value->created);
    CHECK(fourth.value->id != third.value->id);
}

TEST_CASE("A command's text is replaced by the one it went out with, for its own device only",
          "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    auto id =
        store->enqueue_command("A1", "SET OPTIONS DateTime=000000000", "time-sync: boot", at(1));
    REQUIRE(id);
    REQUIRE(store->set_command_text("A1", *id.value, "SET OPTIONS DateTime=583080894"));
    // Another device's id, or an id this storage never hands out, changes nothing.
    REQUIRE(store->set_command_text("B2", *id.value, "SET OPTIONS DateTime=1"));
    REQUIRE(store->set_command_text("A1", "x-1", "SET OPTIONS DateTime=2"));
    auto found = store->find_command("A1", *id.value);
    REQUIRE(found);
    REQUIRE(*found.value);
    CHECK((*found.value)->text == "SET OPTIONS DateTime=583080894");
    CHECK((*found.value)->kind == "time-sync: boot");
    CHECK((*found.value)->state == command_state::queued);
}

TEST_CASE("A kind prefix is compared literally, with no LIKE wildcards or case folding",
          "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    auto original =
        store->enqueue_command_unless_pending("A1", "CHECK", "time-sync: a", "time-sync", at(1));
    REQUIRE(original);
    REQUIRE(original.value->created);
    for (std::string prefix : {"time_sync", "%", "_", "time-sync%", "TIME-SYNC", "time-sync: ab"}) {
        INFO(prefix);
        auto r =
            store->enqueue_command_unless_pending("A1", "CHECK", prefix + " kind", prefix, at(2));
        REQUIRE(r);
        CHECK(r.value->created);
    }
    auto same = store->enqueue_command_unless_pending("A1", "CHECK", "x", "time-sync: a", at(3));
    REQUIRE(same);
    CHECK_FALSE(same.value->created);
    CHECK(same.value->id == original.value->id);
}

TEST_CASE("Concurrent time-sync requests through two storages on one file queue one command",
          "[storage]")
{
    temp_dir dir;
    std::array stores{open_store(dir.db()), open_store(dir.db())};
    std::vector<enqueued_command> got(8);
    std::atomic<int> errors{0};
    {
        std::atomic<bool> go{false};
        std::vector<std::jthread> threads;
        for (std::size_t t = 0; t < got.size(); ++t) {
            threads.emplace_back([&, t] {
                while (!go) {
                    std::this_thread::yield();
                }
                auto r = stores[t % 2]->enqueue_command_unless_pending(
                    "A1", "SET OPTIONS DateTime=000000000", fmt::format("time-sync: {}", t),
                    "time-sync", at(1));
                if (r) {
                    got[t] = *r.value;
                } else {
                    ++errors;
                }
            });
        }
        go = true;
    }
    CHECK(errors == 0);
    CHECK(std::count_if(got.begin(), got.end(), [](const auto& c) { return c.created; }) == 1);
    for (const auto& c : got) {
        CHECK(c.id == got.front().id);
    }
    auto listed = stores[0]->list_commands("A1");
    REQUIRE(listed);
    CHECK(listed.value->size() == 1);
}

TEST_CASE("find_command returns one command of a device by id", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    auto id = store->enqueue_command("A1", "INFO", "admin", at(5));
    REQUIRE(id);
    REQUIRE(store->claim_commands("A1", at(6), policy, choose_all));

    auto found = store->find_command("A1", *id.value);
    REQUIRE(found);
    REQUIRE(found.value->has_value());
    const auto& c = **found.value;
    CHECK(c.id == *id.value);
    CHECK(c.serial_number == "A1");
    CHECK(c.text == "INFO");
    CHECK(c.kind == "admin");
    CHECK(c.state == command_state::sent);
    CHECK(c.created_at == at(5));
    CHECK(c.sent_at == at(6));
    CHECK(c.attempts == 1);

    for (std::string other : {std::string{"999"}, "0" + *id.value, std::string{"abc"},
                              std::string{""}, std::string{"-1"}}) {
        INFO(other);
        auto missing = store->find_command("A1", other);
        REQUIRE(missing);
        CHECK_FALSE(missing.value->has_value());
    }
    auto other_device = store->find_command("B2", *id.value);
    REQUIRE(other_device);
    CHECK_FALSE(other_device.value->has_value());
}

TEST_CASE("Reads succeed while another connection holds an uncommitted write", "[storage]")
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
    CHECK_THAT(locked.error.message, Catch::Contains("store_punches") && Catch::Contains("locked"));

    other.exec("COMMIT");
    CHECK(query(*store, {}).size() == 2);
    REQUIRE(store->store_punches("A1", more, at(3), false));
    CHECK(query(*store, {}).size() == 3);
}

TEST_CASE("A read runs while a write call of the same storage is in progress", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    std::vector<punch_input> batch{punch("1", "2025-03-01 08:00:00")};
    REQUIRE(store->store_punches("A1", batch, at(1), false));
    REQUIRE(store->enqueue_command("A1", "INFO", "admin", at(1)));

    // The chooser runs inside claim_commands' transaction, holding the write connection.
    std::promise<void> inside;
    std::promise<void> release;
    auto released = release.get_future();
    std::atomic<bool> chooser_timed_out{false};
    std::optional<storage_result<std::vector<queued_command>>> claimed;
    std::jthread writer{[&] {
        claimed = store->claim_commands("A1", at(2), policy, [&](const auto& offered) {
            inside.set_value();
            // A read that waited for this call would only finish after this gives up.
            if (released.wait_for(10s) != std::future_status::ready) {
                chooser_timed_out = true;
            }
            return choose_all(offered);
        });
    }};
    inside.get_future().wait();
    auto punches = store->query_punches({});
    auto listed = store->list_commands("A1");
    auto health = store->check();
    release.set_value();
    writer.join();

    CHECK_FALSE(chooser_timed_out);
    REQUIRE(claimed);
    CHECK(*claimed);
    REQUIRE(punches);
    CHECK(punches.value->size() == 1);
    REQUIRE(listed);
    REQUIRE(listed.value->size() == 1);
    CHECK(listed.value->front().state == command_state::queued); // the claim had not committed
    CHECK(health);
    auto after = store->list_commands("A1");
    REQUIRE(after);
    CHECK(after.value->front().state == command_state::sent);
}

TEST_CASE("check answers while the storage is open and fails after close", "[storage]")
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

TEST_CASE("A write batch commits every call once, and a failing call is undone alone",
          "[storage][batch]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    device_record taken;
    taken.serial_number = "A1";
    taken.alias = "front";
    REQUIRE(store->upsert_device(taken));

    std::vector<punch_input> first{punch("1", "2025-03-01 08:00:00")};
    std::vector<punch_input> second{punch("2", "2025-03-01 08:01:00"),
                                    punch("1", "2025-03-01 08:00:00")};
    device_record clash;
    clash.serial_number = "B2";
    clash.alias = "front"; // used by A1: refused
    std::optional<storage_result<store_counts>> a;
    std::optional<storage_result<device_record>> b;
    std::optional<storage_result<store_counts>> c;
    auto committed = store->write_batch([&] {
        a.emplace(store->store_punches("A1", first, at(1), false));
        b.emplace(store->upsert_device(clash));
        c.emplace(store->store_punches("A1", second, at(2), false));
    });
    REQUIRE(committed);
    REQUIRE(*a);
    CHECK(*a->value == store_counts{1, 0});
    CHECK_FALSE(*b);
    REQUIRE(*c);
    // The second call saw the first one's row inside the same transaction.
    CHECK(*c->value == store_counts{1, 1});
    CHECK(store->list_punches({}).value->size() == 2);
    CHECK_FALSE(store->load_device("B2").value->has_value());

    // After the batch the connection is back to one transaction per call.
    REQUIRE(
        store->store_punches("A1", std::vector{punch("3", "2025-03-01 09:00:00")}, at(3), false));
    CHECK(store->list_punches({}).value->size() == 3);
}

TEST_CASE("A write batch that cannot take the write lock runs nothing and says why",
          "[storage][batch]")
{
    temp_dir dir;
    sqlite_open_options options;
    options.busy_timeout = 50ms;
    auto store = open_store(dir.db(), options);
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(dir.db().c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    bool ran = false;
    auto committed = store->write_batch([&] { ran = true; });
    CHECK_FALSE(committed);
    CHECK_FALSE(ran);
    CHECK(committed.error.message.find("locked") != std::string::npos);
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    CHECK(store->write_batch([&] { ran = true; }));
    CHECK(ran);
}

TEST_CASE("Kept prepared statements serve repeated calls, and close still works",
          "[storage][batch]")
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

TEST_CASE("Clock offsets are appended, listed per device in order and pruned by age", "[storage]")
{
    temp_dir dir;
    auto store = open_store(dir.db());
    std::vector<clock_offset_point> points{
        {"A1", at(10), 95000, 1000, "punches"},
        {"B2", at(11), -2000, 1200, "punches"},
        {"A1", at(20), 0, 1000, "sync"},
    };
    REQUIRE(store->store_clock_offsets(points, at(0)));
    auto a1 = store->list_clock_offsets({.serial_number = "A1"});
    REQUIRE(a1);
    REQUIRE(a1.value->size() == 2);
    CHECK((*a1.value)[0].point.offset_ms == 95000);
    CHECK((*a1.value)[0].point.measured_at == at(10));
    CHECK((*a1.value)[0].point.uncertainty_ms == 1000);
    CHECK((*a1.value)[0].point.source == "punches");
    CHECK((*a1.value)[1].point.source == "sync");
    CHECK((*a1.value)[0].id < (*a1.value)[1].id);

    // Paging by id, and the measured-time range.
    auto page = store->list_clock_offsets(
        {.serial_number = "A1", .after_id = (*a1.value)[0].id, .limit = 10});
    REQUIRE(page);
    REQUIRE(page.value->size() == 1);
    CHECK((*page.value)[0].point.source == "sync");
    auto ranged = store->list_clock_offsets({.serial_number = "A1", .from = at(15), .to = at(25)});
    REQUIRE(ranged);
    REQUIRE(ranged.value->size() == 1);
    CHECK((*ranged.value)[0].point.measured_at == at(20));

    // A later write prunes the points of the devices it writes for, measured before keep_after.
    std::vector<clock_offset_point> later{{"A1", at(30), 500, 1000, "punches"}};
    REQUIRE(store->store_clock_offsets(later, at(15)));
    auto kept = store->list_clock_offsets({.serial_number = "A1"});
    REQUIRE(kept);
    REQUIRE(kept.value->size() == 2);
    CHECK((*kept.value)[0].point.measured_at == at(20));
    auto b2 = store->list_clock_offsets({.serial_number = "B2"});
    REQUIRE(b2);
    CHECK(b2.value->size() == 1); // not written for: left alone

    // The schema refuses a source it does not know; the batch is stored whole or not at all.
    std::vector<clock_offset_point> bad{{"A1", at(40), 1, 1, "punches"},
                                        {"A1", at(41), 1, 1, "guess"}};
    auto refused = store->store_clock_offsets(bad, at(0));
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error.message, Catch::Contains("store_clock_offsets"));
    CHECK(store->list_clock_offsets({.serial_number = "A1"}).value->size() == 2);
}

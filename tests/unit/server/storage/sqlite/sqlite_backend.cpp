#include "tests/unit/server/storage/sqlite/sqlite_backend.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sqlite3.h>

namespace adms::storage_test {
namespace {

std::unique_ptr<database> open_file(const std::filesystem::path& file)
{
    auto opened = sqlite_database::open(file);
    INFO(opened.error.message);
    REQUIRE(opened);
    return std::move(*opened.value);
}

sqlite_database& sqlite(database& db)
{
    return dynamic_cast<sqlite_database&>(db);
}

} // namespace

std::unique_ptr<database> sqlite_backend::make()
{
    if (!dir_) {
        dir_.emplace();
    }
    file_ = dir_->path / fmt::format("admsd-{}.sqlite3", ++files_);
    return open_file(file_);
}

std::unique_ptr<database> sqlite_backend::reopen()
{
    REQUIRE(files_ > 0);
    return open_file(file_);
}

bool sqlite_backend::inject_commit_failure()
{
    // A deferred foreign key is checked at COMMIT: a trigger that breaks one makes the commit of
    // every transaction that stored a punch fail (SQLITE_CONSTRAINT_FOREIGNKEY), while every
    // statement before it succeeds, as with a disk that fills up at the commit.
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(file_.c_str(), &raw) == SQLITE_OK);
    int rc = sqlite3_exec(raw, R"sql(
CREATE TABLE test_commit_gate (id INTEGER PRIMARY KEY);
CREATE TABLE test_commit_failure (
    gate INTEGER REFERENCES test_commit_gate (id) DEFERRABLE INITIALLY DEFERRED);
CREATE TRIGGER test_fail_commit AFTER INSERT ON punch
BEGIN
    INSERT INTO test_commit_failure (gate) VALUES (1);
END;
)sql",
                          nullptr, nullptr, nullptr);
    sqlite3_close(raw);
    return rc == SQLITE_OK;
}

storage_result<std::optional<device_record>>
sqlite_backend::load_device(database& db, std::string_view serial_number)
{
    return sqlite(db).devices().load_device(serial_number);
}

storage_result<std::vector<stored_punch>> sqlite_backend::list_punches(database& db,
                                                                       const list_query& query)
{
    return sqlite(db).punches().list_punches(query);
}

storage_result<std::vector<stored_rejected_line>>
sqlite_backend::list_rejected_lines(database& db, const list_query& query)
{
    return sqlite(db).uploads().list_rejected_lines(query);
}

storage_result<std::vector<stored_operlog_line>>
sqlite_backend::list_operlog(database& db, const list_query& query)
{
    return sqlite(db).uploads().list_operlog(query);
}

storage_result<std::vector<stored_user>> sqlite_backend::list_users(database& db,
                                                                    std::string_view serial_number)
{
    return sqlite(db).uploads().list_users(serial_number);
}

storage_result<std::vector<stored_table_body>>
sqlite_backend::list_table_bodies(database& db, const list_query& query)
{
    return sqlite(db).uploads().list_table_bodies(query);
}

storage_result<std::vector<stored_photo>> sqlite_backend::list_photos(database& db,
                                                                      const list_query& query)
{
    return sqlite(db).uploads().list_photos(query);
}

storage_result<std::vector<stored_command_result>>
sqlite_backend::list_command_results(database& db, const list_query& query)
{
    return sqlite(db).commands().list_command_results(query);
}

backend_factory& sqlite_reads()
{
    static sqlite_backend reads;
    return reads;
}

std::unique_ptr<backend_factory> make_backend_factory()
{
    return std::make_unique<sqlite_backend>();
}

} // namespace adms::storage_test

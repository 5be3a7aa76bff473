#include "server/storage/sqlite/sqlite_db.hpp"

namespace adms::server::sqlite {

[[noreturn]] void fail(sqlite3* db, std::string_view what)
{
    throw sqlite_failure{fmt::format("{}: {} (SQLite code {})", what, sqlite3_errmsg(db),
                                     sqlite3_extended_errcode(db))};
}

void exec(sqlite3* db, const char* sql)
{
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
        fail(db, "exec");
    }
}

int connection::close()
{
    if (db_ == nullptr) {
        return SQLITE_OK;
    }
    statements_.forget();
    int rc = sqlite3_close(db_);
    if (rc == SQLITE_OK) {
        db_ = nullptr;
    }
    return rc;
}

int user_version(connection& db)
{
    statement s{db, "PRAGMA user_version"};
    return s.step() ? s.small_integer(0) : 0;
}

std::string pragma_text(connection& db, const char* sql)
{
    statement s{db, sql};
    return s.step() ? s.text(0) : std::string{};
}

std::int64_t clamp_limit(std::size_t limit)
{
    return static_cast<std::int64_t>(
        std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max()));
}

connection connect(const std::filesystem::path& file, int flags, std::chrono::milliseconds busy)
{
    // Once per process, before SQLite initializes: no memory statistics, whose global mutex
    // every SQLite allocation would take (a tenth of the writer's time under ingest). When
    // something else initialized SQLite first this is refused, and only speed is lost.
    // Also: statement journals (every writer call is a savepoint, which keeps the pages it
    // changes in one) stay in memory up to 16 MiB instead of 64 KiB before they spill to a
    // temporary file; spilled, every page changed was a pwrite, most of the writer's time once
    // a punch's event was written beside it. A huge call (a quarantine of millions of punches
    // released) still spills, so memory stays bounded.
    static const bool configured [[maybe_unused]] =
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK &&
        sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, 16 * 1024 * 1024) == SQLITE_OK;
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(file.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        sqlite3_close(db);
        throw sqlite_failure{fmt::format("{} (SQLite code {})", message, rc)};
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(
                                 busy.count(), 0, std::numeric_limits<int>::max())));
    return connection{db};
}

} // namespace adms::server::sqlite

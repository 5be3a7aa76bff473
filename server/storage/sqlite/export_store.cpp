#include "server/storage/sqlite/export_store.hpp"

#include "protocol/civil_time.hpp"
#include "server/storage/sqlite/sqlite_db.hpp"

namespace adms::server {

using namespace sqlite;

namespace {

// A stored day ("YYYY-MM-DD": text, so the sqlite3 shell shows it as it is, and text order is
// date order for four-digit years).
std::chrono::local_days read_day(const statement& s, int column)
{
    auto day = protocol::parse_civil_date(s.text(column));
    if (!day) {
        throw sqlite_failure{"a stored export day is not YYYY-MM-DD: " + s.text(column)};
    }
    return *day;
}

} // namespace

storage_status sqlite_export_writer::record_export_run(const export_run& run)
{
    return run_on<std::monostate>(db_, "record_export_run", [&](connection& db) {
        auto year = static_cast<int>(std::chrono::year_month_day{run.day}.year());
        if (year < 0 || year > 9999) {
            throw sqlite_failure{"the day's year must be 0000 to 9999"};
        }
        savepoint tx{db};
        // The GREATEST of the two days: a re-run of an older day never moves the schedule back.
        statement s{db, R"sql(
INSERT INTO export_state (name, last_completed_day, last_run_day, last_run_file, last_run_rows,
                          last_run_bytes, last_run_at_ms, last_run_scheduled)
VALUES (?1, CASE WHEN ?7 THEN ?2 END, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (name) DO UPDATE SET
    last_completed_day = CASE
        WHEN excluded.last_run_scheduled = 1
             AND (last_completed_day IS NULL OR excluded.last_run_day > last_completed_day)
        THEN excluded.last_run_day ELSE last_completed_day END,
    last_run_day = excluded.last_run_day,
    last_run_file = excluded.last_run_file,
    last_run_rows = excluded.last_run_rows,
    last_run_bytes = excluded.last_run_bytes,
    last_run_at_ms = excluded.last_run_at_ms,
    last_run_scheduled = excluded.last_run_scheduled
)sql"};
        s.bind(run.name, protocol::format_civil_date(run.day), run.file,
               static_cast<std::int64_t>(run.rows), static_cast<std::int64_t>(run.bytes),
               run.finished_at, run.scheduled)
            .run();
        tx.release();
        return std::monostate{};
    });
}

storage_result<std::vector<export_state>> sqlite_export_store::list_export_states()
{
    return reader_.run<std::vector<export_state>>("list_export_states", [&](connection& db) {
        statement s{db, R"sql(
SELECT name, last_completed_day, last_run_day, last_run_file, last_run_rows, last_run_bytes,
       last_run_at_ms, last_run_scheduled
FROM export_state ORDER BY name
)sql"};
        std::vector<export_state> out;
        while (s.step()) {
            export_state state;
            state.name = s.text(0);
            if (!s.is_null(1)) {
                state.last_completed_day = read_day(s, 1);
            }
            export_run run;
            run.name = state.name;
            run.day = read_day(s, 2);
            run.file = s.text(3);
            run.rows = static_cast<std::uint64_t>(s.integer(4));
            run.bytes = static_cast<std::uint64_t>(s.integer(5));
            run.finished_at = s.time(6);
            run.scheduled = s.integer(7) == 1;
            state.last_run = std::move(run);
            out.push_back(std::move(state));
        }
        return out;
    });
}

} // namespace adms::server

#include "server/storage/sqlite/clock_store.hpp"

#include "server/storage/sqlite/sqlite_db.hpp"

#include <algorithm>

namespace adms::server {

using namespace sqlite;

storage_status sqlite_clock_writer::store_clock_offsets(std::span<const clock_offset_point> points,
                                                        instant keep_after)
{
    return run_on<std::monostate>(db_, "store_clock_offsets", [&](connection& db) {
        savepoint tx{db};
        statement insert{db, R"sql(
INSERT INTO clock_offset (serial_number, measured_at_ms, offset_ms, uncertainty_ms, source)
VALUES (?, ?, ?, ?, ?)
)sql"};
        statement prune{db,
                        "DELETE FROM clock_offset WHERE serial_number = ? AND measured_at_ms < ?"};
        std::vector<std::string_view> pruned;
        for (const auto& p : points) {
            insert.bind(p.serial_number, p.measured_at, p.offset_ms, p.uncertainty_ms, p.source)
                .run();
            if (std::find(pruned.begin(), pruned.end(), p.serial_number) == pruned.end()) {
                prune.bind(p.serial_number, keep_after).run();
                pruned.push_back(p.serial_number);
            }
        }
        tx.release();
        return std::monostate{};
    });
}

storage_result<std::vector<stored_clock_offset>>
sqlite_clock_store::list_clock_offsets(const clock_offset_query& query)
{
    return reader_.run<std::vector<stored_clock_offset>>("list_clock_offsets", [&](connection& db) {
        statement s{db, R"sql(
SELECT id, serial_number, measured_at_ms, offset_ms, uncertainty_ms, source FROM clock_offset
WHERE serial_number = ?1 AND id > ?2
  AND (?3 IS NULL OR measured_at_ms >= ?3) AND (?4 IS NULL OR measured_at_ms < ?4)
ORDER BY id LIMIT ?5
)sql"};
        s.bind(query.serial_number, query.after_id, query.from, query.to, clamp_limit(query.limit));
        std::vector<stored_clock_offset> out;
        while (s.step()) {
            stored_clock_offset o;
            o.id = s.integer(0);
            o.point.serial_number = s.text(1);
            o.point.measured_at = s.time(2);
            o.point.offset_ms = s.integer(3);
            o.point.uncertainty_ms = s.integer(4);
            o.point.source = s.text(5);
            out.push_back(std::move(o));
        }
        return out;
    });
}

} // namespace adms::server

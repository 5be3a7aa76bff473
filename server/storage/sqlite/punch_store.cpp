#include "server/storage/sqlite/punch_store.hpp"

#include "protocol/civil_time.hpp"
#include "server/storage/sqlite/sqlite_db.hpp"

namespace adms::server {

using namespace sqlite;

namespace {

constexpr std::string_view punch_columns =
    "id, serial_number, pin, local_time, utc_s, status, verify, work_code, sequence, raw_line, "
    "received_at_ms, quarantined";

stored_punch read_punch(const statement& s)
{
    stored_punch p;
    p.id = s.integer(0);
    p.serial_number = s.text(1);
    p.pin = s.text(2);
    p.local_time = s.text(3);
    if (auto utc = s.optional_integer(4)) {
        p.utc = std::chrono::sys_seconds{std::chrono::seconds{*utc}};
    }
    p.status = s.small_integer(5);
    p.verify = s.small_integer(6);
    p.work_code = s.text(7);
    if (auto sequence = s.optional_integer(8)) {
        p.sequence = static_cast<std::uint64_t>(*sequence);
    }
    p.raw_line = s.text(9);
    p.received_at = s.time(10);
    p.quarantined = s.integer(11) != 0;
    return p;
}

} // namespace

storage_result<punch_counts>
sqlite_punch_writer::store_punches(std::string_view serial_number,
                                   std::span<const punch_input> punches, instant received_at,
                                   bool quarantined)
{
    return run_on<punch_counts>(db_, "store_punches", [&](connection& db) {
        savepoint tx{db};
        statement s{db, R"sql(
INSERT INTO punch (serial_number, pin, local_time, utc_s, status, verify, work_code, sequence,
                   raw_line, received_at_ms, quarantined)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
)sql"};
        punch_counts counts;
        counts.ids.reserve(punches.size());
        for (const auto& p : punches) {
            const auto& r = p.record;
            std::optional<std::int64_t> utc;
            if (p.utc) {
                utc = p.utc->time_since_epoch().count();
            }
            std::optional<std::int64_t> sequence;
            if (r.sequence) {
                // Stored as the same 64 bits; values above INT64_MAX read back unchanged.
                sequence = static_cast<std::int64_t>(*r.sequence);
            }
            s.bind(serial_number, r.pin, protocol::format_civil_time(r.time), utc, r.status,
                   r.verify, r.work_code, sequence, p.raw_line, received_at, quarantined)
                .run();
            if (sqlite3_changes(db.handle()) == 1) {
                ++counts.stored;
                counts.ids.push_back(sqlite3_last_insert_rowid(db.handle()));
            } else {
                ++counts.duplicate;
                counts.ids.push_back(0);
            }
        }
        tx.release();
        return counts;
    });
}

storage_result<std::vector<stored_punch>> sqlite_punch_store::list_punches(const list_query& query)
{
    return reader_.run<std::vector<stored_punch>>("list_punches", [&](connection& db) {
        return list<stored_punch>(db, punch_columns, "punch", query, read_punch);
    });
}

storage_result<std::vector<stored_punch>>
sqlite_punch_store::query_punches(const punch_filter& filter)
{
    // With several serial numbers the plan is punch_by_device (serial_number=? AND id>?) and a
    // temporary B-tree for ORDER BY, but SQLite bounds that sort by the LIMIT and leaves each
    // device's range once it can no longer contribute, so a page reads about (devices x limit)
    // index entries, not every row after the cursor (other conditions are checked on the rows
    // read, so a very selective one reads more). A PIN uses punch_by_pin (pin=? AND id>?).
    return reader_.run<std::vector<stored_punch>>("query_punches", [&](connection& db) {
        std::string sql = fmt::format("SELECT {} FROM punch WHERE id > ?", punch_columns);
        std::vector<parameter> parameters{filter.after_id};
        auto where = [&](std::string_view condition, parameter value) {
            sql += " AND ";
            sql += condition;
            parameters.push_back(value);
        };
        if (filter.up_to_id) {
            where("id <= ?", *filter.up_to_id);
        }
        if (!filter.serial_numbers.empty()) {
            // One parameter each: values never become SQL text.
            std::string placeholders;
            for (const auto& serial_number : filter.serial_numbers) {
                placeholders += placeholders.empty() ? "?" : ", ?";
                parameters.emplace_back(std::string_view{serial_number});
            }
            sql += fmt::format(" AND serial_number IN ({})", placeholders);
        }
        if (filter.pin) {
            where("pin = ?", std::string_view{*filter.pin});
        }
        if (filter.utc_from) {
            where("utc_s >= ?", std::int64_t{filter.utc_from->time_since_epoch().count()});
        }
        if (filter.utc_to) {
            where("utc_s < ?", std::int64_t{filter.utc_to->time_since_epoch().count()});
        }
        if (filter.local_from) {
            where("local_time >= ?", std::string_view{*filter.local_from});
        }
        if (filter.local_to) {
            where("local_time < ?", std::string_view{*filter.local_to});
        }
        if (filter.received_from) {
            where("received_at_ms >= ?", to_ms(*filter.received_from));
        }
        if (!filter.include_quarantined) {
            sql += " AND quarantined = 0";
        }
        sql += filter.newest_first ? " ORDER BY id DESC LIMIT ?" : " ORDER BY id LIMIT ?";
        parameters.emplace_back(clamp_limit(filter.limit));

        statement s{db, sql};
        s.bind_all(parameters);
        std::vector<stored_punch> out;
        while (s.step()) {
            out.push_back(read_punch(s));
        }
        return out;
    });
}

storage_result<std::int64_t> sqlite_punch_store::last_punch_id()
{
    return reader_.run<std::int64_t>("last_punch_id", [](connection& db) {
        statement s{db, "SELECT coalesce(max(id), 0) FROM punch"};
        return s.step() ? s.integer(0) : std::int64_t{0};
    });
}

storage_result<std::vector<stored_punch>>
sqlite_punch_writer::release_quarantine(std::string_view serial_number)
{
    return run_on<std::vector<stored_punch>>(db_, "release_quarantine", [&](connection& db) {
        savepoint tx{db};
        // Released punches become visible now, so they move past every id handed out so far
        // (keeping their order): an HR system reading by cursor gets them on its next page
        // instead of never, since its cursor is already past their old ids.
        statement last{db,
                       "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'punch'"};
        std::int64_t before = last.step() ? last.integer(0) : 0;
        statement s{db, R"sql(
UPDATE punch SET quarantined = 0, id = id + ?2 WHERE serial_number = ?1 AND quarantined = 1)sql"};
        s.bind(serial_number, before).run();
        std::vector<stored_punch> released;
        if (sqlite3_changes(db.handle()) > 0) {
            statement bump{db, "UPDATE sqlite_sequence SET seq = (SELECT max(id) FROM punch) "
                               "WHERE name = 'punch'"};
            bump.run();
            // Every id was at most `before`: the released rows are the ones above it now.
            statement read{db, fmt::format("SELECT {} FROM punch WHERE serial_number = ? AND id > "
                                           "? ORDER BY id",
                                           punch_columns)};
            read.bind(serial_number, before);
            while (read.step()) {
                released.push_back(read_punch(read));
            }
        }
        tx.release();
        return released;
    });
}

} // namespace adms::server

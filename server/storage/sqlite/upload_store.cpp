#include "server/storage/sqlite/upload_store.hpp"

#include "protocol/civil_time.hpp"
#include "server/storage/sqlite/sqlite_db.hpp"

namespace adms::server {

using namespace sqlite;

namespace {

std::string encode_objects(const std::vector<std::string>& objects)
{
    std::string out;
    for (const auto& o : objects) {
        out += o;
        out += '\t';
    }
    return out;
}

std::vector<std::string> decode_objects(std::string_view text)
{
    std::vector<std::string> out;
    while (!text.empty()) {
        auto tab = text.find('\t');
        out.emplace_back(text.substr(0, tab));
        if (tab == std::string_view::npos) {
            break;
        }
        text.remove_prefix(tab + 1);
    }
    return out;
}

} // namespace

storage_result<store_counts>
sqlite_upload_writer::store_rejected_lines(std::string_view serial_number, std::string_view table,
                                           std::span<const protocol::rejected_line> lines,
                                           instant received_at)
{
    return run_on<store_counts>(db_, "store_rejected_lines", [&](connection& db) {
        savepoint tx{db};
        statement s{db, R"sql(
INSERT INTO rejected_line (serial_number, table_name, line_number, text, reason, received_at_ms)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
)sql"};
        store_counts counts;
        for (const auto& line : lines) {
            s.bind(serial_number, table, static_cast<std::int64_t>(line.line_number), line.text,
                   line.reason, received_at)
                .run();
            ++(sqlite3_changes(db.handle()) == 1 ? counts.stored : counts.duplicate);
        }
        tx.release();
        return counts;
    });
}

storage_result<std::vector<stored_rejected_line>>
sqlite_upload_store::list_rejected_lines(const list_query& query)
{
    return reader_.run<std::vector<stored_rejected_line>>(
        "list_rejected_lines", [&](connection& db) {
            return list<stored_rejected_line>(
                db, "id, serial_number, table_name, line_number, text, reason, received_at_ms",
                "rejected_line", query, [](const statement& s) {
                    stored_rejected_line r;
                    r.id = s.integer(0);
                    r.serial_number = s.text(1);
                    r.table = s.text(2);
                    r.line_number = static_cast<std::size_t>(s.integer(3));
                    r.text = s.text(4);
                    r.reason = s.text(5);
                    r.received_at = s.time(6);
                    return r;
                });
        });
}

storage_result<store_counts>
sqlite_upload_writer::store_operlog(std::string_view serial_number,
                                    std::span<const protocol::operlog_record> lines,
                                    instant received_at)
{
    return run_on<store_counts>(db_, "store_operlog", [&](connection& db) {
        savepoint tx{db};
        statement line_insert{db, R"sql(
INSERT INTO operlog_line (serial_number, tag, raw, pin, oplog_code, oplog_operator, oplog_time,
                          oplog_objects, received_at_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
)sql"};
        // The last USER line received wins, re-sent or not: a device re-uploads its current users.
        statement user_upsert{db, R"sql(
INSERT INTO device_user (serial_number, pin, name, privilege, password, card, grp, time_zones,
                         verify, vice_card, raw, updated_at_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (serial_number, pin) DO UPDATE SET
    name = excluded.name, privilege = excluded.privilege, password = excluded.password,
    card = excluded.card, grp = excluded.grp, time_zones = excluded.time_zones,
    verify = excluded.verify, vice_card = excluded.vice_card, raw = excluded.raw,
    updated_at_ms = excluded.updated_at_ms
)sql"};
        store_counts counts;
        for (const auto& line : lines) {
            std::optional<std::string> pin;
            if (!line.oplog) {
                auto field = protocol::find_field(line, "PIN");
                if (!field) {
                    field = protocol::find_field(line, "Pin");
                }
                if (field) {
                    pin = std::string{*field};
                }
            }
            std::optional<int> code;
            std::optional<std::string> op, time, objects;
            if (line.oplog) {
                code = line.oplog->code;
                op = line.oplog->operator_id;
                time = protocol::format_civil_time(line.oplog->time);
                objects = encode_objects(line.oplog->objects);
            }
            line_insert
                .bind(serial_number, line.tag, line.raw, pin, code, op, time, objects, received_at)
                .run();
            ++(sqlite3_changes(db.handle()) == 1 ? counts.stored : counts.duplicate);
            if (auto user = protocol::to_user_info(line)) {
                user_upsert
                    .bind(serial_number, user->pin, user->name, user->privilege, user->password,
                          user->card, user->group, user->time_zones, user->verify, user->vice_card,
                          line.raw, received_at)
                    .run();
            }
        }
        tx.release();
        return counts;
    });
}

storage_result<std::vector<stored_operlog_line>>
sqlite_upload_store::list_operlog(const list_query& query)
{
    return reader_.run<std::vector<stored_operlog_line>>("list_operlog", [&](connection& db) {
        return list<stored_operlog_line>(
            db,
            "id, serial_number, tag, raw, pin, oplog_code, oplog_operator, oplog_time, "
            "oplog_objects, received_at_ms",
            "operlog_line", query, [](const statement& s) {
                stored_operlog_line l;
                l.id = s.integer(0);
                l.serial_number = s.text(1);
                l.tag = s.text(2);
                l.raw = s.text(3);
                l.pin = s.optional_text(4);
                if (!s.is_null(5)) {
                    protocol::oplog_entry e;
                    e.code = s.small_integer(5);
                    e.operator_id = s.text(6);
                    // Written by format_civil_time, so it parses back.
                    e.time = protocol::parse_civil_time(s.text(7)).value_or(
                        std::chrono::local_seconds{});
                    e.objects = decode_objects(s.text(8));
                    l.oplog = std::move(e);
                }
                l.received_at = s.time(9);
                return l;
            });
    });
}

storage_result<std::vector<stored_user>>
sqlite_upload_store::list_users(std::string_view serial_number)
{
    return reader_.run<std::vector<stored_user>>("list_users", [&](connection& db) {
        statement s{db, R"sql(
SELECT serial_number, pin, name, privilege, password, card, grp, time_zones, verify, vice_card,
       raw, updated_at_ms
FROM device_user WHERE serial_number = ? ORDER BY pin
)sql"};
        s.bind(serial_number);
        std::vector<stored_user> out;
        while (s.step()) {
            stored_user u;
            u.serial_number = s.text(0);
            u.user.pin = s.text(1);
            u.user.name = s.text(2);
            u.user.privilege = s.optional_small_integer(3);
            u.user.password = s.text(4);
            u.user.card = s.text(5);
            u.user.group = s.text(6);
            u.user.time_zones = s.text(7);
            u.user.verify = s.optional_small_integer(8);
            u.user.vice_card = s.text(9);
            u.raw = s.text(10);
            u.updated_at = s.time(11);
            out.push_back(std::move(u));
        }
        return out;
    });
}

storage_result<std::int64_t> sqlite_upload_writer::store_table_body(std::string_view serial_number,
                                                                    std::string_view table,
                                                                    std::string_view body,
                                                                    instant received_at)
{
    return run_on<std::int64_t>(db_, "store_table_body", [&](connection& db) {
        savepoint tx{db};
        statement s{db, "INSERT INTO table_body (serial_number, table_name, body, received_at_ms) "
                        "VALUES (?, ?, ?, ?)"};
        s.bind(serial_number, table, blob{body}, received_at).run();
        auto id = sqlite3_last_insert_rowid(db.handle());
        tx.release();
        return static_cast<std::int64_t>(id);
    });
}

storage_result<std::vector<stored_table_body>>
sqlite_upload_store::list_table_bodies(const list_query& query)
{
    return reader_.run<std::vector<stored_table_body>>("list_table_bodies", [&](connection& db) {
        return list<stored_table_body>(db, "id, serial_number, table_name, body, received_at_ms",
                                       "table_body", query, [](const statement& s) {
                                           stored_table_body b;
                                           b.id = s.integer(0);
                                           b.serial_number = s.text(1);
                                           b.table = s.text(2);
                                           b.body = s.text(3);
                                           b.received_at = s.time(4);
                                           return b;
                                       });
    });
}

storage_result<store_counts> sqlite_upload_writer::store_photo(std::string_view serial_number,
                                                               std::string_view file_name,
                                                               std::string_view bytes,
                                                               instant received_at)
{
    return run_on<store_counts>(db_, "store_photo", [&](connection& db) {
        savepoint tx{db};
        statement s{db, "INSERT INTO photo (serial_number, file_name, bytes, received_at_ms) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"};
        s.bind(serial_number, file_name, blob{bytes}, received_at).run();
        store_counts counts;
        ++(sqlite3_changes(db.handle()) == 1 ? counts.stored : counts.duplicate);
        tx.release();
        return counts;
    });
}

storage_result<std::vector<stored_photo>> sqlite_upload_store::list_photos(const list_query& query)
{
    return reader_.run<std::vector<stored_photo>>("list_photos", [&](connection& db) {
        return list<stored_photo>(db, "id, serial_number, file_name, bytes, received_at_ms",
                                  "photo", query, [](const statement& s) {
                                      stored_photo p;
                                      p.id = s.integer(0);
                                      p.serial_number = s.text(1);
                                      p.file_name = s.text(2);
                                      p.bytes = s.text(3);
                                      p.received_at = s.time(4);
                                      return p;
                                  });
    });
}

} // namespace adms::server

#include "server/storage/sqlite/provision_store.hpp"

#include "server/storage/sqlite/sqlite_db.hpp"

#include <charconv>

namespace adms::server {

using namespace sqlite;

namespace {

// Command ids are decimal text in the API and INTEGER in the table.
std::int64_t command_number(std::string_view id)
{
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), n);
    if (ec != std::errc{} || end != id.data() + id.size()) {
        throw sqlite_failure{"a provisioning item's command id is not a number: " +
                             std::string{id}};
    }
    return n;
}

} // namespace

storage_status sqlite_provision_writer::record_item(const provision_item& item)
{
    return run_on<std::monostate>(db_, "record_provision_item", [&](connection& db) {
        statement s{db, R"sql(
INSERT INTO provision_item (serial_number, pin, kind, key, content_hash, command_id,
                            planned_at_ms)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (serial_number, pin, kind, key) DO UPDATE SET
    content_hash = excluded.content_hash, command_id = excluded.command_id,
    planned_at_ms = excluded.planned_at_ms
)sql"};
        s.bind(item.serial_number, item.pin, item.kind, item.key, item.content_hash,
               command_number(item.command_id), item.planned_at)
            .run();
        return std::monostate{};
    });
}

storage_status sqlite_provision_writer::forget_device(std::string_view serial_number)
{
    return run_on<std::monostate>(db_, "forget_provisioned_device", [&](connection& db) {
        savepoint tx{db};
        for (const char* sql : {"DELETE FROM provision_item WHERE serial_number = ?",
                                "DELETE FROM device_template WHERE serial_number = ?",
                                "DELETE FROM device_user WHERE serial_number = ?"}) {
            statement s{db, sql};
            s.bind(serial_number).run();
        }
        tx.release();
        return std::monostate{};
    });
}

storage_status sqlite_provision_writer::store_device_template(const device_template& t)
{
    return run_on<std::monostate>(db_, "store_device_template", [&](connection& db) {
        statement s{db, R"sql(
INSERT INTO device_template (serial_number, pin, key, content_hash, updated_at_ms)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (serial_number, pin, key) DO UPDATE SET
    content_hash = excluded.content_hash, updated_at_ms = excluded.updated_at_ms
)sql"};
        s.bind(t.serial_number, t.pin, t.key, t.content_hash, t.updated_at).run();
        return std::monostate{};
    });
}

storage_status sqlite_provision_writer::forget_device_user(std::string_view serial_number,
                                                           std::string_view pin)
{
    return run_on<std::monostate>(db_, "forget_device_user", [&](connection& db) {
        savepoint tx{db};
        for (const char* sql : {"DELETE FROM device_template WHERE serial_number = ? AND pin = ?",
                                "DELETE FROM device_user WHERE serial_number = ? AND pin = ?",
                                "DELETE FROM provision_item WHERE serial_number = ? AND pin = ?"}) {
            statement s{db, sql};
            s.bind(serial_number, pin).run();
        }
        tx.release();
        return std::monostate{};
    });
}

storage_result<std::vector<provision_item>>
sqlite_provision_store::items_of(std::string_view serial_number)
{
    return reader_.run<std::vector<provision_item>>("provision_items", [&](connection& db) {
        read_transaction snapshot{db}; // the items and their commands as of one commit
        statement s{db, R"sql(
SELECT i.pin, i.kind, i.key, i.content_hash, i.command_id, i.planned_at_ms, c.state,
       c.result_code
FROM provision_item i LEFT JOIN command c ON c.id = i.command_id
WHERE i.serial_number = ?
ORDER BY i.pin, i.kind, i.key
)sql"};
        s.bind(serial_number);
        std::vector<provision_item> out;
        while (s.step()) {
            provision_item item;
            item.serial_number = std::string{serial_number};
            item.pin = s.text(0);
            item.kind = s.text(1);
            item.key = s.text(2);
            item.content_hash = s.text(3);
            item.command_id = std::to_string(s.integer(4));
            item.planned_at = s.time(5);
            if (!s.is_null(6)) {
                item.state = parse_command_state(s.text(6));
            }
            item.return_code = s.optional_small_integer(7);
            out.push_back(std::move(item));
        }
        return out;
    });
}

storage_result<std::vector<protocol::user_info>>
sqlite_provision_store::device_users(std::string_view serial_number)
{
    return reader_.run<std::vector<protocol::user_info>>("device_users", [&](connection& db) {
        statement s{db, R"sql(
SELECT pin, name, privilege, password, card, grp, time_zones, verify, vice_card
FROM device_user WHERE serial_number = ? ORDER BY pin
)sql"};
        s.bind(serial_number);
        std::vector<protocol::user_info> out;
        while (s.step()) {
            protocol::user_info u;
            u.pin = s.text(0);
            u.name = s.text(1);
            u.privilege = s.optional_small_integer(2);
            u.password = s.text(3);
            u.card = s.text(4);
            u.group = s.text(5);
            u.time_zones = s.text(6);
            u.verify = s.optional_small_integer(7);
            u.vice_card = s.text(8);
            out.push_back(std::move(u));
        }
        return out;
    });
}

storage_result<std::vector<device_template>>
sqlite_provision_store::device_templates(std::string_view serial_number)
{
    return reader_.run<std::vector<device_template>>("device_templates", [&](connection& db) {
        statement s{db, R"sql(
SELECT pin, key, content_hash, updated_at_ms FROM device_template
WHERE serial_number = ? ORDER BY pin, key
)sql"};
        s.bind(serial_number);
        std::vector<device_template> out;
        while (s.step()) {
            out.push_back({std::string{serial_number}, s.text(0), s.text(1), s.text(2), s.time(3)});
        }
        return out;
    });
}

} // namespace adms::server

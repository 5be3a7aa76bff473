#include "server/storage/sqlite/device_store.hpp"

#include "protocol/stamp.hpp"
#include "server/storage/sqlite/sqlite_db.hpp"

#include <map>

namespace adms::server {

using namespace sqlite;

namespace {

constexpr std::string_view device_columns =
    "serial_number, first_seen_ms, last_seen_ms, remote_address, push_version, language, "
    "approved, alias, zone_override, dialect, attlog_stamp, operlog_stamp, attphoto_stamp, "
    "full_upload_requested, info, info_at_ms, time_sync_sent_ms, time_sync_confirmed_ms, "
    "time_sync_error, time_dialect_override, sync_at_minutes, sync_interval_minutes, area";

device_record read_device(const statement& s)
{
    device_record d;
    d.serial_number = s.text(0);
    d.first_seen = s.time(1);
    d.last_seen = s.time(2);
    d.remote_address = s.text(3);
    d.push_version = s.text(4);
    d.language = s.text(5);
    d.approved = s.integer(6) != 0;
    d.alias = s.optional_text(7);
    d.zone_override = s.optional_text(8);
    d.dialect = s.text(9);
    d.attlog_stamp = s.optional_text(10);
    d.operlog_stamp = s.optional_text(11);
    d.attphoto_stamp = s.optional_text(12);
    d.full_upload_requested = s.integer(13) != 0;
    d.info = s.text(14);
    d.info_at = s.optional_time(15);
    d.time_sync_sent_at = s.optional_time(16);
    d.time_sync_confirmed_at = s.optional_time(17);
    d.time_sync_error = s.text(18);
    d.time_dialect_override = s.optional_text(19);
    d.sync_at_minutes = s.optional_small_integer(20);
    d.sync_interval_minutes = s.optional_small_integer(21);
    d.area = s.optional_text(22);
    return d;
}

std::vector<protocol::key_value> read_options(connection& db, std::string_view serial_number)
{
    statement s{db, "SELECT key, value FROM device_option WHERE serial_number = ? ORDER BY key"};
    s.bind(serial_number);
    std::vector<protocol::key_value> out;
    while (s.step()) {
        out.push_back({s.text(0), s.text(1)});
    }
    return out;
}

std::optional<device_record> read_device(connection& db, std::string_view serial_number)
{
    statement s{db, fmt::format("SELECT {} FROM device WHERE serial_number = ?", device_columns)};
    s.bind(serial_number);
    if (!s.step()) {
        return std::nullopt;
    }
    auto d = read_device(s);
    d.options = read_options(db, serial_number);
    return d;
}

} // namespace

storage_result<device_record> sqlite_device_writer::upsert_device(const device_record& device)
{
    return run_on<device_record>(db_, "upsert_device", [&](connection& db) {
        savepoint tx{db};
        auto merged = device;
        if (merged.alias && merged.alias->empty()) {
            merged.alias.reset();
        }
        if (auto existing = read_device(db, device.serial_number)) {
            merged.first_seen = std::min(existing->first_seen, device.first_seen);
            merged.attlog_stamp =
                protocol::merge_stamp(existing->attlog_stamp, device.attlog_stamp);
            merged.operlog_stamp =
                protocol::merge_stamp(existing->operlog_stamp, device.operlog_stamp);
            merged.attphoto_stamp =
                protocol::merge_stamp(existing->attphoto_stamp, device.attphoto_stamp);
        }
        statement s{db, fmt::format(R"sql(
INSERT INTO device ({})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (serial_number) DO UPDATE SET
    first_seen_ms = excluded.first_seen_ms, last_seen_ms = excluded.last_seen_ms,
    remote_address = excluded.remote_address, push_version = excluded.push_version,
    language = excluded.language, approved = excluded.approved, alias = excluded.alias,
    zone_override = excluded.zone_override, dialect = excluded.dialect,
    attlog_stamp = excluded.attlog_stamp, operlog_stamp = excluded.operlog_stamp,
    attphoto_stamp = excluded.attphoto_stamp,
    full_upload_requested = excluded.full_upload_requested, info = excluded.info,
    info_at_ms = excluded.info_at_ms, time_sync_sent_ms = excluded.time_sync_sent_ms,
    time_sync_confirmed_ms = excluded.time_sync_confirmed_ms,
    time_sync_error = excluded.time_sync_error,
    time_dialect_override = excluded.time_dialect_override,
    sync_at_minutes = excluded.sync_at_minutes,
    sync_interval_minutes = excluded.sync_interval_minutes, area = excluded.area
)sql",
                                    device_columns)};
        s.bind(merged.serial_number, merged.first_seen, merged.last_seen, merged.remote_address,
               merged.push_version, merged.language, merged.approved, merged.alias,
               merged.zone_override, merged.dialect, merged.attlog_stamp, merged.operlog_stamp,
               merged.attphoto_stamp, merged.full_upload_requested, merged.info, merged.info_at,
               merged.time_sync_sent_at, merged.time_sync_confirmed_at, merged.time_sync_error,
               merged.time_dialect_override, merged.sync_at_minutes, merged.sync_interval_minutes,
               merged.area)
            .run();
        auto stored = read_device(db, device.serial_number);
        tx.release();
        // The row was just written inside this transaction, so it is there.
        return stored.value_or(merged);
    });
}

storage_result<std::optional<device_record>>
sqlite_device_store::load_device(std::string_view serial_number)
{
    return reader_.run<std::optional<device_record>>("load_device", [&](connection& db) {
        read_transaction snapshot{db}; // the row and its options as of one commit
        return read_device(db, serial_number);
    });
}

storage_result<std::vector<device_record>> sqlite_device_store::load_devices()
{
    return reader_.run<std::vector<device_record>>("load_devices", [&](connection& db) {
        std::vector<device_record> out;
        {
            statement s{
                db, fmt::format("SELECT {} FROM device ORDER BY serial_number", device_columns)};
            while (s.step()) {
                out.push_back(read_device(s));
            }
        }
        std::map<std::string, std::vector<protocol::key_value>, std::less<>> options;
        statement s{db, "SELECT serial_number, key, value FROM device_option ORDER BY "
                        "serial_number, key"};
        while (s.step()) {
            options[s.text(0)].push_back({s.text(1), s.text(2)});
        }
        for (auto& d : out) {
            if (auto it = options.find(d.serial_number); it != options.end()) {
                d.options = std::move(it->second);
            }
        }
        return out;
    });
}

storage_result<std::size_t>
sqlite_device_writer::store_device_options(std::string_view serial_number,
                                           std::span<const protocol::key_value> options,
                                           instant received_at)
{
    return run_on<std::size_t>(db_, "store_device_options", [&](connection& db) {
        savepoint tx{db};
        statement device{db, "INSERT INTO device (serial_number, first_seen_ms, last_seen_ms) "
                             "VALUES (?, ?, ?) ON CONFLICT (serial_number) DO NOTHING"};
        device.bind(serial_number, received_at, received_at).run();
        statement s{db, R"sql(
INSERT INTO device_option (serial_number, key, value, updated_at_ms) VALUES (?, ?, ?, ?)
ON CONFLICT (serial_number, key) DO UPDATE SET
    value = excluded.value, updated_at_ms = excluded.updated_at_ms
)sql"};
        for (const auto& kv : options) {
            s.bind(serial_number, kv.key, kv.value, received_at).run();
        }
        tx.release();
        return options.size();
    });
}

} // namespace adms::server

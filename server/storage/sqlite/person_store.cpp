#include "server/storage/sqlite/person_store.hpp"

#include "server/storage/sqlite/sqlite_db.hpp"

#include <algorithm>

namespace adms::server {

using namespace sqlite;
using personnel::person;

namespace {

constexpr std::string_view person_columns =
    "pin, name, card, privilege, password, verify, status, source, external_id, updated_at_ms";

std::vector<std::string> read_areas(connection& db, std::string_view pin)
{
    statement s{db, "SELECT area FROM person_area WHERE pin = ? ORDER BY area"};
    s.bind(pin);
    std::vector<std::string> out;
    while (s.step()) {
        out.push_back(s.text(0));
    }
    return out;
}

stored_person read_person(connection& db, const statement& s)
{
    stored_person out;
    auto& p = out.person;
    p.pin = s.text(0);
    p.name = s.text(1);
    p.card = s.text(2);
    p.privilege = s.small_integer(3);
    p.password = s.optional_text(4);
    p.verify = s.small_integer(5);
    auto status = personnel::parse_person_status(s.text(6));
    auto source = personnel::parse_person_source(s.text(7));
    if (!status || !source) {
        throw sqlite_failure{"a stored person has an unknown status or source: " + p.pin};
    }
    p.status = *status;
    p.source = *source;
    p.external_id = s.text(8);
    out.updated_at = s.time(9);
    p.areas = read_areas(db, p.pin);
    return out;
}

std::optional<stored_person> find(connection& db, std::string_view pin)
{
    statement s{db, fmt::format("SELECT {} FROM person WHERE pin = ?", person_columns)};
    s.bind(pin);
    if (!s.step()) {
        return std::nullopt;
    }
    return read_person(db, s);
}

// The areas as stored: sorted, without duplicates (a person lists an area once).
std::vector<std::string> normalised(std::vector<std::string> areas)
{
    std::sort(areas.begin(), areas.end());
    areas.erase(std::unique(areas.begin(), areas.end()), areas.end());
    return areas;
}

stored_area read_area(const statement& s)
{
    stored_area a;
    a.area.code = s.text(0);
    a.area.name = s.text(1);
    a.devices = static_cast<std::size_t>(s.integer(2));
    a.persons = static_cast<std::size_t>(s.integer(3));
    return a;
}

constexpr std::string_view area_select = R"sql(
SELECT code, name,
       (SELECT count(*) FROM device d WHERE d.area = area.code),
       (SELECT count(*) FROM person_area pa WHERE pa.area = area.code)
FROM area
)sql";

constexpr std::string_view template_columns =
    "pin, type, no, idx, major, minor, format, valid, duress, data, sha256, source_sn, "
    "captured_at_ms, face_prefix";

person_template read_template(const statement& s)
{
    person_template t;
    t.pin = s.text(0);
    t.type = s.small_integer(1);
    t.no = s.small_integer(2);
    t.index = s.small_integer(3);
    t.major = s.small_integer(4);
    t.minor = s.small_integer(5);
    t.format = s.small_integer(6);
    t.valid = s.small_integer(7);
    t.duress = s.integer(8) != 0;
    t.data = s.text(9);
    t.sha256 = s.text(10);
    t.source_serial_number = s.text(11);
    t.captured_at = s.time(12);
    t.face_upload_prefix = s.integer(13) != 0;
    return t;
}

} // namespace

storage_result<std::optional<stored_person>> sqlite_person_writer::find_person(std::string_view pin)
{
    return run_on<std::optional<stored_person>>(db_, "find_person",
                                                [&](connection& db) { return find(db, pin); });
}

storage_result<std::vector<std::string>>
sqlite_person_writer::unknown_areas(const std::vector<std::string>& codes)
{
    return run_on<std::vector<std::string>>(db_, "unknown_areas", [&](connection& db) {
        std::vector<std::string> unknown;
        statement s{db, "SELECT 1 FROM area WHERE code = ?"};
        for (const auto& code : codes) {
            if (!s.bind(code).step()) {
                unknown.push_back(code);
            }
        }
        return unknown;
    });
}

storage_result<person_saved> sqlite_person_writer::save_person(const person& p, instant at)
{
    return run_on<person_saved>(db_, "save_person", [&](connection& db) {
        savepoint tx{db};
        auto wanted = p;
        wanted.areas = normalised(wanted.areas);
        auto existing = find(db, p.pin);
        if (existing && existing->person == wanted) {
            return person_saved::unchanged;
        }
        statement s{db, fmt::format(R"sql(
INSERT INTO person ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pin) DO UPDATE SET
    name = excluded.name, card = excluded.card, privilege = excluded.privilege,
    password = excluded.password, verify = excluded.verify, status = excluded.status,
    source = excluded.source, external_id = excluded.external_id,
    updated_at_ms = excluded.updated_at_ms
)sql",
                                    person_columns)};
        s.bind(wanted.pin, wanted.name, wanted.card, wanted.privilege, wanted.password,
               wanted.verify, personnel::to_string(wanted.status),
               personnel::to_string(wanted.source), wanted.external_id, at)
            .run();
        statement clear{db, "DELETE FROM person_area WHERE pin = ?"};
        clear.bind(wanted.pin).run();
        for (const auto& code : wanted.areas) {
            statement add{db, "INSERT INTO person_area (pin, area) VALUES (?, ?)"};
            add.bind(wanted.pin, code).run();
        }
        tx.release();
        return existing ? person_saved::updated : person_saved::created;
    });
}

storage_result<bool> sqlite_person_writer::delete_person(std::string_view pin)
{
    return run_on<bool>(db_, "delete_person", [&](connection& db) {
        savepoint tx{db};
        // Its areas go with it (ON DELETE CASCADE); templates are kept by PIN, not by row.
        statement templates{db, "DELETE FROM person_template WHERE pin = ?"};
        templates.bind(pin).run();
        statement s{db, "DELETE FROM person WHERE pin = ?"};
        s.bind(pin).run();
        bool deleted = sqlite3_changes(db.handle()) > 0;
        tx.release();
        return deleted;
    });
}

storage_result<bool> sqlite_person_writer::save_area(const personnel::area& a)
{
    return run_on<bool>(db_, "save_area", [&](connection& db) {
        savepoint tx{db};
        statement exists{db, "SELECT 1 FROM area WHERE code = ?"};
        bool created = !exists.bind(a.code).step();
        statement s{db, R"sql(
INSERT INTO area (code, name) VALUES (?, ?) ON CONFLICT (code) DO UPDATE SET name = excluded.name
)sql"};
        s.bind(a.code, a.name).run();
        tx.release();
        return created;
    });
}

storage_result<bool> sqlite_person_writer::delete_area(std::string_view code)
{
    return run_on<bool>(db_, "delete_area", [&](connection& db) {
        savepoint tx{db};
        statement devices{db, "SELECT count(*) FROM device WHERE area = ?"};
        devices.bind(code).step();
        if (auto n = devices.integer(0); n > 0) {
            throw sqlite_failure{
                fmt::format("area {} still has {} device{}: move them to another area first", code,
                            n, n == 1 ? "" : "s")};
        }
        // Persons lose the area (ON DELETE CASCADE on person_area).
        statement s{db, "DELETE FROM area WHERE code = ?"};
        s.bind(code).run();
        bool deleted = sqlite3_changes(db.handle()) > 0;
        tx.release();
        return deleted;
    });
}

storage_result<template_saved> sqlite_person_writer::store_template(const person_template& t)
{
    return run_on<template_saved>(db_, "store_template", [&](connection& db) {
        savepoint tx{db};
        statement old{db, R"sql(
SELECT sha256 FROM person_template
WHERE pin = ? AND type = ? AND no = ? AND idx = ? AND major = ? AND minor = ? AND format = ?
)sql"};
        old.bind(t.pin, t.type, t.no, t.index, t.major, t.minor, t.format);
        auto saved = template_saved::created;
        if (old.step()) {
            if (old.text(0) == t.sha256) {
                return template_saved::unchanged;
            }
            saved = template_saved::replaced;
        }
        statement s{db, fmt::format(R"sql(
INSERT INTO person_template ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pin, type, no, idx, major, minor, format) DO UPDATE SET
    valid = excluded.valid, duress = excluded.duress, data = excluded.data,
    sha256 = excluded.sha256, source_sn = excluded.source_sn,
    captured_at_ms = excluded.captured_at_ms, face_prefix = excluded.face_prefix
)sql",
                                    template_columns)};
        s.bind(t.pin, t.type, t.no, t.index, t.major, t.minor, t.format, t.valid, t.duress, t.data,
               t.sha256, t.source_serial_number, t.captured_at, t.face_upload_prefix)
            .run();
        tx.release();
        return saved;
    });
}

storage_result<std::size_t> sqlite_person_writer::delete_templates(std::string_view pin,
                                                                   std::optional<int> type)
{
    return run_on<std::size_t>(db_, "delete_templates", [&](connection& db) {
        statement s{db, "DELETE FROM person_template WHERE pin = ?1 AND (?2 IS NULL OR type = ?2)"};
        s.bind(pin, type).run();
        return static_cast<std::size_t>(sqlite3_changes(db.handle()));
    });
}

storage_result<std::optional<stored_person>> sqlite_person_store::find_person(std::string_view pin)
{
    return reader_.run<std::optional<stored_person>>("find_person", [&](connection& db) {
        read_transaction snapshot{db}; // the row and its areas as of one commit
        return find(db, pin);
    });
}

storage_result<std::vector<stored_person>>
sqlite_person_store::list_persons(const person_query& query)
{
    return reader_.run<std::vector<stored_person>>("list_persons", [&](connection& db) {
        read_transaction snapshot{db};
        statement s{db, fmt::format(R"sql(
SELECT {} FROM person
WHERE (?1 IS NULL OR pin IN (SELECT pin FROM person_area WHERE area = ?1))
  AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR source = ?3) AND (?4 IS NULL OR pin > ?4)
ORDER BY pin LIMIT ?5
)sql",
                                    person_columns)};
        std::optional<std::string_view> status;
        std::optional<std::string_view> source;
        if (query.status) {
            status = personnel::to_string(*query.status);
        }
        if (query.source) {
            source = personnel::to_string(*query.source);
        }
        s.bind(query.area, status, source, query.after,
               clamp_limit(std::min<std::size_t>(query.limit, 1000)));
        std::vector<stored_person> out;
        while (s.step()) {
            out.push_back(read_person(db, s));
        }
        return out;
    });
}

storage_result<std::vector<stored_area>> sqlite_person_store::list_areas()
{
    return reader_.run<std::vector<stored_area>>("list_areas", [&](connection& db) {
        statement s{db, fmt::format("{} ORDER BY code", area_select)};
        std::vector<stored_area> out;
        while (s.step()) {
            out.push_back(read_area(s));
        }
        return out;
    });
}

storage_result<std::optional<stored_area>> sqlite_person_store::find_area(std::string_view code)
{
    return reader_.run<std::optional<stored_area>>(
        "find_area", [&](connection& db) -> std::optional<stored_area> {
            statement s{db, fmt::format("{} WHERE code = ?", area_select)};
            s.bind(code);
            if (!s.step()) {
                return std::nullopt;
            }
            return read_area(s);
        });
}

storage_result<std::vector<person_template>> sqlite_person_store::templates_of(std::string_view pin,
                                                                               bool with_data)
{
    return reader_.run<std::vector<person_template>>("templates_of", [&](connection& db) {
        statement s{db, fmt::format("SELECT {} FROM person_template WHERE pin = ? ORDER BY type, "
                                    "no, idx, major, minor, format",
                                    template_columns)};
        s.bind(pin);
        std::vector<person_template> out;
        while (s.step()) {
            out.push_back(read_template(s));
            if (!with_data) {
                out.back().data.clear();
            }
        }
        return out;
    });
}

} // namespace adms::server
